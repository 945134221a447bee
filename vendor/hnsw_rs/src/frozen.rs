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
//! [`FrozenHnsw::view`] reads the written graph in place from shared bytes (a memory-mapped
//! file), so opening a large graph reads nothing but its header: the pages a search touches are
//! the only ones loaded.
//!
//! Node ids are the `DataId`s given at insertion, which must be `0..n`.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::ops::Deref;
use std::sync::Arc;

use anndists::dist::distances::Distance;

use crate::hnsw::{Hnsw, Point, PointId, PointWithOrder};

/// Version 1 wrote the links right after the levels, at any byte offset.
const MAGIC_V1: &[u8; 8] = b"HNSWFRZ1";
/// Version 2 pads the levels to a 4-byte boundary, so the links can be viewed in place.
const MAGIC: &[u8; 8] = b"HNSWFRZ2";
const HEADER_BYTES: usize = 8 + 6 * 8;

/// Bytes that arrays can be viewed in without a copy, such as a memory-mapped file.
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// Plain little-endian numbers: every bit pattern is a value.
pub trait Plain: Copy + Default + Send + Sync + 'static {
    fn from_le(bytes: &[u8]) -> Self;
}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl Plain for $t {
            #[inline]
            fn from_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("exact width"))
            }
        }
    )*};
}
plain!(u8, i8, u32, f32);

/// An array held in memory or viewed in place in [`SharedBytes`].
#[derive(Clone)]
pub enum Array<T: Plain> {
    Owned(Vec<T>),
    Shared { bytes: SharedBytes, start: usize, len: usize },
}

impl<T: Plain> Array<T> {
    /// `len` values at `start` in `bytes`: viewed in place where the host is little-endian and
    /// `start` is aligned for `T`, else copied. `None` if `bytes` is too short.
    pub fn view(bytes: &SharedBytes, start: usize, len: usize) -> Option<Self> {
        let width = std::mem::size_of::<T>();
        let end = len.checked_mul(width)?.checked_add(start)?;
        let all = (**bytes).as_ref();
        let slice = all.get(start..end)?;
        if cfg!(target_endian = "little") && (slice.as_ptr() as usize) % std::mem::align_of::<T>() == 0 {
            Some(Array::Shared { bytes: Arc::clone(bytes), start, len })
        } else {
            Some(Array::Owned(slice.chunks_exact(width).map(T::from_le).collect()))
        }
    }

    /// The values as a vector that can grow (a shared view is copied first).
    pub fn to_mut(&mut self) -> &mut Vec<T> {
        if let Array::Shared { .. } = self {
            *self = Array::Owned(self.to_vec());
        }
        match self {
            Array::Owned(values) => values,
            Array::Shared { .. } => unreachable!("made owned above"),
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, Array::Shared { .. })
    }
}

impl<T: Plain> Default for Array<T> {
    fn default() -> Self {
        Array::Owned(Vec::new())
    }
}

impl<T: Plain> Deref for Array<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        match self {
            Array::Owned(values) => values,
            // SAFETY: `view` checked that these bytes exist, are aligned for `T` and that the host
            // is little-endian; `T` is plain, so any bytes are a valid `T`; `bytes` is held.
            Array::Shared { bytes, start, len } => unsafe {
                std::slice::from_raw_parts((**bytes).as_ref().as_ptr().add(*start) as *const T, *len)
            },
        }
    }
}

impl<T: Plain + PartialEq> PartialEq for Array<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Plain + std::fmt::Debug> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = if self.is_shared() { "shared" } else { "owned" };
        write!(f, "Array({place}, {} values)", self.len())
    }
}

/// Distance from the query being searched to node `node`. Smaller is closer.
pub trait NodeDistance {
    fn distance(&self, node: u32) -> f32;
    /// Hint that `node` will be scored soon (a cache prefetch of its vector); optional.
    #[inline]
    fn prefetch(&self, _node: u32) {}
}

/// Reusable "seen" marks for one search at a time: one bit per node (a million nodes take
/// 128 KiB, which stays in a core's L2 cache beside the vectors being read), cleared in
/// O(nodes seen) by the trail of the last search rather than in O(n).
#[derive(Debug, Default, Clone)]
pub struct Visited {
    bits: Vec<u64>,
    /// The nodes marked since the last `start`.
    trail: Vec<u32>,
    /// Scratch list of the neighbours not yet visited, kept to save an allocation per step.
    fresh: Vec<u32>,
}

impl Visited {
    fn start(&mut self, n: usize) {
        for &node in &self.trail {
            // Every bit set in this word was set by the same search, so the word goes at once.
            self.bits[node as usize / 64] = 0;
        }
        self.trail.clear();
        let words = n.div_ceil(64);
        if self.bits.len() < words {
            self.bits.resize(words, 0);
        }
    }

    /// Marks `node`; true when it was not marked before in this search.
    #[inline]
    fn insert(&mut self, node: u32) -> bool {
        let word = &mut self.bits[node as usize / 64];
        let bit = 1u64 << (node % 64);
        if *word & bit != 0 {
            return false;
        }
        *word |= bit;
        self.trail.push(node);
        true
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

/// A cache prefetch of the line holding `p`: a hint, it never faults.
#[inline]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks the kernel to back `memory` with transparent huge pages (2 MiB on x86-64 Linux; THP in
/// its usual "madvise" mode grants them only to memory that asks). A search reads links and
/// vectors at random over hundreds of megabytes: with 4 KiB pages nearly every such read is also
/// a TLB miss, and a page walk of its own (two-dimensional under virtualisation). Only pages not
/// yet touched get huge pages at once, so ask before filling. A hint: failure changes nothing.
pub fn advise_huge_pages<T>(memory: &[T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = (memory.as_ptr() as usize).next_multiple_of(HUGE);
        let end = (memory.as_ptr() as usize + std::mem::size_of_val(memory)) / HUGE * HUGE;
        if end > start {
            // SAFETY: the range lies inside `memory`, and MADV_HUGEPAGE changes no contents.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = memory;
}

/// `len` zeros in memory that asks for huge pages ([`advise_huge_pages`]).
pub fn huge_zeroed<T: Plain>(len: usize) -> Vec<T> {
    // `vec![0; len]` of a large size is fresh zeroed memory from the kernel, not yet touched.
    let values = vec![T::default(); len];
    advise_huge_pages(&values);
    values
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
    levels: Array<u8>,
    /// Layer 0: per node `[count, id, id, ...]`, `1 + 2 * max_nb_connection` slots.
    links0: Array<u32>,
    /// Start of each node's upper-layer rows in `upper` (`n + 1` entries).
    upper_start: Array<u32>,
    /// Layers 1..=level of each node, `1 + max_nb_connection` slots each.
    upper: Array<u32>,
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

    /// Neighbours of `node` in `layer` (which must be at most the node's level). A damaged row
    /// of a viewed graph ([`FrozenHnsw::view`]) gives fewer neighbours, never a panic; its ids
    /// may still be out of range, which [`FrozenHnsw::search`] skips.
    #[inline]
    pub fn neighbours(&self, node: u32, layer: usize) -> &[u32] {
        let node = node as usize;
        let (row, slots) = if layer == 0 {
            let start = node * self.stride0();
            (self.links0.get(start..start + self.stride0()), 2 * self.max_nb_connection)
        } else {
            let start = self.upper_start.get(node).map_or(usize::MAX / 2, |&s| s as usize) + (layer - 1) * self.stride();
            (self.upper.get(start..start + self.stride()), self.max_nb_connection)
        };
        match row {
            Some(row) => &row[1..1 + (row[0] as usize).min(slots)],
            None => &[],
        }
    }

    /// Hint that the layer-0 links of `node` will be read soon (a cache prefetch of its row).
    #[inline]
    fn prefetch_links0(&self, node: u32) {
        let start = node as usize * self.stride0();
        if let Some(row) = self.links0.get(start..start + self.stride0()) {
            // A row spans up to three cache lines.
            for at in (0..row.len()).step_by(16).chain([row.len() - 1]) {
                prefetch(row[at..].as_ptr());
            }
        }
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
        let mut links0 = huge_zeroed::<u32>(n * (1 + 2 * m));
        let mut upper_start: Vec<u32> = Vec::with_capacity(n + 1);
        let mut upper: Vec<u32> = Vec::new();
        for (id, point) in points.into_iter().enumerate() {
            let point = point.expect("checked above");
            let level = levels[id] as usize;
            upper_start.push(u32::try_from(upper.len()).map_err(|_| invalid("too many upper-layer links"))?);
            let neighbours = point.neighbours.read();
            for layer in 0..=level {
                // A link in layer l must lead to a node that has layer l, or the descent would read
                // a row the target does not have.
                let row: Vec<u32> = neighbours[layer]
                    .iter()
                    .map(|n| n.point_ref.get_origin_id() as u32)
                    .filter(|&other| levels[other as usize] as usize >= layer)
                    .collect();
                let (slots, start) = if layer == 0 {
                    (2 * m, id * (1 + 2 * m))
                } else {
                    let start = upper.len();
                    upper.resize(start + 1 + m, 0);
                    (m, start)
                };
                let target = if layer == 0 { &mut links0 } else { &mut upper };
                // hnsw_rs never keeps more than its bound; cut defensively rather than overrun.
                let count = row.len().min(slots);
                target[start] = count as u32;
                target[start + 1..start + 1 + count].copy_from_slice(&row[..count]);
            }
        }
        upper_start.push(u32::try_from(upper.len()).map_err(|_| invalid("too many upper-layer links"))?);
        Ok(FrozenHnsw {
            max_nb_connection: m,
            ef_construction: hnsw.get_ef_construction(),
            max_layer: hnsw.get_max_level(),
            levels: Array::Owned(levels),
            links0: Array::Owned(links0),
            upper_start: Array::Owned(upper_start),
            upper: Array::Owned(upper),
            entry: hnsw.entry_point().map(|(id, _)| id as u32),
        })
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
        let n = self.len() as u32;
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
            // The unvisited neighbours first, all prefetched, then scored: their cache misses
            // overlap instead of queueing one by one.
            let mut fresh = std::mem::take(&mut visited.fresh);
            fresh.clear();
            for &node in self.neighbours(candidate.node, 0) {
                // Out of range only in a damaged viewed graph: skipped, never read.
                if node < n && visited.insert(node) {
                    query.prefetch(node);
                    fresh.push(node);
                }
            }
            for &node in &fresh {
                let distance = query.distance(node);
                let bound = results.peek().map_or(f32::INFINITY, |worst| worst.distance);
                if results.len() < ef || distance < bound {
                    let scored = Scored { distance, node };
                    // Its links are read when it is expanded: start loading them now, so that
                    // miss overlaps the scoring still to come instead of stalling the expansion.
                    self.prefetch_links0(node);
                    candidates.push(Reverse(scored));
                    if accepts(node) {
                        results.push(scored);
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
            visited.fresh = fresh;
        }
        results.into_sorted_vec()
    }

    /// Follows the closest neighbour in `layer` until none is closer (hnswlib's descent).
    fn greedy(&self, query: &impl NodeDistance, mut current: Scored, layer: usize) -> Scored {
        loop {
            let mut moved = false;
            for &node in self.neighbours(current.node, layer) {
                if node as usize >= self.len() {
                    continue;
                }
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
        w.write_all(&[0; 3][..padding(self.len())])?;
        for array in [&self.links0, &self.upper_start, &self.upper] {
            write_u32s(w, array)?;
        }
        Ok(())
    }

    /// Reads a graph written by [`FrozenHnsw::write_to`] (or by version 1 of the format),
    /// checking every length, level and link, so a truncated or damaged file is an error rather
    /// than a wrong answer or a panic.
    pub fn read_from(r: &mut impl Read) -> io::Result<Self> {
        let mut head = [0u8; HEADER_BYTES];
        r.read_exact(&mut head)?;
        let header = Header::parse(&head)?;
        let n = header.n;
        let mut levels = vec![0u8; n];
        r.read_exact(&mut levels)?;
        if header.padded {
            r.read_exact(&mut [0u8; 3][..padding(n)])?;
        }
        let links0 = read_u32s(r, n * (1 + 2 * header.m))?;
        let upper_start = read_u32s(r, n + 1)?;
        let upper = read_u32s(r, header.upper_len)?;
        let graph = header.graph(
            Array::Owned(levels),
            Array::Owned(links0),
            Array::Owned(upper_start),
            Array::Owned(upper),
        );
        graph.check(true)?;
        Ok(graph)
    }

    /// The graph written by [`FrozenHnsw::write_to`] at `start` in `bytes`, viewed in place
    /// (copied where the format or the alignment does not allow it), and where it ends. Only
    /// the header, levels and upper layers are checked, so opening reads a small part of a large
    /// graph: layer-0 links are not, and a search skips any that a damaged file holds out of
    /// range, so damage there can make a search less exact but never panics or reads outside
    /// the graph.
    pub fn view(bytes: &SharedBytes, start: usize) -> io::Result<(Self, usize)> {
        let all = (**bytes).as_ref();
        let head = all
            .get(start..start + HEADER_BYTES)
            .ok_or_else(|| invalid("frozen HNSW graph truncated in its header"))?;
        let header = Header::parse(head)?;
        let n = header.n;
        let mut at = start + HEADER_BYTES;
        let truncated = || invalid("frozen HNSW graph truncated");
        let mut take = |len: usize, width: usize| {
            let here = at;
            at = len.checked_mul(width).and_then(|b| b.checked_add(here)).ok_or_else(truncated)?;
            Ok::<usize, io::Error>(here)
        };
        let levels_at = take(n, 1)?;
        if header.padded {
            take(padding(n), 1)?;
        }
        let links0_at = take(n * (1 + 2 * header.m), 4)?;
        let upper_start_at = take(n + 1, 4)?;
        let upper_at = take(header.upper_len, 4)?;
        let graph = header.graph(
            Array::view(bytes, levels_at, n).ok_or_else(truncated)?,
            Array::view(bytes, links0_at, n * (1 + 2 * header.m)).ok_or_else(truncated)?,
            Array::view(bytes, upper_start_at, n + 1).ok_or_else(truncated)?,
            Array::view(bytes, upper_at, header.upper_len).ok_or_else(truncated)?,
        );
        graph.check(false)?;
        Ok((graph, at))
    }

    /// Checks levels, offsets and upper-layer links; layer-0 links too with `links0`.
    fn check(&self, links0: bool) -> io::Result<()> {
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
            let first = if links0 { 0 } else { 1 };
            for layer in first..=level as usize {
                let (row, slots) = if layer == 0 {
                    let s = node * self.stride0();
                    (&self.links0[s..s + self.stride0()], 2 * self.max_nb_connection)
                } else {
                    let s = start + (layer - 1) * self.stride();
                    let row = self
                        .upper
                        .get(s..s + self.stride())
                        .ok_or_else(|| invalid(format!("node {node}: upper-layer row past the links")))?;
                    (row, self.max_nb_connection)
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

/// Zero bytes after `n` levels, up to a 4-byte boundary (the header is 56 bytes).
fn padding(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// The fixed-size start of a written graph.
struct Header {
    padded: bool,
    m: usize,
    ef_construction: usize,
    max_layer: usize,
    n: usize,
    upper_len: usize,
    entry: Option<u32>,
}

impl Header {
    fn parse(head: &[u8]) -> io::Result<Self> {
        let padded = match &head[..8] {
            m if m == MAGIC => true,
            m if m == MAGIC_V1 => false,
            _ => return Err(invalid("not a frozen HNSW graph (bad magic)")),
        };
        let word = |i: usize| u64::from_le_bytes(head[8 + 8 * i..16 + 8 * i].try_into().expect("8 bytes"));
        let [m, ef_construction, max_layer, n, upper_len, entry] = [0, 1, 2, 3, 4, 5].map(word);
        if m == 0 || m > 256 || max_layer == 0 || max_layer > 16 || n > u32::MAX as u64 || upper_len > u32::MAX as u64 {
            return Err(invalid("frozen HNSW header out of range"));
        }
        let entry = match entry {
            u64::MAX => None,
            e if e < n => Some(e as u32),
            _ => return Err(invalid("entry point outside the graph")),
        };
        Ok(Header {
            padded,
            m: m as usize,
            ef_construction: ef_construction as usize,
            max_layer: max_layer as usize,
            n: n as usize,
            upper_len: upper_len as usize,
            entry,
        })
    }

    fn graph(&self, levels: Array<u8>, links0: Array<u32>, upper_start: Array<u32>, upper: Array<u32>) -> FrozenHnsw {
        FrozenHnsw {
            max_nb_connection: self.m,
            ef_construction: self.ef_construction,
            max_layer: self.max_layer,
            levels,
            links0,
            upper_start,
            upper,
            entry: self.entry,
        }
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
    // The whole length at once, so the links can ask for huge pages before they are written; a
    // damaged header's impossible length is an error here, and a merely large one is only
    // address space until the read runs out.
    let mut values = Vec::new();
    values
        .try_reserve_exact(len)
        .map_err(|_| invalid(format!("the header's {len} links do not fit in memory")))?;
    advise_huge_pages(values.spare_capacity_mut());
    let mut bytes = vec![0u8; 4 * len.min(1 << 16)];
    while values.len() < len {
        let take = (len - values.len()).min(1 << 16);
        r.read_exact(&mut bytes[..4 * take])?;
        values.extend(bytes[..4 * take].chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    }
    Ok(values)
}
