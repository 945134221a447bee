//! Approximate nearest-neighbour search: an HNSW graph built by hnsw_rs.
//!
//! hnsw_rs (patched, in `vendor/hnsw_rs`; see its PATCHES.md) inserts the points. The finished
//! graph is then frozen into flat link arrays ([`FrozenHnsw`]) for searching and storage, and
//! thawed back into hnsw_rs when more points are added. By default the graph walks on 8-bit codes
//! ([`quantize`]) and the candidates are re-ranked on the exact f32 vectors by the caller.
//!
//! Nodes are numbered in insertion order; what a node stands for is the caller's business.

use std::cell::RefCell;
use std::io::{Read, Write};

use hnsw_rs::anndists::dist::distances::Distance;
use hnsw_rs::frozen::{advise_huge_pages, huge_zeroed, Array, FrozenHnsw, NodeDistance, Scored, SharedBytes, Visited};
use hnsw_rs::hnsw::Hnsw;
use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::quantize::{self, dot_f32, dot_i8, I8Query};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// What the graph stores and walks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// One byte per dimension; candidates re-ranked on the f32 vectors.
    #[default]
    I8,
    /// The f32 vectors themselves: exact walking distances, four times the bytes.
    F32,
}

/// How the graph is built and searched. Defaults chosen by measurement (benches/README.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Links per node in the upper layers; layer 0 keeps twice as many.
    pub m: usize,
    /// Search width while inserting.
    pub ef_construction: usize,
    /// Default search width for queries (`--ef` overrides it).
    pub ef_search: usize,
    /// Number of layers hnsw_rs may use.
    pub max_layers: usize,
    pub precision: Precision,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 100,
            ef_search: 64,
            max_layers: 16,
            precision: Precision::I8,
        }
    }
}

impl HnswParams {
    /// Rejects values hnsw_rs would exit or misbehave on, before it sees them.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidArgument(what));
        if !(2..=128).contains(&self.m) {
            return bad(format!("HNSW m must be between 2 and 128, got {}", self.m));
        }
        if self.ef_construction < self.m {
            return bad(format!(
                "HNSW ef_construction ({}) must be at least m ({})",
                self.ef_construction, self.m
            ));
        }
        if self.ef_search == 0 {
            return bad("HNSW ef_search must be at least 1".into());
        }
        if !(1..=16).contains(&self.max_layers) {
            return bad(format!(
                "HNSW max_layers must be between 1 and 16, got {}",
                self.max_layers
            ));
        }
        Ok(())
    }
}

/// Walking distance between codes: 1 − the approximate cosine, never negative (hnsw_rs asserts).
#[derive(Debug, Clone, Copy)]
struct CodeDistance {
    inverse_scale_squared: f32,
}

impl Distance<i8> for CodeDistance {
    fn eval(&self, a: &[i8], b: &[i8]) -> f32 {
        (1.0 - dot_i8(a, b) as f32 * self.inverse_scale_squared).max(0.0)
    }
}

/// 1 − cosine of unit vectors, never negative.
#[derive(Debug, Clone, Copy)]
struct DotDistance;

impl Distance<f32> for DotDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot_f32(a, b)).max(0.0)
    }
}

/// The node vectors, in the graph's precision.
#[derive(Debug, Clone, PartialEq)]
enum Store {
    I8 { codes: Array<i8>, scale: f32 },
    F32(Array<f32>),
}

/// An HNSW graph over unit vectors, with its own copy of the vectors it walks on.
#[derive(Debug, Clone, PartialEq)]
pub struct HnswGraph {
    params: HnswParams,
    dims: usize,
    store: Store,
    graph: FrozenHnsw,
}

/// Nodes inserted per hnsw_rs call, so progress moves and the threads stay busy.
const INSERT_CHUNK: usize = 4096;

thread_local! {
    static VISITED: RefCell<Visited> = RefCell::new(Visited::default());
}

impl HnswGraph {
    /// Builds the graph over the rows of `vectors` (unit length), node `i` being row `i`.
    pub fn build(vectors: ArrayView2<f32>, params: HnswParams, progress: &dyn Progress) -> Result<Self> {
        params.check()?;
        let dims = vectors.ncols();
        let flat = contiguous(vectors);
        let store = match params.precision {
            Precision::I8 => {
                let scale = quantize::scale_for(&flat);
                let mut codes = Vec::with_capacity(flat.len());
                advise_huge_pages(codes.spare_capacity_mut());
                quantize::encode(&flat, scale, &mut codes);
                Store::I8 {
                    codes: Array::Owned(codes),
                    scale,
                }
            }
            Precision::F32 => Store::F32(Array::Owned(flat)),
        };
        let empty = HnswGraph {
            params,
            dims,
            store,
            graph: FrozenHnsw::default(),
        };
        let n = vectors.nrows();
        empty.insert_from(0, n, progress)
    }

    /// Adds the rows of `vectors` as nodes `len()..`, keeping the existing graph.
    pub fn extend(self, vectors: ArrayView2<f32>, progress: &dyn Progress) -> Result<Self> {
        if vectors.nrows() == 0 {
            return Ok(self);
        }
        if vectors.ncols() != self.dims {
            return Err(Error::InvalidArgument(format!(
                "vectors have {} dimensions, the graph {}",
                vectors.ncols(),
                self.dims
            )));
        }
        let start = self.len();
        let mut this = self;
        let flat = contiguous(vectors);
        match &mut this.store {
            Store::I8 { codes, scale } => quantize::encode(&flat, *scale, codes.to_mut()),
            Store::F32(values) => values.to_mut().extend_from_slice(&flat),
        }
        let end = start + vectors.nrows();
        this.insert_from(start, end, progress)
    }

    /// Inserts stored nodes `start..end` (the earlier ones are already in `self.graph`).
    fn insert_from(mut self, start: usize, end: usize, progress: &dyn Progress) -> Result<Self> {
        let p = self.params;
        progress.start("building search graph", (end - start) as u64, "passages");
        self.graph = match &self.store {
            Store::I8 { codes, scale } => {
                let distance = CodeDistance {
                    inverse_scale_squared: 1.0 / (scale * scale),
                };
                let rows: Vec<&[i8]> = codes.chunks_exact(self.dims).collect();
                grow(&self.graph, &rows, start, distance, &p, progress)?
            }
            Store::F32(values) => {
                let rows: Vec<&[f32]> = values.chunks_exact(self.dims).collect();
                grow(&self.graph, &rows, start, DotDistance, &p, progress)?
            }
        };
        progress.finish();
        Ok(self)
    }

    pub fn len(&self) -> usize {
        self.graph.len()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.is_empty()
    }

    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Whether the walking distances are exact (else the caller should re-rank).
    pub fn exact(&self) -> bool {
        matches!(self.store, Store::F32(_))
    }

    /// Bytes held: the links and the walking vectors.
    pub fn memory_bytes(&self) -> usize {
        self.graph.memory_bytes()
            + match &self.store {
                Store::I8 { codes, .. } => codes.len(),
                Store::F32(values) => 4 * values.len(),
            }
    }

    /// The `ef` nodes nearest to `query` (a unit vector) among those `filter` accepts, nearest
    /// first, with their walking distance (1 − approximate cosine).
    pub fn search(&self, query: &[f32], ef: usize, filter: Option<&dyn Fn(u32) -> bool>) -> Vec<Scored> {
        VISITED.with(|visited| {
            let visited = &mut visited.borrow_mut();
            match &self.store {
                Store::I8 { codes, .. } => {
                    let scale = quantize::scale_for(query);
                    let walk = CodeWalk {
                        query: I8Query::new(query, scale),
                        codes,
                        dims: self.dims,
                        inverse_scales: 1.0 / (scale * self.scale()),
                    };
                    self.graph.search(&walk, ef, filter, visited)
                }
                Store::F32(values) => {
                    let walk = F32Walk {
                        query,
                        values,
                        dims: self.dims,
                    };
                    self.graph.search(&walk, ef, filter, visited)
                }
            }
        })
    }

    fn scale(&self) -> f32 {
        match self.store {
            Store::I8 { scale, .. } => scale,
            Store::F32(_) => 1.0,
        }
    }

    /// Writes the graph and its vectors; [`HnswGraph::read_from`] reads them back.
    pub fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        self.graph.write_to(w)?;
        w.write_all(&(self.dims as u64).to_le_bytes())?;
        w.write_all(&self.scale().to_le_bytes())?;
        match &self.store {
            Store::I8 { codes, .. } => w.write_all(i8_as_bytes(codes)),
            Store::F32(values) => {
                for chunk in values.chunks(1 << 14) {
                    let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
                    w.write_all(&bytes)?;
                }
                Ok(())
            }
        }
    }

    /// Reads what [`HnswGraph::write_to`] wrote with these `params`, checking every size.
    pub fn read_from(r: &mut impl Read, params: HnswParams) -> std::io::Result<Self> {
        let graph = FrozenHnsw::read_from(r)?;
        let mut head = [0u8; 12];
        r.read_exact(&mut head)?;
        let (dims, scale, values) = store_header(&head, graph.len())?;
        let width = if params.precision == Precision::I8 { 1 } else { 4 };
        let mut bytes = huge_zeroed::<u8>(width * values);
        r.read_exact(&mut bytes)?;
        let bytes: SharedBytes = std::sync::Arc::new(bytes);
        let store = store_view(&bytes, 0, values, params.precision, scale).expect("read exactly");
        Ok(HnswGraph {
            params,
            dims,
            store,
            graph,
        })
    }

    /// The graph [`HnswGraph::write_to`] wrote at `start` in `bytes` (a memory-mapped file),
    /// viewed in place (see [`FrozenHnsw::view`] for what is checked), and where it ends.
    pub fn view(bytes: &SharedBytes, start: usize, params: HnswParams) -> std::io::Result<(Self, usize)> {
        let (graph, at) = FrozenHnsw::view(bytes, start)?;
        let head = (**bytes)
            .as_ref()
            .get(at..at + 12)
            .ok_or_else(|| invalid("graph truncated before its vectors"))?;
        let (dims, scale, values) = store_header(head, graph.len())?;
        let store = store_view(bytes, at + 12, values, params.precision, scale)
            .ok_or_else(|| invalid("graph truncated in its vectors"))?;
        let end = at + 12 + values * if params.precision == Precision::I8 { 1 } else { 4 };
        Ok((
            HnswGraph {
                params,
                dims,
                store,
                graph,
            },
            end,
        ))
    }
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Dimensions, scale and number of values of the stored vectors, from the 12 bytes before them.
fn store_header(head: &[u8], nodes: usize) -> std::io::Result<(usize, f32, usize)> {
    let dims = u64::from_le_bytes(head[..8].try_into().expect("8 bytes")) as usize;
    let scale = f32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    let values = nodes
        .checked_mul(dims)
        .filter(|&v| dims > 0 && dims <= 65536 && v <= isize::MAX as usize / 4)
        .ok_or_else(|| invalid("graph dimensions out of range"))?;
    Ok((dims, scale, values))
}

fn store_view(bytes: &SharedBytes, start: usize, values: usize, precision: Precision, scale: f32) -> Option<Store> {
    Some(match precision {
        Precision::I8 => Store::I8 {
            codes: Array::view(bytes, start, values)?,
            scale,
        },
        Precision::F32 => Store::F32(Array::view(bytes, start, values)?),
    })
}

/// Thaws `graph` (if it has nodes), inserts `rows[start..]` with hnsw_rs and freezes the result.
fn grow<T, D>(
    graph: &FrozenHnsw,
    rows: &[&[T]],
    start: usize,
    distance: D,
    params: &HnswParams,
    progress: &dyn Progress,
) -> Result<FrozenHnsw>
where
    T: Clone + Send + Sync,
    D: Distance<T> + Send + Sync,
{
    let hnsw: Hnsw<T, D> = if start == 0 {
        Hnsw::new(
            params.m,
            rows.len(),
            params.max_layers,
            params.ef_construction,
            distance,
        )
    } else {
        graph.thaw(|node| rows[node].to_vec(), distance, rows.len())
    };
    let items: Vec<(&[T], usize)> = rows.iter().copied().zip(0..).skip(start).collect();
    for chunk in items.chunks(INSERT_CHUNK) {
        chunk.par_iter().for_each(|&item| hnsw.insert_slice(item));
        progress.advance(chunk.len() as u64, 0);
    }
    FrozenHnsw::from_hnsw(&hnsw).map_err(|e| Error::InvalidArgument(format!("HNSW graph: {e}")))
}

/// Row-major copy of `vectors` (a view may be strided), in memory that asks for huge pages.
fn contiguous(vectors: ArrayView2<f32>) -> Vec<f32> {
    let mut flat = Vec::with_capacity(vectors.len());
    advise_huge_pages(flat.spare_capacity_mut());
    flat.extend(vectors.iter().copied());
    flat
}

fn i8_as_bytes(codes: &[i8]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size and alignment, and every bit pattern is valid for both.
    unsafe { std::slice::from_raw_parts(codes.as_ptr() as *const u8, codes.len()) }
}

struct CodeWalk<'a> {
    query: I8Query,
    codes: &'a [i8],
    dims: usize,
    inverse_scales: f32,
}

impl NodeDistance for CodeWalk<'_> {
    #[inline]
    fn distance(&self, node: u32) -> f32 {
        let start = node as usize * self.dims;
        1.0 - self.query.dot(&self.codes[start..start + self.dims]) as f32 * self.inverse_scales
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        let start = node as usize * self.dims;
        for line in (0..self.dims).step_by(64) {
            quantize::prefetch(self.codes[start + line..].as_ptr());
        }
    }
}

struct F32Walk<'a> {
    query: &'a [f32],
    values: &'a [f32],
    dims: usize,
}

impl NodeDistance for F32Walk<'_> {
    #[inline]
    fn distance(&self, node: u32) -> f32 {
        let start = node as usize * self.dims;
        1.0 - dot_f32(self.query, &self.values[start..start + self.dims])
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        let start = node as usize * self.dims;
        for line in (0..self.dims).step_by(16).take(4) {
            quantize::prefetch(self.values[start + line..].as_ptr());
        }
    }
}

/// Scores `candidates` exactly with `score` (cosine, higher is better) and returns the best `k`,
/// best first.
pub fn rerank(candidates: &[Scored], k: usize, score: impl Fn(u32) -> f32) -> Vec<(u32, f32)> {
    let mut scored: Vec<(u32, f32)> = candidates.iter().map(|c| (c.node, score(c.node))).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

/// A query as a contiguous slice.
pub fn query_slice<'a>(query: &'a ArrayView1<f32>, buffer: &'a mut Vec<f32>) -> &'a [f32] {
    match query.as_slice() {
        Some(slice) => slice,
        None => {
            buffer.clear();
            buffer.extend(query.iter());
            buffer
        }
    }
}
