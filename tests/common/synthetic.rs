//! Seeded "sentence-embedding-like" unit vectors for tests and benchmarks: a mixture of
//! anisotropic Gaussian clusters of uneven size, projected onto the unit sphere, so that
//! neighbourhoods are dense in places and sparse in others, as with real passages. Each row's
//! cluster is known, so clusterings can be scored against it.
//!
//! Shared by the integration tests (`mod common`) and the benches (`#[path]`), each of which
//! uses part of it.
#![allow(dead_code)]

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Shape of the generated data.
#[derive(Debug, Clone, Copy)]
pub struct Clustered {
    pub dims: usize,
    pub clusters: usize,
    /// Noise norm relative to the (unit) cluster centre before normalisation.
    pub spread: f32,
    pub seed: u64,
}

impl Clustered {
    pub fn new(dims: usize, seed: u64) -> Self {
        Self {
            dims,
            clusters: 200,
            spread: 1.0,
            seed,
        }
    }

    /// `base` data rows and `queries` query rows from the same mixture (different draws).
    pub fn generate(&self, base: usize, queries: usize) -> (Array2<f32>, Array2<f32>) {
        let mut mixture = Mixture::new(self);
        (mixture.draw(base).0, mixture.draw(queries).0)
    }

    /// `rows` rows and the cluster each was drawn from.
    pub fn labelled(&self, rows: usize) -> (Array2<f32>, Vec<usize>) {
        Mixture::new(self).draw(rows)
    }
}

/// The mixture's centres, per-dimension spreads and weights, and the generator drawing from it.
struct Mixture {
    rng: Xoshiro256PlusPlus,
    normal: Normal<f32>,
    centres: Array2<f32>,
    scales: Array2<f32>,
    cumulative: Vec<f32>,
}

impl Mixture {
    fn new(shape: &Clustered) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(shape.seed);
        let normal = Normal::new(0f32, 1.0).expect("valid normal");
        let d = shape.dims;
        let clusters = shape.clusters.max(1);
        let mut centres = Array2::<f32>::zeros((clusters, d));
        // Per-cluster, per-dimension noise scales: some directions vary much more than others.
        let mut scales = Array2::<f32>::zeros((clusters, d));
        for c in 0..clusters {
            for i in 0..d {
                centres[[c, i]] = normal.sample(&mut rng);
                scales[[c, i]] = (0.7 * normal.sample(&mut rng)).exp();
            }
            let norm = centres.row(c).dot(&centres.row(c)).sqrt();
            centres.row_mut(c).mapv_inplace(|v| v / norm);
            let scale_norm = scales.row(c).dot(&scales.row(c)).sqrt();
            let factor = shape.spread / scale_norm;
            scales.row_mut(c).mapv_inplace(|v| v * factor);
        }
        // Uneven cluster sizes: weights drawn from an exponential distribution.
        let weights: Vec<f32> = (0..clusters).map(|_| -rng.gen::<f32>().max(1e-6).ln()).collect();
        let total: f32 = weights.iter().sum();
        let cumulative: Vec<f32> = weights
            .iter()
            .scan(0.0, |acc, w| {
                *acc += w / total;
                Some(*acc)
            })
            .collect();
        Self {
            rng,
            normal,
            centres,
            scales,
            cumulative,
        }
    }

    fn draw(&mut self, rows: usize) -> (Array2<f32>, Vec<usize>) {
        let (clusters, d) = self.centres.dim();
        let mut out = Array2::<f32>::zeros((rows, d));
        let mut labels = Vec::with_capacity(rows);
        for mut row in out.outer_iter_mut() {
            let u: f32 = self.rng.gen();
            let c = self.cumulative.partition_point(|&x| x < u).min(clusters - 1);
            for i in 0..d {
                row[i] = self.centres[[c, i]] + self.scales[[c, i]] * self.normal.sample(&mut self.rng);
            }
            let norm = row.dot(&row).sqrt();
            row.mapv_inplace(|v| v / norm);
            labels.push(c);
        }
        (out, labels)
    }
}
