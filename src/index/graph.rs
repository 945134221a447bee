//! The index's search graph: an [`HnswGraph`] whose nodes stand for passages.
//!
//! Nodes keep their numbers from one build to the next. A passage whose text is unchanged keeps
//! its node, new passages become new nodes inserted into the existing graph, and the nodes of
//! removed or changed passages stay in the graph (they still help connect it) but are marked
//! dead, so they stop appearing in results at once. A compaction builds a fresh graph from the
//! live passages only; `Index::build` compacts by itself once dead nodes outnumber live ones.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};

use hnsw_rs::frozen::{Array, SharedBytes};

use ndarray::{ArrayView2, Axis};

use super::hnsw::{HnswGraph, HnswParams};
use super::{Hit, PassageRecord};
use crate::error::Result;
use crate::progress::Progress;

/// Marks a node whose passage is gone.
const DEAD: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq)]
pub struct SearchGraph {
    hnsw: HnswGraph,
    /// Passage row of each node, or [`DEAD`].
    rows: Array<u32>,
}

/// How the graph file is laid out: 1 wrote no checksum of the node → passage table and could
/// leave the links unaligned; 2 can be viewed in place ([`SearchGraph::view`]).
pub const LAYOUT: u32 = 2;

impl SearchGraph {
    /// A fresh graph over `vectors`, node `i` standing for passage row `i`.
    pub fn build(vectors: ArrayView2<f32>, params: HnswParams, progress: &dyn Progress) -> Result<Self> {
        Ok(SearchGraph {
            hnsw: HnswGraph::build(vectors, params, progress)?,
            rows: Array::Owned((0..vectors.nrows() as u32).collect()),
        })
    }

    /// This graph, built for `old` passages, brought up to date for `new` passages (whose vectors
    /// are `vectors`): unchanged passages keep their nodes, the others are inserted, and nodes of
    /// passages no longer there are marked dead. Returns the graph and how many nodes it added.
    pub fn update(
        self,
        old: &[PassageRecord],
        new: &[PassageRecord],
        vectors: ArrayView2<f32>,
        progress: &dyn Progress,
    ) -> Result<(Self, usize)> {
        // New rows by text hash, in order, so duplicate texts pair up one to one.
        let mut rows_by_hash: HashMap<&str, VecDeque<u32>> = HashMap::new();
        for (row, record) in new.iter().enumerate() {
            rows_by_hash
                .entry(record.hash.as_str())
                .or_default()
                .push_back(row as u32);
        }
        let mut covered = vec![false; new.len()];
        let mut rows = self.rows.to_vec();
        for row in rows.iter_mut().filter(|r| **r != DEAD) {
            let hash = old.get(*row as usize).map(|r| r.hash.as_str());
            *row = match hash.and_then(|h| rows_by_hash.get_mut(h)).and_then(VecDeque::pop_front) {
                Some(new_row) => {
                    covered[new_row as usize] = true;
                    new_row
                }
                None => DEAD,
            };
        }
        let added: Vec<usize> = (0..new.len()).filter(|&r| !covered[r]).collect();
        let hnsw = self.hnsw.extend(vectors.select(Axis(0), &added).view(), progress)?;
        rows.extend(added.iter().map(|&r| r as u32));
        Ok((
            SearchGraph {
                hnsw,
                rows: Array::Owned(rows),
            },
            added.len(),
        ))
    }

    pub fn params(&self) -> &HnswParams {
        self.hnsw.params()
    }

    /// Nodes in the graph, dead ones included.
    pub fn nodes(&self) -> usize {
        self.rows.len()
    }

    /// Nodes that stand for a current passage.
    pub fn live(&self) -> usize {
        self.rows.iter().filter(|&&r| r != DEAD).count()
    }

    /// Passages near `query` among the rows `allowed` accepts: the graph is searched `ef` wide,
    /// and the best `rerank` found are scored exactly against `vectors` (the passage vectors) and
    /// returned best first.
    pub fn search(
        &self,
        query: &[f32],
        ef: usize,
        rerank: usize,
        allowed: &dyn Fn(usize) -> bool,
        vectors: ArrayView2<f32>,
    ) -> Vec<Hit> {
        let accepts = |node: u32| {
            let row = self.rows[node as usize];
            row != DEAD && allowed(row as usize)
        };
        let mut candidates = self.hnsw.search(query, ef, Some(&accepts));
        candidates.truncate(rerank);
        let query = ndarray::ArrayView1::from(query);
        let mut hits: Vec<Hit> = candidates
            .iter()
            .map(|c| {
                let row = self.rows[c.node as usize] as usize;
                Hit {
                    row,
                    score: vectors.row(row).dot(&query),
                }
            })
            .collect();
        hits.sort_by(super::flat::best_first_order);
        hits
    }

    /// Writes the graph in [`LAYOUT`] 2: the HNSW graph, the node → passage table and the
    /// table's xxh3, which a viewed graph checks (the table decides which passages a search
    /// returns; the rest only guides the walk).
    pub fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        self.hnsw.write_to(w)?;
        let bytes = rows_bytes(&self.rows);
        w.write_all(&bytes)?;
        w.write_all(&xxhash_rust::xxh3::xxh3_64(&bytes).to_le_bytes())
    }

    /// Reads what [`SearchGraph::write_to`] wrote in `layout`, checking every node's row is
    /// below `passages`.
    pub fn read_from(r: &mut impl Read, params: HnswParams, passages: usize, layout: u32) -> std::io::Result<Self> {
        let hnsw = HnswGraph::read_from(r, params)?;
        let mut bytes = vec![0u8; 4 * hnsw.len()];
        r.read_exact(&mut bytes)?;
        if layout >= 2 {
            let mut footer = [0u8; 8];
            r.read_exact(&mut footer)?;
            check_rows_digest(&bytes, footer)?;
        }
        let rows: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let mut rest = [0u8; 1];
        if r.read(&mut rest)? != 0 {
            return Err(invalid("trailing bytes after the graph"));
        }
        SearchGraph {
            hnsw,
            rows: Array::Owned(rows),
        }
        .checked(passages)
    }

    /// The graph written in [`LAYOUT`] 2 that `bytes` (a memory-mapped file) holds, viewed in
    /// place: its header, upper layers and node → passage table are checked, the layer-0 links
    /// and vectors are read only where a search goes (see `hnsw_rs::frozen::FrozenHnsw::view`).
    pub fn view(bytes: &SharedBytes, params: HnswParams, passages: usize) -> std::io::Result<Self> {
        let (hnsw, at) = HnswGraph::view(bytes, 0, params)?;
        let all = (**bytes).as_ref();
        let table = all
            .get(at..at + 4 * hnsw.len())
            .ok_or_else(|| invalid("graph truncated in its passage table"))?;
        let footer = all
            .get(at + table.len()..)
            .and_then(|f| <[u8; 8]>::try_from(f).ok())
            .ok_or_else(|| invalid("graph file does not end with its passage table's checksum"))?;
        check_rows_digest(table, footer)?;
        let rows = Array::view(bytes, at, hnsw.len()).expect("length checked above");
        SearchGraph { hnsw, rows }.checked(passages)
    }

    fn checked(self, passages: usize) -> std::io::Result<Self> {
        if self.rows.iter().any(|&row| row != DEAD && row as usize >= passages) {
            return Err(invalid("a graph node points past the last passage"));
        }
        Ok(self)
    }
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

fn rows_bytes(rows: &[u32]) -> Vec<u8> {
    rows.iter().flat_map(|r| r.to_le_bytes()).collect()
}

fn check_rows_digest(table: &[u8], footer: [u8; 8]) -> std::io::Result<()> {
    match xxhash_rust::xxh3::xxh3_64(table) == u64::from_le_bytes(footer) {
        true => Ok(()),
        false => Err(invalid("the node → passage table does not match its checksum")),
    }
}
