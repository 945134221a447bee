//! Criterion benches for clustering at scale, on seeded clustered unit vectors: linfa's k-means
//! assignment step (patched: a matrix product per block of rows) against the per-distance loop
//! it replaced, one linfa k-means fit, and themap's whole theme clustering with k chosen.
//!
//! `cargo bench --bench cluster`. The comparison with faiss, scikit-learn and BERTopic on real
//! and synthetic vectors is `scripts/bench-themes.sh` (benches/README.md).

#[path = "../tests/common/synthetic.rs"]
mod synthetic;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use linfa::prelude::*;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use std::hint::black_box;
use synthetic::Clustered;
use themap::cluster::{cluster, ClusterParams};
use themap::progress::Silent;

const DIMS: usize = 768;
const ROWS: usize = 20_000;
const K: usize = 50;
const SEED: u64 = 0x5eed;

fn data(rows: usize) -> Array2<f32> {
    let mut shape = Clustered::new(DIMS, SEED);
    shape.clusters = K;
    shape.labelled(rows).0
}

/// Nearest centroid a distance at a time, as linfa's assignment step did before the patch.
fn assign_per_distance(data: ArrayView2<f32>, centroids: ArrayView2<f32>) -> Vec<usize> {
    data.outer_iter()
        .map(|row| {
            let mut best = (0, f32::INFINITY);
            for (c, centroid) in centroids.outer_iter().enumerate() {
                let d: f32 = row.iter().zip(centroid).map(|(a, b)| (a - b) * (a - b)).sum();
                if d < best.1 {
                    best = (c, d);
                }
            }
            best.0
        })
        .collect()
}

fn assignment(c: &mut Criterion) {
    let vectors = data(ROWS);
    let dataset = DatasetBase::from(vectors.view());
    let model = KMeans::params_with_rng(K, Xoshiro256Plus::seed_from_u64(SEED))
        .n_runs(1)
        .max_n_iterations(5)
        .init_method(KMeansInit::KMeansPlusPlus)
        .fit(&dataset)
        .expect("k-means fits");
    let mut group = c.benchmark_group("kmeans_assign_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function(BenchmarkId::new("linfa_blocked_matmul", K), |b| {
        b.iter(|| black_box(model.predict(&vectors.view())))
    });
    group.bench_function(BenchmarkId::new("per_distance", K), |b| {
        b.iter(|| black_box(assign_per_distance(vectors.view(), model.centroids().view())))
    });
    group.finish();
}

fn fit(c: &mut Criterion) {
    let vectors = data(ROWS);
    let dataset = DatasetBase::from(vectors.view());
    let mut group = c.benchmark_group("kmeans_fit_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function(BenchmarkId::new("linfa_kmeans_pp_20_iterations", K), |b| {
        b.iter(|| {
            KMeans::params_with_rng(K, Xoshiro256Plus::seed_from_u64(SEED))
                .n_runs(1)
                .max_n_iterations(20)
                .tolerance(f32::MIN_POSITIVE)
                .fit(&dataset)
                .expect("k-means fits")
        })
    });
    group.finish();
}

fn themes(c: &mut Criterion) {
    let rows = 2 * ROWS;
    let vectors = data(rows);
    let mut group = c.benchmark_group("themes_cluster_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function(BenchmarkId::new("automatic_k", rows), |b| {
        b.iter(|| black_box(cluster(vectors.view(), &ClusterParams::default(), &Silent).expect("clusters")))
    });
    group.finish();
}

criterion_group!(benches, assignment, fit, themes);
criterion_main!(benches);
