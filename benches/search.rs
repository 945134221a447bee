//! Exact search over unit vectors: the baseline every faster index is measured against.
//!
//! `cargo bench --bench search`. Seeded data, so runs are comparable.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::{Array1, Array2};
use std::hint::black_box;
use themap::index::flat;

const DIM: usize = 768;
const SIZES: [usize; 2] = [1_000, 20_000];
const K: usize = 10;
const SEED: u64 = 0x5eed;

/// xorshift64*: a tiny seeded generator, enough for benchmark data.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }
}

fn unit_rows(rows: usize, rng: &mut Rng) -> Array2<f32> {
    let mut data = Array2::from_shape_fn((rows, DIM), |_| rng.next_f32());
    for mut row in data.outer_iter_mut() {
        let norm = row.dot(&row).sqrt();
        row /= norm;
    }
    data
}

fn exact_search(c: &mut Criterion) {
    let mut rng = Rng(SEED);
    let mut group = c.benchmark_group("exact_search_cpu");
    for n in SIZES {
        let vectors = unit_rows(n, &mut rng);
        let query: Array1<f32> = unit_rows(1, &mut rng).row(0).to_owned();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("top_k", n), &n, |b, _| {
            b.iter(|| flat::top_k(black_box(vectors.view()), black_box(query.view()), K, |_| true))
        });
        group.bench_with_input(BenchmarkId::new("top_k_per_doc_3", n), &n, |b, _| {
            b.iter(|| {
                flat::top_k_per_group(
                    black_box(vectors.view()),
                    black_box(query.view()),
                    K,
                    |_| true,
                    |row| row / 50,
                    3,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, exact_search);
criterion_main!(benches);
