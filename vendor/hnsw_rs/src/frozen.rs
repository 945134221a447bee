//! A read-optimised copy of a finished [`Hnsw`] graph, and the way back.
//!
//! [`Hnsw`] keeps every point behind an `Arc` with its own data vector, and its links as lists
//! of `Arc<Point>` behind a `RwLock`: good for concurrent insertion, but a search follows two
//! pointers per neighbour and the graph takes more memory than hnswlib's. Once
//! insertion is over, [`FrozenHnsw::from_hnsw`] copies the links into flat `u32` arrays, one
//! fixed-stride row per point at layer 0 (hnswlib's layout). Searches then cost one array read
//! per neighbour plus the distance, which the caller supplies through [`NodeDistance`], so the
//! vectors can live anywhere and in any precision.
//!
//! [`FrozenHnsw::thaw`] rebuilds an [`Hnsw`] with the same points, levels and links, so more
//! points can be inserted with the usual [`Hnsw::insert_slice`] and the result frozen again.
//!
//! Node ids are the `DataId`s given at insertion, which must be `0..n`.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use anndists::dist::distances::Distance;

use crate::hnsw::{Hnsw, Point, PointId, PointWithOrder};

const MAGIC: &[u8; 8] = b"HNSWFRZ1";

/// Distance from the query being searched to node `node`. Smaller is closer.
pub trait NodeDistance {
    fn distance(&self, node: u32) -> f32;
    /// Hint that `node` will be scored soon (a cache prefetch of its vector); optional.
    #[inline]
    fn prefetch(&self, _node: u32) {}
}

/// Reusable "seen" marks for one search at a time: an epoch per node, so clearing is O(1).
#[derive(Debug, Default, Clone)]
pub struct Visited {
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    fn start(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `node`; true when it was not marked before in this search.
    #[inline]
    fn insert(&mut self, node: u32) -> bool {
        let mark = &mut self.marks[node as usize];
        let fresh = *mark != self.epoch;
        *mark = self.epoch;
        fresh
    }
}

/// A node and its distance to the query, ordered by distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub distance: f32,
    pub node: u32,
}

impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance.total_cmp(&other.distance).then(self.node.cmp(&other.node))
    }
}

/// What went wrong turning an [`Hnsw`] into a [`FrozenHnsw`] or reading one from bytes.
pub type FrozenResult<T> = io::Result<T>;

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// The links of an HNSW graph in flat arrays. See the module docs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FrozenHnsw {
    /// Links per node in the upper layers (hnsw_rs's `max_nb_connection`).
    max_nb_connection: usize,
    ef_construction: usize,
    max_layer: usize,
    /// Highest layer of each node.
    levels: Vec<u8>,
    /// Layer 0: per node `[count, id, id, ...]`, `1 + 2 * max_nb_connection` slots.
    links0: Vec<u32>,
    /// Start of each node's upper-layer rows in `upper` (`n + 1` entries).
    upper_start: Vec<u32>,
    /// Layers 1..=level of each node, `1 + max_nb_connection` slots each.
    upper: Vec<u32>,
    entry: Option<u32>,
}

impl FrozenHnsw {
    fn stride0(&self) -> usize {
        1 + 2 * self.max_nb_connection
    }

    fn stride(&self) -> usize {
        1 + self.max_nb_connection
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    pub fn max_nb_connection(&self) -> usize {
        self.max_nb_connection
    }

    pub fn ef_construction(&self) -> usize {
        self.ef_construction
    }

    pub fn max_layer(&self) -> usize {
        self.max_layer
    }

    /// Highest layer of the graph (that of the entry point).
    pub fn top_level(&self) -> usize {
        self.entry.map_or(0, |e| self.levels[e as usize] as usize)
    }

    /// Bytes held by the link arrays.
    pub fn memory_bytes(&self) -> usize {
        self.levels.len() + 4 * (self.links0.len() + self.upper_start.len() + self.upper.len())
    }

    /// Neighbours of `node` in `layer` (which must be at most the node's level).
    #[inline]
    pub fn neighbours(&self, node: u32, layer: usize) -> &[u32] {
        let node = node as usize;
        let row = if layer == 0 {
            let start = node * self.stride0();
            &self.links0[start..start + self.stride0()]
        } else {
            let start = self.upper_start[node] as usize + (layer - 1) * self.stride();
            &self.upper[start..start + self.stride()]
        };
        &row[1..1 + row[0] as usize]
    }

    /// Copies the graph of `hnsw`, whose data ids must be exactly `0..n`.
    pub fn from_hnsw<T, D>(hnsw: &Hnsw<T, D>) -> FrozenResult<Self>
    where
        T: Clone + Send + Sync,
        D: Distance<T> + Send + Sync,
    {
        let n = hnsw.get_nb_point();
        let m = hnsw.get_max_nb_connection() as usize;
        let indexation = hnsw.get_point_indexation();
        let mut points: Vec<Option<Arc<Point<T>>>> = vec![None; n];
        for point in indexation {
            let id = point.get_origin_id();
            match points.get_mut(id) {
                Some(slot @ None) => *slot = Some(point),
                Some(Some(_)) => return Err(invalid(format!("data id {id} inserted twice"))),
                None => return Err(invalid(format!("data id {id} outside 0..{n}"))),
            }
        }
        let levels: Vec<u8> = points
            .iter()
            .enumerate()
            .map(|(id, p)| p.as_ref().map(|p| p.get_point_id().0).ok_or_else(|| invalid(format!("data id {id} missing"))))
            .collect::<FrozenResult<_>>()?;
        let mut frozen = FrozenHnsw {
            max_nb_connection: m,
            ef_construction: hnsw.get_ef_construction(),
            max_layer: hnsw.get_max_level(),
            levels,
            links0: vec![0; n * (1 + 2 * m)],
            upper_start: Vec::with_capacity(n + 1),
            upper: Vec::new(),
            entry: hnsw.entry_point().map(|(id, _)| id as u32),
        };
        for (id, point) in points.into_iter().enumerate() {
            let point = point.expect("checked above");
            let level = frozen.levels[id] as usize;
            frozen.upper_start.push(
                u32::try_from(frozen.upper.len()).map_err(|_| invalid("too many upper-layer links"))?,
            );
            let neighbours = point.neighbours.read();
            for layer in 0..=level {
                // A link in layer l must lead to a node that has layer l, or the descent would read
                // a row the target does not have.
                let row: Vec<u32> = neighbours[layer]
                    .iter()
                    .map(|n| n.point_ref.get_origin_id() as u32)
                    .filter(|&other| frozen.levels[other as usize] as usize >= layer)
                    .collect();
                let (slots, start) = if layer == 0 {
                    (2 * m, id * (1 + 2 * m))
                } else {
                    let start = frozen.upper.len();
                    frozen.upper.resize(start + 1 + m, 0);
                    (m, start)
                };
                let target = if layer == 0 { &mut frozen.links0 } else { &mut frozen.upper };
                // hnsw_rs never keeps more than its bound; cut defensively rather than overrun.
                let count = row.len().min(slots);
                target[start] = count as u32;
                target[start + 1..start + 1 + count].copy_from_slice(&row[..count]);
            }
        }
        frozen
            .upper_start
            .push(u32::try_from(frozen.upper.len()).map_err(|_| invalid("too many upper-layer links"))?);
        Ok(frozen)
    }

    /// An [`Hnsw`] holding the same points, levels and links, ready for more insertions.
    /// `data(node)` gives each node's vector; `dist` must be the distance the graph was built with.
    pub fn thaw<'b, T, D>(&self, data: impl Fn(usize) -> Vec<T>, dist: D, capacity: usize) -> Hnsw<'b, T, D>
    where
        T: Clone + Send + Sync + 'b,
        D: Distance<T> + Send + Sync,
    {
        let n = self.len();
        let hnsw = Hnsw::new(
            self.max_nb_connection,
            capacity.max(n),
            self.max_layer,
            self.ef_construction,
            dist,
        );
        let mut points = Vec::with_capacity(n);
        {
            let indexation = hnsw.get_point_indexation();
            let mut layers = indexation.points_by_layer.write();
            for (node, &level) in self.levels.iter().enumerate() {
                let bucket = &mut layers[level as usize];
                let point = Arc::new(Point::new(data(node), node, PointId(level, bucket.len() as i32)));
                bucket.push(Arc::clone(&point));
                points.push(point);
            }
            *indexation.nb_point.write() = n;
            *indexation.entry_point.write() = self.entry.map(|e| Arc::clone(&points[e as usize]));
        }
        let dist = hnsw.get_distance();
        for (node, point) in points.iter().enumerate() {
            let mut neighbours = point.neighbours.write();
            for layer in 0..=self.levels[node] as usize {
                let mut row: Vec<PointWithOrder<T>> = self
                    .neighbours(node as u32, layer)
                    .iter()
                    .map(|&other| {
                        let other = &points[other as usize];
                        let d = dist.eval(point.get_v(), other.get_v());
                        PointWithOrder::new(other, d)
                    })
                    .collect();
                row.sort_unstable();
                neighbours[layer] = row;
            }
        }
        hnsw
    }

    /// The `ef` nearest nodes to the query that `filter` accepts, nearest first: greedy descent
    /// through the upper layers, then a best-first search of width `ef` at layer 0. Nodes the
    /// filter rejects are still walked through, so a filter does not cut the graph apart.
    pub fn search(
        &self,
        query: &impl NodeDistance,
        ef: usize,
        filter: Option<&dyn Fn(u32) -> bool>,
        visited: &mut Visited,
    ) -> Vec<Scored> {
        let Some(entry) = self.entry else {
            return Vec::new();
        };
        let ef = ef.max(1);
        let mut current = Scored {
            distance: query.distance(entry),
            node: entry,
        };
        for layer in (1..=self.top_level()).rev() {
            current = self.greedy(query, current, layer);
        }

        let accepts = |node: u32| filter.is_none_or(|f| f(node));
        visited.start(self.len());
        visited.insert(current.node);
        let mut candidates = BinaryHeap::with_capacity(4 * ef);
        let mut results: BinaryHeap<Scored> = BinaryHeap::with_capacity(ef + 1);
        candidates.push(Reverse(current));
        if accepts(current.node) {
            results.push(current);
        }
        while let Some(Reverse(candidate)) = candidates.pop() {
            let bound = results.peek().map_or(f32::INFINITY, |worst| worst.distance);
            if candidate.distance > bound && results.len() >= ef {
                break;
            }
            let neighbours = self.neighbours(candidate.node, 0);
            if let Some(&first) = neighbours.first() {
                query.prefetch(first);
            }
            for (i, &node) in neighbours.iter().enumerate() {
                if let Some(&next) = neighbours.get(i + 1) {
                    query.prefetch(next);
                }
                if !visited.insert(node) {
                    continue;
                }
                let distance = query.distance(node);
                let bound = results.peek().map_or(f32::INFINITY, |worst| worst.distance);
                if results.len() < ef || distance < bound {
                    let scored = Scored { distance, node };
                    candidates.push(Reverse(scored));
                    if accepts(node) {
                        results.push(scored);
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
        results.into_sorted_vec()
    }

    /// Follows the closest neighbour in `layer` until none is closer (hnswlib's descent).
    fn greedy(&self, query: &impl NodeDistance, mut current: Scored, layer: usize) -> Scored {
        loop {
            let mut moved = false;
            for &node in self.neighbours(current.node, layer) {
                let distance = query.distance(node);
                if distance < current.distance {
                    current = Scored { distance, node };
                    moved = true;
                }
            }
            if !moved {
                return current;
            }
        }
    }

    /// Writes the graph in a little-endian binary layout that [`FrozenHnsw::read_from`] checks.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(MAGIC)?;
        for value in [
            self.max_nb_connection as u64,
            self.ef_construction as u64,
            self.max_layer as u64,
            self.len() as u64,
            self.upper.len() as u64,
            self.entry.map_or(u64::MAX, u64::from),
        ] {
            w.write_all(&value.to_le_bytes())?;
        }
        w.write_all(&self.levels)?;
        for array in [&self.links0, &self.upper_start, &self.upper] {
            write_u32s(w, array)?;
        }
        Ok(())
    }

    /// Reads a graph written by [`FrozenHnsw::write_to`], checking every length, level and link,
    /// so a truncated or damaged file is an error rather than a wrong answer or a panic.
    pub fn read_from(r: &mut impl Read) -> io::Result<Self> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(invalid("not a frozen HNSW graph (bad magic)"));
        }
        let mut header = [0u64; 6];
        for value in &mut header {
            let mut bytes = [0u8; 8];
            r.read_exact(&mut bytes)?;
            *value = u64::from_le_bytes(bytes);
        }
        let [m, ef_construction, max_layer, n, upper_len, entry] = header;
        if m == 0 || m > 256 || max_layer == 0 || max_layer > 16 || n > u32::MAX as u64 || upper_len > u32::MAX as u64 {
            return Err(invalid("frozen HNSW header out of range"));
        }
        let (m, n) = (m as usize, n as usize);
        let mut levels = vec![0u8; n];
        r.read_exact(&mut levels)?;
        let links0 = read_u32s(r, n * (1 + 2 * m))?;
        let upper_start = read_u32s(r, n + 1)?;
        let upper = read_u32s(r, upper_len as usize)?;
        let entry = match entry {
            u64::MAX => None,
            e if (e as usize) < n => Some(e as u32),
            _ => return Err(invalid("entry point outside the graph")),
        };
        let graph = FrozenHnsw {
            max_nb_connection: m,
            ef_construction: ef_construction as usize,
            max_layer: max_layer as usize,
            levels,
            links0,
            upper_start,
            upper,
            entry,
        };
        graph.check()?;
        Ok(graph)
    }

    fn check(&self) -> io::Result<()> {
        let n = self.len();
        if self.entry.is_none() != (n == 0) {
            return Err(invalid("entry point and node count disagree"));
        }
        let top = self.top_level();
        for (node, &level) in self.levels.iter().enumerate() {
            if level as usize >= self.max_layer || level as usize > top {
                return Err(invalid(format!("node {node} has level {level} above the graph's")));
            }
            let start = self.upper_start[node] as usize;
            if self.upper_start[node + 1] as usize != start + level as usize * self.stride() {
                return Err(invalid(format!("node {node}: upper-layer offsets disagree with its level")));
            }
            for layer in 0..=level as usize {
                let (row, slots) = if layer == 0 {
                    let s = node * self.stride0();
                    (&self.links0[s..s + self.stride0()], 2 * self.max_nb_connection)
                } else {
                    let s = start + (layer - 1) * self.stride();
                    (&self.upper[s..s + self.stride()], self.max_nb_connection)
                };
                if row[0] as usize > slots || row[1..1 + row[0] as usize].iter().any(|&x| x as usize >= n) {
                    return Err(invalid(format!("node {node}: bad links in layer {layer}")));
                }
                if layer > 0 && row[1..1 + row[0] as usize].iter().any(|&x| (self.levels[x as usize] as usize) < layer)
                {
                    return Err(invalid(format!("node {node}: link in layer {layer} to a lower node")));
                }
            }
        }
        if self.upper_start.last().copied() != Some(self.upper.len() as u32) {
            return Err(invalid("upper-layer offsets disagree with the links"));
        }
        Ok(())
    }
}

fn write_u32s(w: &mut impl Write, values: &[u32]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(4 * values.len().min(1 << 16));
    for chunk in values.chunks(1 << 16) {
        bytes.clear();
        bytes.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        w.write_all(&bytes)?;
    }
    Ok(())
}

fn read_u32s(r: &mut impl Read, len: usize) -> io::Result<Vec<u32>> {
    let mut values = Vec::new();
    let mut bytes = vec![0u8; 4 * len.min(1 << 16)];
    while values.len() < len {
        let take = (len - values.len()).min(1 << 16);
        r.read_exact(&mut bytes[..4 * take])?;
        values.extend(bytes[..4 * take].chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    }
    Ok(values)
}
