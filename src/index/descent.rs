//! The k nearest neighbours of every row at once, by NN-descent (Dong, Moses & Li 2011, as in
//! pynndescent): start from random neighbours, then repeatedly let each point's neighbours
//! introduce themselves to one another, keeping the closest. Each round costs O(n·k²) distances,
//! a handful of rounds suffice, and nothing is O(n²).
//!
//! Deterministic for a seed, whatever the thread count: distances are computed in parallel a
//! block of points at a time, and applied in a fixed order. (The HNSW graph of the index is
//! built by parallel insertion, whose result depends on thread timing.)

use ndarray::ArrayView2;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use super::quantize::dot_f32;
use crate::progress::Progress;

/// Rounds at most; descent stops earlier once a round improves fewer than 0.1% of entries.
const MAX_ROUNDS: usize = 12;
const STOP_FRACTION: f64 = 0.001;
/// Points whose candidate pairs are computed in parallel before being applied in order.
const BLOCK: usize = 1024;

/// Each row's `k` nearest other rows, nearest first, with their cosine distance (1 − dot;
/// rows are unit vectors).
#[derive(Debug, Clone)]
pub struct KnnGraph {
    pub k: usize,
    /// `neighbours[i * k + j]`: the j-th nearest row to row i.
    pub neighbours: Vec<u32>,
    pub distances: Vec<f32>,
}

impl KnnGraph {
    pub fn of(&self, row: usize) -> (&[u32], &[f32]) {
        let range = row * self.k..(row + 1) * self.k;
        (&self.neighbours[range.clone()], &self.distances[range])
    }
}

/// One point's current neighbours, kept sorted nearest first, and which are new since the
/// last round.
#[derive(Clone)]
struct Heap {
    ids: Vec<u32>,
    distances: Vec<f32>,
    new: Vec<bool>,
}

impl Heap {
    /// Inserts `id` if it is nearer than the farthest kept and not already there.
    fn push(&mut self, id: u32, distance: f32) -> bool {
        let k = self.ids.len();
        if distance >= self.distances[k - 1] || self.ids.contains(&id) {
            return false;
        }
        let at = self.distances.partition_point(|&d| d <= distance);
        self.ids.insert(at, id);
        self.distances.insert(at, distance);
        self.new.insert(at, true);
        self.ids.truncate(k);
        self.distances.truncate(k);
        self.new.truncate(k);
        true
    }
}

/// The `k`-nearest-neighbour graph of the rows of `vectors` (unit length). Needs more than `k`
/// rows.
pub fn knn_graph(vectors: ArrayView2<f32>, k: usize, seed: u64, progress: &dyn Progress) -> KnnGraph {
    let n = vectors.nrows();
    assert!(n > k && k > 0, "NN-descent needs more rows ({n}) than neighbours ({k})");
    let wanted = k;
    // Descent keeps more neighbours than asked for: they introduce more candidates, and the
    // nearest k come out right far more often (recall, measured in the tests).
    let k = (k + k / 2).min(n - 1);
    let rows: Vec<&[f32]> = vectors
        .outer_iter()
        .map(|r| r.to_slice().expect("rows are contiguous"))
        .collect();
    let distance = |a: usize, b: usize| 1.0 - dot_f32(rows[a], rows[b]);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);

    // Random neighbours to start from.
    let mut heaps: Vec<Heap> = (0..n)
        .map(|i| {
            let mut heap = Heap {
                ids: vec![u32::MAX; k],
                distances: vec![f32::INFINITY; k],
                new: vec![true; k],
            };
            while heap.ids.contains(&u32::MAX) {
                let j = rng.gen_range(0..n);
                if j != i {
                    heap.push(j as u32, distance(i, j));
                }
            }
            heap
        })
        .collect();

    progress.start("finding neighbours", MAX_ROUNDS as u64, "rounds");
    for _ in 0..MAX_ROUNDS {
        // Each point's new and old neighbours, forward and reverse (reverse ones sampled to k).
        let mut new: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut old: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (i, heap) in heaps.iter_mut().enumerate() {
            for (slot, &j) in heap.ids.iter().enumerate() {
                if heap.new[slot] {
                    new[i].push(j);
                } else {
                    old[i].push(j);
                }
            }
            heap.new.fill(false);
        }
        let (mut reverse_new, mut reverse_old): (Vec<Vec<u32>>, Vec<Vec<u32>>) =
            (vec![Vec::new(); n], vec![Vec::new(); n]);
        for i in 0..n {
            for &j in &new[i] {
                reverse_new[j as usize].push(i as u32);
            }
            for &j in &old[i] {
                reverse_old[j as usize].push(i as u32);
            }
        }
        for i in 0..n {
            for (list, reverse) in [(&mut new[i], &mut reverse_new[i]), (&mut old[i], &mut reverse_old[i])] {
                if reverse.len() > k {
                    reverse.shuffle(&mut rng);
                    reverse.truncate(k);
                }
                list.extend(reverse.iter().copied());
                list.sort_unstable();
                list.dedup();
            }
        }

        // Local join: new × new and new × old pairs, computed a block at a time in parallel,
        // applied in order.
        let mut updates = 0usize;
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            let pairs: Vec<Vec<(u32, u32, f32)>> = (start..end)
                .into_par_iter()
                .map(|i| {
                    let mut out = Vec::new();
                    let (fresh, seen) = (&new[i], &old[i]);
                    for (a, &u) in fresh.iter().enumerate() {
                        for &v in fresh[a + 1..].iter().chain(seen.iter()) {
                            if u != v {
                                out.push((u, v, distance(u as usize, v as usize)));
                            }
                        }
                    }
                    out
                })
                .collect();
            for (u, v, d) in pairs.into_iter().flatten() {
                updates += heaps[u as usize].push(v, d) as usize;
                updates += heaps[v as usize].push(u, d) as usize;
            }
        }
        progress.advance(1, 0);
        tracing::debug!("NN-descent round: {updates} updates");
        if (updates as f64) < STOP_FRACTION * (n * k) as f64 {
            break;
        }
    }
    progress.finish();

    let mut neighbours = Vec::with_capacity(n * wanted);
    let mut distances = Vec::with_capacity(n * wanted);
    for heap in heaps {
        neighbours.extend(&heap.ids[..wanted]);
        distances.extend(&heap.distances[..wanted]);
    }
    KnnGraph {
        k: wanted,
        neighbours,
        distances,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand_distr::{Distribution, Normal};

    /// Unit rows around 30 random centres, as sentence embeddings gather around topics.
    fn unit_rows(n: usize, dims: usize, seed: u64) -> Array2<f32> {
        let normal = Normal::new(0.0f32, 1.0).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let centres = Array2::from_shape_fn((30, dims), |_| normal.sample(&mut rng));
        let mut data = Array2::from_shape_fn((n, dims), |(i, j)| centres[[i % 30, j]] + 0.8 * normal.sample(&mut rng));
        for mut row in data.outer_iter_mut() {
            let norm = row.dot(&row).sqrt();
            row /= norm;
        }
        data
    }

    /// Recall against exact neighbours, and the same graph for the same seed.
    #[test]
    fn finds_the_exact_neighbours_and_repeats_exactly() {
        let data = unit_rows(3000, 64, 7);
        let k = 10;
        let graph = knn_graph(data.view(), k, 1, &crate::Silent);
        let mut found = 0;
        for i in 0..data.nrows() {
            let mut exact: Vec<(f32, usize)> = (0..data.nrows())
                .filter(|&j| j != i)
                .map(|j| (1.0 - data.row(i).dot(&data.row(j)), j))
                .collect();
            exact.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (ids, distances) = graph.of(i);
            assert!(distances.windows(2).all(|w| w[0] <= w[1]));
            found += exact[..k].iter().filter(|(_, j)| ids.contains(&(*j as u32))).count();
        }
        let recall = found as f64 / (data.nrows() * k) as f64;
        eprintln!("recall@{k} {recall}");
        assert!(recall > 0.95, "recall {recall}");
        let again = knn_graph(data.view(), k, 1, &crate::Silent);
        assert_eq!(again.neighbours, graph.neighbours);
    }
}
