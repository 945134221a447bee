//! Exact t-SNE (van der Maaten & Hinton 2008), seeded and single-threaded, so the same input
//! always gives the same map. (linfa-tsne's Barnes-Hut backend picks tree pivots with an
//! unseeded generator, so its maps differ from run to run.) Cost is O(n²) per iteration:
//! meant for up to a few thousand points.

use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256Plus;

const ITERATIONS: usize = 1000;
const EXAGGERATION: f64 = 12.0;
const EXAGGERATION_ITERATIONS: usize = 250;

/// 2D t-SNE embedding of the rows of `data` with the given perplexity.
pub fn tsne(data: ArrayView2<f64>, perplexity: f64, seed: u64) -> Array2<f64> {
    let n = data.nrows();
    let p = joint_probabilities(data, perplexity);
    let normal = Normal::new(0.0, 1e-4).expect("valid normal");
    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    let mut y: Vec<[f64; 2]> = (0..n)
        .map(|_| [normal.sample(&mut rng), normal.sample(&mut rng)])
        .collect();
    let mut velocity = vec![[0.0f64; 2]; n];
    let mut gains = vec![[1.0f64; 2]; n];
    let learning_rate = (n as f64 / EXAGGERATION).max(50.0);
    let mut kernel = vec![0.0f64; n * n];

    for iteration in 0..ITERATIONS {
        let exaggeration = if iteration < EXAGGERATION_ITERATIONS {
            EXAGGERATION
        } else {
            1.0
        };
        let momentum = if iteration < EXAGGERATION_ITERATIONS { 0.5 } else { 0.8 };
        // Student-t kernel and its normaliser.
        let mut z = 0.0;
        for i in 0..n {
            for j in i + 1..n {
                let (dx, dy) = (y[i][0] - y[j][0], y[i][1] - y[j][1]);
                let k = 1.0 / (1.0 + dx * dx + dy * dy);
                kernel[i * n + j] = k;
                kernel[j * n + i] = k;
                z += 2.0 * k;
            }
        }
        for i in 0..n {
            let mut gradient = [0.0f64; 2];
            for j in 0..n {
                if i == j {
                    continue;
                }
                let k = kernel[i * n + j];
                let force = (exaggeration * p[[i, j]] - k / z) * k;
                gradient[0] += 4.0 * force * (y[i][0] - y[j][0]);
                gradient[1] += 4.0 * force * (y[i][1] - y[j][1]);
            }
            for d in 0..2 {
                // Delta-bar-delta gains, as in the reference implementation.
                gains[i][d] = if gradient[d].signum() != velocity[i][d].signum() {
                    gains[i][d] + 0.2
                } else {
                    (gains[i][d] * 0.8).max(0.01)
                };
                velocity[i][d] = momentum * velocity[i][d] - learning_rate * gains[i][d] * gradient[d];
            }
        }
        for i in 0..n {
            y[i][0] += velocity[i][0];
            y[i][1] += velocity[i][1];
        }
    }
    Array2::from_shape_fn((n, 2), |(i, d)| y[i][d])
}

/// Symmetric input affinities: each point's Gaussian bandwidth found by bisection so that its
/// conditional distribution has the requested perplexity.
fn joint_probabilities(data: ArrayView2<f64>, perplexity: f64) -> Array2<f64> {
    let n = data.nrows();
    let norms: Vec<f64> = data.outer_iter().map(|r| r.dot(&r)).collect();
    let gram = data.dot(&data.t());
    let target_entropy = perplexity.ln();
    let mut conditional = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        let distances: Vec<f64> = (0..n)
            .map(|j| (norms[i] + norms[j] - 2.0 * gram[[i, j]]).max(0.0))
            .collect();
        let (mut beta, mut low, mut high) = (1.0f64, 0.0f64, f64::INFINITY);
        let mut row = vec![0.0f64; n];
        for _ in 0..100 {
            let mut sum = 0.0;
            let mut weighted = 0.0;
            for j in 0..n {
                row[j] = if j == i { 0.0 } else { (-beta * distances[j]).exp() };
                sum += row[j];
                weighted += row[j] * distances[j];
            }
            let sum = sum.max(f64::MIN_POSITIVE);
            let entropy = sum.ln() + beta * weighted / sum;
            for value in row.iter_mut() {
                *value /= sum;
            }
            if (entropy - target_entropy).abs() < 1e-5 {
                break;
            }
            if entropy > target_entropy {
                low = beta;
                beta = if high.is_finite() {
                    (beta + high) / 2.0
                } else {
                    beta * 2.0
                };
            } else {
                high = beta;
                beta = (beta + low) / 2.0;
            }
        }
        conditional.row_mut(i).assign(&ndarray::ArrayView1::from(&row));
    }
    let mut joint = &conditional + &conditional.t();
    joint.mapv_inplace(|v| (v / (2.0 * n as f64)).max(1e-12));
    joint
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_clusters_and_repeats_exactly() {
        // Two Gaussian blobs of 20 points, far apart in 5 dimensions (seeded).
        let mut rng = Xoshiro256Plus::seed_from_u64(3);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let data = Array2::from_shape_fn(
            (40, 5),
            |(i, _)| if i < 20 { 0.0 } else { 10.0 } + noise.sample(&mut rng),
        );
        let a = tsne(data.view(), 5.0, 1);
        assert_eq!(a, tsne(data.view(), 5.0, 1));
        let centre = |rows: std::ops::Range<usize>| {
            let len = rows.len() as f64;
            rows.fold([0.0, 0.0], |c, i| [c[0] + a[[i, 0]] / len, c[1] + a[[i, 1]] / len])
        };
        let (c1, c2) = (centre(0..20), centre(20..40));
        let between = ((c1[0] - c2[0]).powi(2) + (c1[1] - c2[1]).powi(2)).sqrt();
        let spread = (0..20)
            .map(|i| ((a[[i, 0]] - c1[0]).powi(2) + (a[[i, 1]] - c1[1]).powi(2)).sqrt())
            .fold(0.0, f64::max);
        assert!(between > 2.0 * spread, "groups not separated: {between} vs {spread}");
    }
}
