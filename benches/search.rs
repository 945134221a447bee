//! Criterion benches for the vector-search core: exact scan, the code kernels, HNSW build, HNSW
//! search (i8 and u4 walks with f32 re-rank, and f32 walk), on seeded clustered unit vectors.
//!
//! `cargo bench --bench search`. The full comparison with hnswlib, faiss and usearch is
//! `scripts/bench-ann.sh` (benches/README.md).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use themap::index::flat;
use themap::index::hnsw::{rerank, HnswGraph, HnswParams, Precision};
use themap::index::quantize::dot_f32;
#[path = "../tests/common/synthetic.rs"]
mod synthetic;
use synthetic::Clustered;
use themap::progress::Silent;

const DIMS: usize = 768;
const SEARCH_SIZE: usize = 20_000;
const BUILD_SIZE: usize = 5_000;
const QUERIES: usize = 100;
const K: usize = 10;
const EF: usize = 64;
const SEED: u64 = 0x5eed;

fn exact_search(c: &mut Criterion) {
    let (vectors, queries) = Clustered::new(DIMS, SEED).generate(SEARCH_SIZE, QUERIES);
    let mut group = c.benchmark_group("exact_search_cpu");
    group.throughput(Throughput::Elements(QUERIES as u64));
    group.bench_function(BenchmarkId::new("top_k", SEARCH_SIZE), |b| {
        b.iter(|| {
            for q in queries.outer_iter() {
                black_box(flat::top_k(vectors.view(), q, K, |_| true));
            }
        })
    });
    group.finish();
}

/// The i8 dot-product kernels side by side: one 768-byte query against 2,000 codes (1.5 MB,
/// cache-resident, so this measures arithmetic, not memory).
fn i8_dot_kernels(c: &mut Criterion) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(SEED);
    let codes: Vec<i8> = (0..2000 * DIMS).map(|_| rng.gen_range(-127..=127)).collect();
    let query: Vec<i8> = (0..DIMS).map(|_| rng.gen_range(-127..=127)).collect();
    let mut group = c.benchmark_group("i8_dot_768");
    group.throughput(Throughput::Elements(2000));
    for (name, kernel) in themap::index::quantize::i8_kernels() {
        group.bench_function(name, |b| {
            b.iter(|| codes.chunks_exact(DIMS).map(|code| kernel(&query, code)).sum::<i32>())
        });
    }
    // The search's form: the query prepared once.
    let floats: Vec<f32> = query.iter().map(|&c| f32::from(c) / 127.0).collect();
    let prepared = themap::index::quantize::I8Query::new(&floats, 127.0);
    group.bench_function("query", |b| {
        b.iter(|| codes.chunks_exact(DIMS).map(|code| prepared.dot(code)).sum::<i32>())
    });
    // The 4-bit walk's form: 2,000 rows of 384 bytes against the prepared query's weights.
    let floats: Vec<f32> = (0..2000 * DIMS).map(|_| rng.gen_range(-0.1..0.1)).collect();
    let ranges = themap::index::quantize::NibbleRanges::fit(&floats, DIMS);
    let mut nibbles = Vec::new();
    ranges.encode(&floats, &mut nibbles);
    let prepared = ranges.query(&floats[..DIMS]);
    group.bench_function("u4_query", |b| {
        b.iter(|| {
            nibbles
                .chunks_exact(ranges.row_bytes())
                .map(|row| prepared.dot(row))
                .sum::<f32>()
        })
    });
    group.finish();
}

fn hnsw_build(c: &mut Criterion) {
    let (vectors, _) = Clustered::new(DIMS, SEED).generate(BUILD_SIZE, 0);
    let mut group = c.benchmark_group("hnsw_build_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BUILD_SIZE as u64));
    for precision in [Precision::I8, Precision::F32] {
        let params = HnswParams {
            precision,
            ..HnswParams::default()
        };
        group.bench_function(BenchmarkId::new(format!("{precision:?}"), BUILD_SIZE), |b| {
            b.iter(|| HnswGraph::build(black_box(vectors.view()), params, &Silent).unwrap())
        });
    }
    group.finish();
}

fn hnsw_search(c: &mut Criterion) {
    let (vectors, queries) = Clustered::new(DIMS, SEED).generate(SEARCH_SIZE, QUERIES);
    let mut group = c.benchmark_group("hnsw_search_cpu");
    group.throughput(Throughput::Elements(QUERIES as u64));
    for precision in [Precision::I8, Precision::U4, Precision::F32] {
        let params = HnswParams {
            precision,
            ..HnswParams::default()
        };
        let graph = HnswGraph::build(vectors.view(), params, &Silent).unwrap();
        group.bench_function(BenchmarkId::new(format!("{precision:?}_ef{EF}"), SEARCH_SIZE), |b| {
            b.iter(|| {
                for q in queries.outer_iter() {
                    let q = q.as_slice().unwrap();
                    let candidates = graph.search(q, EF, None);
                    black_box(rerank(&candidates, K, |node| {
                        dot_f32(q, vectors.row(node as usize).as_slice().unwrap())
                    }));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, exact_search, i8_dot_kernels, hnsw_build, hnsw_search);
criterion_main!(benches);
