//! The embedding stage's CPU kernel against candle's own ops, in one process on the same
//! deterministic inputs: the feed-forward GELU of one 4096-token batch (4096 × 1152 values).
//!
//!     cargo bench --bench embed

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use themap::embed::kernels::gelu_tanh_mul;

fn values(n: usize, seed: usize) -> Vec<f32> {
    // A fixed spread over [-4, 4), the range pre-activations mostly fall in.
    (0..n)
        .map(|i| ((i * 7919 + seed) % 10_007) as f32 / 10_007.0 * 8.0 - 4.0)
        .collect()
}

fn gelu(c: &mut Criterion) {
    let shape = (4096, 1152);
    let n = shape.0 * shape.1;
    let gate = Tensor::from_vec(values(n, 1), shape, &Device::Cpu).unwrap();
    let up = Tensor::from_vec(values(n, 2), shape, &Device::Cpu).unwrap();
    let mut group = c.benchmark_group("gelu_tanh(gate) * up, 4096 x 1152");
    group.bench_function("candle gelu then mul", |b| {
        b.iter(|| (gate.gelu().unwrap() * &up).unwrap())
    });
    group.bench_function("themap fused kernel", |b| b.iter(|| gelu_tanh_mul(&gate, &up).unwrap()));
    group.finish();
}

criterion_group!(benches, gelu);
criterion_main!(benches);
