//! Approximate nearest-neighbour search: an HNSW graph built by hnsw_rs.
//!
//! hnsw_rs (patched, in `vendor/hnsw_rs`; see its PATCHES.md) inserts the points. The finished
//! graph is then frozen into flat link arrays ([`FrozenHnsw`]) for searching and storage, and
//! thawed back into hnsw_rs when more points are added. By default the graph walks on 4-bit or
//! 8-bit codes ([`quantize`], chosen per collection: [`Precision::Auto`]) and the candidates are
//! re-ranked on the exact f32 vectors by the caller.
//!
//! Nodes are numbered in insertion order; what a node stands for is the caller's business.

use std::cell::RefCell;
use std::io::{Read, Write};

use hnsw_rs::anndists::dist::distances::Distance;
use hnsw_rs::frozen::{advise_huge_pages, Array, FrozenHnsw, NodeDistance, Scored, SharedBytes, Visited};
use hnsw_rs::hnsw::Hnsw;
use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::flat;
use super::quantize::{self, dot_f32, dot_i8, I8Query, NibbleQuery, NibbleRanges};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// What the graph stores and walks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// `U4` where the vectors allow it, else `I8`, decided when the graph is built: a sample of
    /// the vectors is searched for its own nearest neighbours through both walks, and the 4-bit
    /// one is kept if its recall@10 is within 0.005 of the 8-bit one's. A built graph is always
    /// `I8` or `U4`; sentence embeddings (anisotropic, a few dimensions far off zero) come out
    /// `U4`, tight synthetic clusters `I8`.
    #[default]
    Auto,
    /// One byte per dimension at one scale; candidates re-ranked on the f32 vectors.
    I8,
    /// Four bits per dimension over each dimension's own range: half the bytes of `I8` for the
    /// walk to read; candidates re-ranked on the f32 vectors. The graph is built on 8-bit codes.
    U4,
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
            precision: Precision::Auto,
        }
    }
}

impl HnswParams {
    /// Whether a graph built with these parameters is what `wanted` builds (`Auto` is either
    /// code size), so it can be extended rather than built again.
    pub fn satisfies(&self, wanted: &HnswParams) -> bool {
        let precision = match (wanted.precision, self.precision) {
            (Precision::Auto, Precision::I8 | Precision::U4) => true,
            (wanted, built) => wanted == built,
        };
        precision
            && HnswParams {
                precision: wanted.precision,
                ..*self
            } == *wanted
    }

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
    U4 { codes: Array<u8>, ranges: NibbleRanges },
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
            Precision::Auto | Precision::I8 => Store::I8 {
                codes: Array::Owned(huge_capacity(flat.len())),
                scale: quantize::scale_for(&flat),
            },
            Precision::U4 => {
                let ranges = NibbleRanges::fit(&flat, dims);
                Store::U4 {
                    codes: Array::Owned(huge_capacity(vectors.nrows() * ranges.row_bytes())),
                    ranges,
                }
            }
            Precision::F32 => Store::F32(Array::Owned(huge_capacity(flat.len()))),
        };
        let empty = HnswGraph {
            params,
            dims,
            store,
            graph: FrozenHnsw::default(),
        };
        let graph = empty.insert(&flat, progress)?;
        Ok(match params.precision {
            Precision::Auto => graph.choose_codes(&flat),
            _ => graph,
        })
    }

    /// For [`Precision::Auto`]: this graph (on 8-bit codes) with the codes that find a sample of
    /// its own vectors' nearest neighbours best for the bytes, 4-bit unless they cost recall.
    fn choose_codes(mut self, flat: &[f32]) -> Self {
        /// Sample queries (each a stored vector, its own row left out of the answers), and what
        /// the index's search does with them: ef, and a re-rank of 2k on the f32 vectors.
        const QUERIES: usize = 200;
        const K: usize = 10;
        const MARGIN: f64 = 0.005;
        let (n, dims) = (self.len(), self.dims);
        self.params.precision = Precision::I8;
        let Store::I8 { codes, scale } = &self.store else {
            return self;
        };
        if n <= K {
            return self;
        }
        let vectors = ArrayView2::from_shape((n, dims), flat).expect("one row per node");
        let sample: Vec<usize> = (0..n).step_by(n.div_ceil(QUERIES)).collect();
        let queries = vectors.select(ndarray::Axis(0), &sample);
        let truth: Vec<Vec<u32>> = flat::top_k_batch(vectors, queries.view(), K + 1)
            .into_iter()
            .zip(&sample)
            .map(|(hits, &own)| {
                hits.iter()
                    .map(|h| h.row as u32)
                    .filter(|&r| r as usize != own)
                    .take(K)
                    .collect()
            })
            .collect();
        let ranges = NibbleRanges::fit(flat, dims);
        let mut nibbles = huge_capacity(n * ranges.row_bytes());
        ranges.encode(flat, &mut nibbles);
        let ef = self.params.ef_search.max(2 * K);
        let found = |walk: &dyn Fn(&[f32], &mut Visited) -> Vec<Scored>| -> Vec<Vec<u32>> {
            let mut visited = Visited::default();
            sample
                .iter()
                .zip(queries.outer_iter())
                .map(|(&own, query)| {
                    let query = query.as_slice().expect("rows of a standard array");
                    let mut candidates = walk(query, &mut visited);
                    candidates.retain(|c| c.node as usize != own);
                    candidates.truncate(2 * K);
                    rerank(&candidates, K, |node| {
                        dot_f32(query, vectors.row(node as usize).as_slice().expect("rows"))
                    })
                    .into_iter()
                    .map(|(node, _)| node)
                    .collect()
                })
                .collect()
        };
        let eight = flat::recall(
            &found(&|query, visited| {
                let walk = CodeWalk::new(query, codes, dims, *scale);
                self.graph.search(&walk, ef, None, visited)
            }),
            &truth,
        );
        let four = flat::recall(
            &found(&|query, visited| {
                let walk = NibbleWalk::new(query, &nibbles, &ranges);
                self.graph.search(&walk, ef, None, visited)
            }),
            &truth,
        );
        let keep_four = four >= eight - MARGIN;
        let chosen = if keep_four { "4-bit" } else { "8-bit" };
        tracing::debug!("search graph walks on {chosen} codes: recall@10 of {} sample queries {four:.4} with 4-bit, {eight:.4} with 8-bit", sample.len());
        if keep_four {
            self.params.precision = Precision::U4;
            self.store = Store::U4 {
                codes: Array::Owned(nibbles),
                ranges,
            };
        }
        self
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
        let flat = contiguous(vectors);
        self.insert(&flat, progress)
    }

    /// Stores the rows of `flat` as new nodes and inserts them into the graph.
    fn insert(mut self, flat: &[f32], progress: &dyn Progress) -> Result<Self> {
        let (p, dims, start) = (self.params, self.dims, self.len());
        progress.start("building search graph", (flat.len() / dims) as u64, "passages");
        self.graph = match &mut self.store {
            Store::I8 { codes, scale } => {
                quantize::encode(flat, *scale, codes.to_mut());
                let rows: Vec<&[i8]> = codes.chunks_exact(dims).collect();
                grow(&self.graph, &rows, start, code_distance(*scale), &p, progress)?
            }
            Store::U4 { codes, ranges } => {
                // Two nodes' 4-bit codes give no integer dot product (each dimension has its own
                // step), so hnsw_rs builds on 8-bit codes of the same vectors, made for the build
                // and dropped after it: exact for the new rows, decoded for the nodes already in.
                let mut old = Vec::with_capacity(dims * start);
                for row in codes.chunks_exact(ranges.row_bytes()) {
                    ranges.decode(row, &mut old);
                }
                let scale = match old.is_empty() {
                    true => quantize::scale_for(flat),
                    false => quantize::scale_for(&old).min(quantize::scale_for(flat)),
                };
                let mut build_codes = huge_capacity(old.len() + flat.len());
                quantize::encode(&old, scale, &mut build_codes);
                quantize::encode(flat, scale, &mut build_codes);
                drop(old);
                let rows: Vec<&[i8]> = build_codes.chunks_exact(dims).collect();
                let graph = grow(&self.graph, &rows, start, code_distance(scale), &p, progress)?;
                ranges.encode(flat, codes.to_mut());
                graph
            }
            Store::F32(values) => {
                values.to_mut().extend_from_slice(flat);
                let rows: Vec<&[f32]> = values.chunks_exact(dims).collect();
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
                Store::U4 { codes, ranges } => codes.len() + 8 * ranges.dims(),
                Store::F32(values) => 4 * values.len(),
            }
    }

    /// The `ef` nodes nearest to `query` (a unit vector) among those `filter` accepts, nearest
    /// first, with their walking distance (1 − approximate cosine).
    pub fn search(&self, query: &[f32], ef: usize, filter: Option<&dyn Fn(u32) -> bool>) -> Vec<Scored> {
        VISITED.with(|visited| {
            let visited = &mut visited.borrow_mut();
            match &self.store {
                Store::I8 { codes, scale } => {
                    let walk = CodeWalk::new(query, codes, self.dims, *scale);
                    self.graph.search(&walk, ef, filter, visited)
                }
                Store::U4 { codes, ranges } => {
                    let walk = NibbleWalk::new(query, codes, ranges);
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
            Store::U4 { .. } | Store::F32(_) => 1.0,
        }
    }

    /// Writes the graph and its vectors; [`HnswGraph::read_from`] reads them back. After the
    /// graph: the dimensions (u64) and the 8-bit scale (f32), then the codes (`I8`), each
    /// dimension's low end and step (f32s) and the codes (`U4`), or the f32 values.
    pub fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        self.graph.write_to(w)?;
        w.write_all(&(self.dims as u64).to_le_bytes())?;
        w.write_all(&self.scale().to_le_bytes())?;
        let write_f32s = |w: &mut dyn Write, values: &[f32]| {
            for chunk in values.chunks(1 << 14) {
                let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
                w.write_all(&bytes)?;
            }
            Ok(())
        };
        match &self.store {
            Store::I8 { codes, .. } => w.write_all(i8_as_bytes(codes)),
            Store::U4 { codes, ranges } => {
                write_f32s(w, &ranges.low)?;
                write_f32s(w, &ranges.step)?;
                w.write_all(codes)
            }
            Store::F32(values) => write_f32s(w, values),
        }
    }

    /// Reads what [`HnswGraph::write_to`] wrote with these `params`, checking every size.
    pub fn read_from(r: &mut impl Read, params: HnswParams) -> std::io::Result<Self> {
        let graph = FrozenHnsw::read_from(r)?;
        let mut head = [0u8; 12];
        r.read_exact(&mut head)?;
        let (dims, scale, len) = store_header(&head, graph.len(), params.precision)?;
        // Reserved whole (a damaged header's impossible size is an error, not an abort) and
        // advised for huge pages before the read fills it.
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(len)
            .map_err(|_| invalid("the graph's vectors do not fit in memory"))?;
        advise_huge_pages(bytes.spare_capacity_mut());
        r.take(len as u64).read_to_end(&mut bytes)?;
        if bytes.len() < len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "graph truncated in its vectors",
            ));
        }
        let bytes: SharedBytes = std::sync::Arc::new(bytes);
        let store = store_view(&bytes, 0, graph.len(), dims, params.precision, scale).expect("read exactly");
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
        let (dims, scale, len) = store_header(head, graph.len(), params.precision)?;
        let store = store_view(bytes, at + 12, graph.len(), dims, params.precision, scale)
            .ok_or_else(|| invalid("graph truncated in its vectors"))?;
        Ok((
            HnswGraph {
                params,
                dims,
                store,
                graph,
            },
            at + 12 + len,
        ))
    }
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Dimensions and scale of the stored vectors, from the 12 bytes before them, and how many bytes
/// they take in `precision`.
fn store_header(head: &[u8], nodes: usize, precision: Precision) -> std::io::Result<(usize, f32, usize)> {
    let dims = u64::from_le_bytes(head[..8].try_into().expect("8 bytes")) as usize;
    let scale = f32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    let out_of_range = || invalid("graph dimensions out of range");
    if !(1..=65536).contains(&dims) {
        return Err(out_of_range());
    }
    // Bytes per node, and before the nodes (U4's ranges).
    let (row, ranges) = match precision {
        Precision::Auto => return Err(invalid("the graph's parameters do not say which codes it holds")),
        Precision::I8 => (dims, 0),
        Precision::U4 => (quantize::nibble_row_bytes(dims), 8 * dims),
        Precision::F32 => (4 * dims, 0),
    };
    let len = nodes
        .checked_mul(row)
        .and_then(|codes| codes.checked_add(ranges))
        .filter(|&len| len <= isize::MAX as usize)
        .ok_or_else(out_of_range)?;
    Ok((dims, scale, len))
}

/// The vectors of `nodes` nodes stored at `start` in `bytes` as [`HnswGraph::write_to`] wrote them.
fn store_view(
    bytes: &SharedBytes,
    start: usize,
    nodes: usize,
    dims: usize,
    precision: Precision,
    scale: f32,
) -> Option<Store> {
    Some(match precision {
        Precision::Auto => return None,
        Precision::I8 => Store::I8 {
            codes: Array::view(bytes, start, nodes * dims)?,
            scale,
        },
        Precision::U4 => {
            let f32s = |at: usize| Some(Array::<f32>::view(bytes, at, dims)?.to_vec());
            let ranges = NibbleRanges {
                low: f32s(start)?,
                step: f32s(start + 4 * dims)?,
            };
            let codes = Array::view(bytes, start + 8 * dims, nodes * ranges.row_bytes())?;
            Store::U4 { codes, ranges }
        }
        Precision::F32 => Store::F32(Array::view(bytes, start, nodes * dims)?),
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
    let mut flat = huge_capacity(vectors.len());
    flat.extend(vectors.iter().copied());
    flat
}

/// An empty vector with room for `len` values, in memory that asks for huge pages.
fn huge_capacity<T>(len: usize) -> Vec<T> {
    let mut values = Vec::with_capacity(len);
    advise_huge_pages(values.spare_capacity_mut());
    values
}

/// The build's distance between two nodes' 8-bit codes at `scale`.
fn code_distance(scale: f32) -> CodeDistance {
    CodeDistance {
        inverse_scale_squared: 1.0 / (scale * scale),
    }
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

impl<'a> CodeWalk<'a> {
    /// A walk for `query` over `codes` made at `scale`.
    fn new(query: &[f32], codes: &'a [i8], dims: usize, scale: f32) -> Self {
        let query_scale = quantize::scale_for(query);
        CodeWalk {
            query: I8Query::new(query, query_scale),
            codes,
            dims,
            inverse_scales: 1.0 / (query_scale * scale),
        }
    }
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

struct NibbleWalk<'a> {
    query: NibbleQuery,
    codes: &'a [u8],
    row_bytes: usize,
}

impl<'a> NibbleWalk<'a> {
    fn new(query: &[f32], codes: &'a [u8], ranges: &NibbleRanges) -> Self {
        NibbleWalk {
            query: ranges.query(query),
            codes,
            row_bytes: ranges.row_bytes(),
        }
    }
}

impl NodeDistance for NibbleWalk<'_> {
    #[inline]
    fn distance(&self, node: u32) -> f32 {
        let start = node as usize * self.row_bytes;
        1.0 - self.query.dot(&self.codes[start..start + self.row_bytes])
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        let start = node as usize * self.row_bytes;
        for line in (0..self.row_bytes).step_by(64) {
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
