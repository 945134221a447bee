//! A UMAP layout (McInnes, Healy & Melville 2018), following umap-learn's choices: the 15
//! nearest neighbours of each passage by cosine ([`crate::index::descent`]), a fuzzy graph from
//! them, then stochastic gradient descent that pulls neighbours together and pushes random
//! pairs apart. Cost grows as n·k, not n²: what makes a map of 100,000 passages possible where
//! exact t-SNE stops at a few thousand.
//!
//! Deterministic for a seed: the neighbour graph is, the start is the first two principal
//! components (power iteration from a fixed vector), and the descent runs in fixed blocks, each
//! with its own seeded generator, that never write the same point.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::index::descent::{knn_graph, KnnGraph};
use crate::progress::Progress;

/// umap-learn's `n_neighbors`, which counts the passage itself: 14 nearest other passages.
pub const NEIGHBOURS: usize = 15;
/// The curve `1 / (1 + a·d^2b)` that umap-learn fits for min_dist 0.1, spread 1.
const A: f32 = 1.576_943_5;
const B: f32 = 0.895_060_9;
const NEGATIVE_SAMPLES: f32 = 5.0;
const CLIP: f32 = 4.0;

/// 2-D coordinates of the rows of `vectors` (unit length). Needs more than [`NEIGHBOURS`] rows.
pub fn umap(vectors: ArrayView2<f32>, seed: u64, progress: &dyn Progress) -> Array2<f32> {
    let n = vectors.nrows();
    let graph = knn_graph(vectors, (NEIGHBOURS - 1).min(n - 1), seed, progress);
    let edges = fuzzy_graph(&graph);
    let start = principal_plane(vectors, seed);
    // umap-learn: more epochs for small inputs, where they are cheap.
    let epochs = if n <= 10_000 { 500 } else { 200 };
    optimize(start, &edges, epochs, seed, progress)
}

/// A weighted edge of the fuzzy graph, in both directions.
struct Edge {
    head: u32,
    tail: u32,
    weight: f32,
}

/// The symmetric fuzzy neighbour graph: each point's distances rescaled so that its nearest
/// neighbour has weight 1 and the weights sum to log2(k + 1) (the point itself counted, as in
/// umap-learn), then `a + b − a·b` of both directions.
fn fuzzy_graph(graph: &KnnGraph) -> Vec<Edge> {
    let n = graph.neighbours.len() / graph.k;
    let target = ((graph.k + 1) as f32).log2();
    let mut directed: Vec<(u64, f32)> = Vec::with_capacity(n * graph.k);
    for i in 0..n {
        let (ids, distances) = graph.of(i);
        let rho = distances.iter().copied().find(|&d| d > 0.0).unwrap_or(0.0);
        let sigma = bandwidth(distances, rho, target);
        for (&j, &d) in ids.iter().zip(distances) {
            let weight = if d <= rho { 1.0 } else { (-(d - rho) / sigma).exp() };
            let (lo, hi) = if (i as u32) < j { (i as u32, j) } else { (j, i as u32) };
            directed.push(((lo as u64) << 32 | hi as u64, weight));
        }
    }
    directed.sort_unstable_by_key(|&(key, _)| key);
    let mut edges = Vec::with_capacity(directed.len() * 2);
    let mut at = 0;
    while at < directed.len() {
        let (key, a) = directed[at];
        let b = match directed.get(at + 1) {
            Some(&(next, b)) if next == key => {
                at += 1;
                b
            }
            _ => 0.0,
        };
        at += 1;
        let weight = a + b - a * b;
        let (lo, hi) = ((key >> 32) as u32, key as u32);
        edges.push(Edge {
            head: lo,
            tail: hi,
            weight,
        });
        edges.push(Edge {
            head: hi,
            tail: lo,
            weight,
        });
    }
    // Row by row, as umap-learn walks its sparse matrix: the order the descent visits edges in.
    edges.sort_unstable_by_key(|e| (e.head, e.tail));
    edges
}

/// The σ for which `Σ exp(−(d − ρ)/σ)` over the neighbours equals `target`, by bisection.
fn bandwidth(distances: &[f32], rho: f32, target: f32) -> f32 {
    let (mut lo, mut hi, mut sigma) = (0.0f32, f32::INFINITY, 1.0f32);
    for _ in 0..64 {
        let sum: f32 = distances.iter().map(|&d| (-(d - rho).max(0.0) / sigma).exp()).sum();
        if (sum - target).abs() < 1e-5 {
            break;
        }
        if sum > target {
            hi = sigma;
            sigma = (lo + hi) / 2.0;
        } else {
            lo = sigma;
            sigma = if hi.is_infinite() { sigma * 2.0 } else { (lo + hi) / 2.0 };
        }
    }
    sigma.max(1e-6)
}

/// The rows projected on their first two principal components (power iteration with deflation
/// on the centred data, never forming the covariance), each axis scaled to [0, 10].
fn principal_plane(vectors: ArrayView2<f32>, seed: u64) -> Array2<f32> {
    let mean = vectors.mean_axis(Axis(0)).expect("rows");
    let centred = &vectors - &mean;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut components: Vec<Array1<f32>> = Vec::new();
    for _ in 0..2 {
        let mut v = Array1::from_shape_fn(vectors.ncols(), |_| rng.gen::<f32>() - 0.5);
        for _ in 0..30 {
            // Xᵀ(X v), a row at a time (a transposed product takes ndarray's slow path).
            let mut next = Array1::zeros(vectors.ncols());
            for row in centred.outer_iter() {
                next.scaled_add(row.dot(&v), &row);
            }
            for c in &components {
                let along = next.dot(c);
                next.scaled_add(-along, c);
            }
            let norm = next.dot(&next).sqrt().max(f32::MIN_POSITIVE);
            v = next / norm;
        }
        components.push(v);
    }
    let mut xy = Array2::zeros((vectors.nrows(), 2));
    for (j, c) in components.iter().enumerate() {
        xy.column_mut(j).assign(&centred.dot(c));
    }
    // Each axis to [0, 10], as umap-learn rescales its start before the descent.
    for mut axis in xy.columns_mut() {
        let (lo, hi) = axis.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
        let span = (hi - lo).max(f32::MIN_POSITIVE);
        axis.mapv_inplace(|v| 10.0 * (v - lo) / span);
    }
    // A little seeded noise, so that identical passages do not start (and stay) on one point.
    xy.mapv_inplace(|v| v + 1e-4 * (rng.gen::<f32>() - 0.5));
    xy
}

/// Blocks the descent is split into, each a run of consecutive points with their edges. Fixed,
/// so that the map does not depend on how many threads run them.
const BLOCKS: usize = 32;

/// umap-learn's `optimize_layout_euclidean`, run in parallel yet deterministically: each edge is
/// sampled in proportion to its weight and pulls its head towards its tail, and each sample
/// pushes the head away from five random points; the step shrinks linearly to zero.
///
/// The points are split into [`BLOCKS`] runs, and within an epoch each run moves only its own
/// points, reading the others as they were when the epoch began. So no two threads write the
/// same point, and what a thread reads does not depend on the others' timing. Where umap-learn
/// moves both ends of an edge, here only the head moves (the graph holds every edge in both
/// directions, so each point is still pulled along all its edges). Moving it by twice the step,
/// to match umap-learn's total pull, kept neighbourhoods less well: trustworthiness 0.961
/// against 0.971 at 100,000 THUCNews headlines (benches/README.md).
fn optimize(mut xy: Array2<f32>, edges: &[Edge], epochs: usize, seed: u64, progress: &dyn Progress) -> Array2<f32> {
    let n = xy.nrows();
    let max_weight = edges.iter().map(|e| e.weight).fold(0.0f32, f32::max);
    // Edges sampled less than once in the whole run are dropped, as umap-learn does.
    let edges: Vec<&Edge> = edges
        .iter()
        .filter(|e| e.weight >= max_weight / epochs as f32)
        .collect();
    let every: Vec<f32> = edges.iter().map(|e| max_weight / e.weight).collect();
    let mut schedule: Vec<Schedule> = every
        .iter()
        .map(|&every| Schedule {
            every,
            next: every,
            every_negative: every / NEGATIVE_SAMPLES,
            next_negative: every / NEGATIVE_SAMPLES,
        })
        .collect();
    // Block boundaries: about as many edges each, cut where a new head begins (edges are sorted
    // by head), as (first point, first edge).
    let mut bounds = vec![(0usize, 0usize)];
    for b in 1..BLOCKS {
        let mut e = edges.len() * b / BLOCKS;
        while e > 0 && e < edges.len() && edges[e].head == edges[e - 1].head {
            e += 1;
        }
        let point = edges.get(e).map_or(n, |edge| edge.head as usize);
        if point > bounds.last().expect("first").0 {
            bounds.push((point, e));
        }
    }
    bounds.push((n, edges.len()));

    let mut before = vec![0.0f32; 2 * n];
    progress.start("laying out the map", epochs as u64, "epochs");
    for epoch in 0..epochs {
        before.copy_from_slice(xy.as_slice().expect("standard layout"));
        let points = split_at(
            xy.as_slice_mut().expect("standard layout"),
            bounds.iter().map(|b| 2 * b.0),
        );
        let schedules = split_at(&mut schedule, bounds.iter().map(|b| b.1));
        points
            .into_par_iter()
            .zip(schedules)
            .enumerate()
            .for_each(|(block, (points, schedule))| {
                let (first_point, first_edge) = bounds[block];
                let step = Step {
                    alpha: 1.0 - epoch as f32 / epochs as f32,
                    now: epoch as f32,
                    n,
                    first: first_point,
                    before: &before,
                };
                // One generator per block and epoch, so the draws do not depend on thread order.
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(
                    seed.wrapping_add(1) ^ ((epoch * BLOCKS + block) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                let edges = &edges[first_edge..first_edge + schedule.len()];
                step.run(points, edges, schedule, &mut rng);
            });
        progress.advance(1, 0);
    }
    progress.finish();
    xy
}

/// When an edge is next sampled, and when its head next pushes away random points.
struct Schedule {
    every: f32,
    next: f32,
    every_negative: f32,
    next_negative: f32,
}

/// One epoch of one block of the descent.
struct Step<'a> {
    alpha: f32,
    now: f32,
    n: usize,
    /// The block's first point: `points[0..2]` holds its coordinates.
    first: usize,
    /// Every point as it was when the epoch began.
    before: &'a [f32],
}

impl Step<'_> {
    fn run(&self, points: &mut [f32], edges: &[&Edge], schedule: &mut [Schedule], rng: &mut Xoshiro256PlusPlus) {
        let clip = |g: f32| g.clamp(-CLIP, CLIP);
        let own = points.len() / 2;
        // A point's position: live if it is the block's own, else as the epoch began.
        let at = |points: &[f32], p: usize| {
            let local = p.wrapping_sub(self.first);
            if local < own {
                (points[2 * local], points[2 * local + 1])
            } else {
                (self.before[2 * p], self.before[2 * p + 1])
            }
        };
        for (edge, plan) in edges.iter().zip(schedule) {
            if plan.next > self.now {
                continue;
            }
            let h = 2 * (edge.head as usize - self.first);
            let (tx, ty) = at(points, edge.tail as usize);
            let (dx, dy) = (points[h] - tx, points[h + 1] - ty);
            let d2 = dx * dx + dy * dy;
            if d2 > 0.0 {
                let d2_b1 = pow(d2, B - 1.0);
                let coeff = -2.0 * A * B * d2_b1 / (A * d2_b1 * d2 + 1.0);
                points[h] += clip(coeff * dx) * self.alpha;
                points[h + 1] += clip(coeff * dy) * self.alpha;
            }
            plan.next += plan.every;

            // Truncation is the floor here: the quotient is clamped to be non-negative.
            let negatives = ((self.now - plan.next_negative) / plan.every_negative).max(0.0) as usize;
            for _ in 0..negatives {
                let other = rng.gen_range(0..self.n);
                if other == edge.head as usize {
                    continue;
                }
                let (ox, oy) = at(points, other);
                let (dx, dy) = (points[h] - ox, points[h + 1] - oy);
                let d2 = dx * dx + dy * dy;
                if d2 > 0.0 {
                    let coeff = 2.0 * B / ((0.001 + d2) * (A * pow(d2, B) + 1.0));
                    points[h] += clip(coeff * dx) * self.alpha;
                    points[h + 1] += clip(coeff * dy) * self.alpha;
                }
            }
            plan.next_negative += negatives as f32 * plan.every_negative;
        }
    }
}

/// `slice` cut at the given ascending offsets (the first 0, the last its length).
fn split_at<T>(mut slice: &mut [T], offsets: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    let mut parts = Vec::new();
    let mut taken = 0;
    for offset in offsets.skip(1) {
        let (part, rest) = std::mem::take(&mut slice).split_at_mut(offset - taken);
        parts.push(part);
        slice = rest;
        taken = offset;
    }
    parts
}

/// `x^p` for `x > 0`, to about 1e-4 relative: `exp2(p·log2 x)` from the float's exponent bits
/// and short polynomials for the rest. The forces need no more, and libm's `powf` took most
/// of the descent's time.
fn pow(x: f32, p: f32) -> f32 {
    exp2(p * log2(x))
}

fn log2(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as f32 - 127.0;
    // The mantissa as m in [1, 2); log2(m) = 2·atanh-series in t = (m − 1)/(m + 1).
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let series = t * (2.0 + t2 * (2.0 / 3.0 + t2 * (2.0 / 5.0 + t2 * (2.0 / 7.0 + t2 * (2.0 / 9.0)))));
    exponent + series * std::f32::consts::LOG2_E
}

fn exp2(y: f32) -> f32 {
    let y = y.clamp(-126.0, 126.0);
    // floor() is a libm call on baseline x86-64 (no SSE4.1 round): truncate and step down.
    let truncated = y as i32 as f32;
    let whole = if truncated > y { truncated - 1.0 } else { truncated };
    let f = (y - whole) * std::f32::consts::LN_2;
    // e^f for f in [0, ln 2), Taylor to the 6th power.
    let e = 1.0 + f * (1.0 + f * (0.5 + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0))))));
    e * f32::from_bits(((whole as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, Normal};

    /// Unit rows around `clusters` random centres, and each row's cluster.
    fn clustered(n: usize, dims: usize, clusters: usize) -> (Array2<f32>, Vec<usize>) {
        let normal = Normal::new(0.0f32, 1.0).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let centres = Array2::from_shape_fn((clusters, dims), |_| normal.sample(&mut rng));
        let mut data = Array2::from_shape_fn((n, dims), |(i, j)| {
            centres[[i % clusters, j]] + 0.9 * normal.sample(&mut rng)
        });
        for mut row in data.outer_iter_mut() {
            let norm = row.dot(&row).sqrt();
            row /= norm;
        }
        (data, (0..n).map(|i| i % clusters).collect())
    }

    /// Share of each point's 10 nearest points on the map that are of its own cluster.
    fn neighbours_of_same_cluster(xy: &Array2<f32>, labels: &[usize]) -> f64 {
        let n = xy.nrows();
        let mut same = 0;
        for i in 0..n {
            let mut near: Vec<(f32, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| ((xy[[i, 0]] - xy[[j, 0]]).powi(2) + (xy[[i, 1]] - xy[[j, 1]]).powi(2), j))
                .collect();
            near.select_nth_unstable_by(10, |a, b| a.0.total_cmp(&b.0));
            same += near[..10].iter().filter(|(_, j)| labels[*j] == labels[i]).count();
        }
        same as f64 / (n * 10) as f64
    }

    #[test]
    fn fast_pow_is_close_to_powf() {
        for &x in &[1e-6f32, 0.003, 0.5, 1.0, 1.7, 42.0, 1e5] {
            for &p in &[B, B - 1.0] {
                let (fast, exact) = (pow(x, p), x.powf(p));
                assert!((fast - exact).abs() <= 2e-4 * exact, "{x}^{p}: {fast} against {exact}");
            }
        }
    }

    /// Twenty topics in 96 dimensions: the map keeps them apart far better than the two
    /// principal components it starts from, and the same seed gives the same map on any number
    /// of threads.
    #[test]
    fn keeps_clusters_apart_and_repeats_exactly() {
        let (data, labels) = clustered(2000, 96, 20);
        let map = umap(data.view(), 7, &crate::Silent);
        let start = principal_plane(data.view(), 7);
        let (umap_share, pca_share) = (
            neighbours_of_same_cluster(&map, &labels),
            neighbours_of_same_cluster(&start, &labels),
        );
        eprintln!("same-cluster neighbours on the map: UMAP {umap_share:.3}, PCA {pca_share:.3}");
        assert!(
            umap_share > 0.9 && umap_share > pca_share + 0.3,
            "UMAP {umap_share}, PCA {pca_share}"
        );
        assert!(map.iter().all(|v| v.is_finite()));
        // The same map again, and on one thread: the blocks, not the threads, decide it.
        assert_eq!(umap(data.view(), 7, &crate::Silent), map);
        let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(one_thread.install(|| umap(data.view(), 7, &crate::Silent)), map);
    }
}
