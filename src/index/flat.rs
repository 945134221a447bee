//! Exact nearest-neighbour search: every vector scored. The answer other searches are checked against.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use ndarray::{ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;
use serde::Serialize;

/// A search result: a row of the index and its cosine similarity to the query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Hit {
    pub row: usize,
    pub score: f32,
}

/// Min-heap entry, so the heap's top is the weakest of the best k so far.
struct Weakest(Hit);

impl PartialEq for Weakest {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Weakest {}
impl PartialOrd for Weakest {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Weakest {
    fn cmp(&self, other: &Self) -> Ordering {
        // The better hit is the smaller, so the max-heap's top is the weakest.
        best_first_order(&self.0, &other.0)
    }
}

/// Higher score first; ties broken by row (lower first) so results are deterministic.
pub(crate) fn best_first_order(a: &Hit, b: &Hit) -> Ordering {
    b.score.total_cmp(&a.score).then(a.row.cmp(&b.row))
}

/// The `k` rows of `vectors` with the highest dot product with `query` among rows `keep`
/// accepts, best first (ties: lower row first).
pub fn top_k(vectors: ArrayView2<f32>, query: ArrayView1<f32>, k: usize, keep: impl Fn(usize) -> bool) -> Vec<Hit> {
    if k == 0 {
        return Vec::new();
    }
    let scores = vectors.dot(&query);
    let mut heap = BinaryHeap::with_capacity(k + 1);
    for (row, &score) in scores.iter().enumerate() {
        if !keep(row) {
            continue;
        }
        heap.push(Weakest(Hit { row, score }));
        if heap.len() > k {
            heap.pop();
        }
    }
    let mut hits: Vec<Hit> = heap.into_iter().map(|w| w.0).collect();
    hits.sort_by(best_first_order);
    hits
}

/// [`top_k`] of every row of `queries` (no filter), by matrix products over blocks of `vectors`
/// on all threads: many queries read the vectors once, not once each.
pub fn top_k_batch(vectors: ArrayView2<f32>, queries: ArrayView2<f32>, k: usize) -> Vec<Vec<Hit>> {
    const BLOCK: usize = 32_768;
    let blocks: Vec<Vec<Vec<Hit>>> = vectors
        .axis_chunks_iter(Axis(0), BLOCK)
        .into_par_iter()
        .enumerate()
        .map(|(b, block)| {
            let scores = queries.dot(&block.t());
            scores
                .outer_iter()
                .map(|row| {
                    let mut hits: Vec<Hit> = row
                        .iter()
                        .enumerate()
                        .map(|(i, &score)| Hit {
                            row: b * BLOCK + i,
                            score,
                        })
                        .collect();
                    best_first(&mut hits, k);
                    hits
                })
                .collect()
        })
        .collect();
    (0..queries.nrows())
        .map(|q| {
            let mut hits: Vec<Hit> = blocks.iter().flat_map(|block| block[q].iter().copied()).collect();
            best_first(&mut hits, k);
            hits
        })
        .collect()
}

/// Keeps the best `k` of `hits`, best first (ties: lower row first).
fn best_first(hits: &mut Vec<Hit>, k: usize) {
    if hits.len() > k && k > 0 {
        hits.select_nth_unstable_by(k - 1, best_first_order);
    }
    hits.truncate(k);
    hits.sort_unstable_by(best_first_order);
}

/// Every row `keep` accepts, scored against `query`, best first (ties: lower row first).
pub fn ranked(vectors: ArrayView2<f32>, query: ArrayView1<f32>, keep: impl Fn(usize) -> bool) -> Vec<Hit> {
    let scores = vectors.dot(&query);
    let mut hits: Vec<Hit> = scores
        .iter()
        .enumerate()
        .filter(|&(row, _)| keep(row))
        .map(|(row, &score)| Hit { row, score })
        .collect();
    hits.sort_unstable_by(best_first_order);
    hits
}

/// The first `k` of `ranked` hits taking at most `per_group` from any one group (`group(row)`),
/// so one document cannot fill every place.
pub fn cap_per_group(ranked: Vec<Hit>, k: usize, group: impl Fn(usize) -> usize, per_group: usize) -> Vec<Hit> {
    let mut taken = std::collections::HashMap::new();
    ranked
        .into_iter()
        .filter(|hit| {
            let count = taken.entry(group(hit.row)).or_insert(0);
            *count += 1;
            *count <= per_group
        })
        .take(k)
        .collect()
}

/// Recall of approximate answers against exact ones: the share of the exact ids (over all
/// queries) that the approximate answer for the same query also holds.
pub fn recall(found: &[Vec<u32>], truth: &[Vec<u32>]) -> f64 {
    let hits: usize = found
        .iter()
        .zip(truth)
        .map(|(f, t)| f.iter().filter(|id| t.contains(id)).count())
        .sum();
    hits as f64 / truth.iter().map(Vec::len).sum::<usize>().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn best_first_with_filter() {
        let vectors = array![[1.0f32, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]];
        let query = array![1.0f32, 0.0];
        let hits = top_k(vectors.view(), query.view(), 2, |_| true);
        assert_eq!(hits.iter().map(|h| h.row).collect::<Vec<_>>(), vec![0, 3]);
        let hits = top_k(vectors.view(), query.view(), 10, |r| r != 0);
        assert_eq!(hits.iter().map(|h| h.row).collect::<Vec<_>>(), vec![3, 2, 1]);
    }

    #[test]
    fn batched_queries_match_one_at_a_time() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let vectors = ndarray::Array2::from_shape_fn((40_000, 8), |_| rng.gen_range(-1.0f32..1.0));
        let queries = ndarray::Array2::from_shape_fn((5, 8), |_| rng.gen_range(-1.0f32..1.0));
        let batched = top_k_batch(vectors.view(), queries.view(), 7);
        for (query, hits) in queries.outer_iter().zip(&batched) {
            let one = top_k(vectors.view(), query, 7, |_| true);
            assert_eq!(
                hits.iter().map(|h| h.row).collect::<Vec<_>>(),
                one.iter().map(|h| h.row).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn per_group_cap_lets_other_groups_in() {
        let vectors = array![[1.0f32, 0.0], [0.99, 0.1], [0.98, 0.2], [0.6, 0.8]];
        let query = array![1.0f32, 0.0];
        // Rows 0..3 are one group, row 3 another.
        let all = ranked(vectors.view(), query.view(), |_| true);
        let hits = cap_per_group(all, 3, |r| usize::from(r == 3), 2);
        assert_eq!(hits.iter().map(|h| h.row).collect::<Vec<_>>(), vec![0, 1, 3]);
    }
}
