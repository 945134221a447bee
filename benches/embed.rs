//! The embedding stage's CPU kernels against candle's own ops, in one process on the same
//! deterministic inputs: the feed-forward GELU of one 4096-token batch (4096 × 1152 values),
//! RMSNorm on such a batch, attention, and the matrix products of the model's linear
//! layers on such a batch, as candle's `Linear`
//! computes them (x · Wᵀ) and as themap's packed kernels do (f32 and bf16, where the CPU has
//! AVX-512 and AVX512_BF16),
//! with their rate in FLOP/s (criterion's "elem/s").
//!
//!     cargo bench --bench embed

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use themap::embed::kernels::{
    attention as attention_kernel, gelu_tanh_mul, rms_norm, Heads, MatmulFormat, PackedWeights,
};

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

/// Tokens × input features × output features of the encoder's linear layers for one
/// 4096-token batch (EmbeddingGemma 300m: hidden 768, feed-forward 1152, three query heads and
/// one key-value head of 256): gate and up, q and o, k and v, down; and a feed-forward four
/// times wider (4608), the widest shape of models of this kind.
const LINEAR_SHAPES: [(usize, usize, usize); 5] = [
    (4096, 768, 1152),
    (4096, 768, 768),
    (4096, 768, 256),
    (4096, 1152, 768),
    (4096, 768, 4608),
];

const FORMATS: [MatmulFormat; 2] = [MatmulFormat::F32, MatmulFormat::Bf16];

fn name(format: MatmulFormat) -> &'static str {
    match format {
        MatmulFormat::F32 => "f32",
        MatmulFormat::Bf16 => "bf16",
    }
}

fn linear(c: &mut Criterion) {
    let mut group = c.benchmark_group("linear x·Wᵀ (elem/s = FLOP/s)");
    for (m, k, n) in LINEAR_SHAPES {
        let x = Tensor::from_vec(values(m * k, 3), (m, k), &Device::Cpu).unwrap();
        let w = Tensor::from_vec(values(n * k, 4), (n, k), &Device::Cpu).unwrap();
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_function(format!("candle f32 {m}x{k}x{n}"), |b| {
            b.iter(|| x.matmul(&w.t().unwrap()).unwrap())
        });
        // The packed kernels as the encoder calls them: weights packed once, activations as
        // they are (f32) or rounded per call (bf16).
        for format in FORMATS {
            if let Some(packed) = PackedWeights::pack(format, &values(n * k, 4), n, k) {
                let (a, mut out) = (values(m * k, 3), vec![0f32; m * n]);
                group.bench_function(format!("themap {} {m}x{k}x{n}", name(format)), |b| {
                    b.iter(|| packed.matmul(&a, &mut out))
                });
            }
        }
    }
    for format in FORMATS.into_iter().filter(|f| !f.supported()) {
        eprintln!(
            "themap {} skipped: this CPU lacks its AVX-512 instructions",
            name(format)
        );
    }
    group.finish();
}

fn norm(c: &mut Criterion) {
    let shape = (4096, 768);
    let xs = Tensor::from_vec(values(shape.0 * shape.1, 5), shape, &Device::Cpu).unwrap();
    let scale = Tensor::from_vec(values(shape.1, 6), shape.1, &Device::Cpu).unwrap();
    let mut group = c.benchmark_group("rms_norm, 4096 x 768");
    group.bench_function("candle", |b| {
        b.iter(|| candle_nn::ops::rms_norm(&xs, &scale, 1e-6).unwrap())
    });
    group.bench_function("themap kernel", |b| b.iter(|| rms_norm(&xs, &scale, 1e-6).unwrap()));
    group.finish();
}

/// Attention for one 4096-token batch (16 texts of 256 tokens, 3 query heads sharing one
/// key-value head of 256): candle's way (scores q · kᵀ, softmax, weights · v, the queries of a
/// text stacked as (768 × 256)) against themap's fused kernel on the rows one product of the
/// projections writes (its rate counts the two products' FLOPs only).
fn attention(c: &mut Criterion) {
    let (texts, seq, head, query_heads) = (16, 256, 256, 3);
    let tensor = |dims: (usize, usize, usize), seed| {
        Tensor::from_vec(values(dims.0 * dims.1 * dims.2, seed), dims, &Device::Cpu).unwrap()
    };
    let (q, k, v) = (
        tensor((texts, query_heads * seq, head), 7),
        tensor((texts, seq, head), 8),
        tensor((texts, seq, head), 10),
    );
    let heads = Heads {
        query: query_heads,
        key_value: 1,
        dim: head,
    };
    // The same values as rows of one product: queries, key and value side by side per token
    // (scaled down so that the softmax is not one-hot).
    let qkv: Vec<f32> = values(texts * seq * heads.qkv_width(), 11)
        .iter()
        .map(|x| x / 16.0)
        .collect();
    let lengths = vec![seq; texts];
    let mut out = vec![0f32; texts * seq * heads.out_width()];
    let mut group = c.benchmark_group("attention, 16 texts x 256 tokens, 3 heads (elem/s = FLOP/s)");
    group.throughput(Throughput::Elements(
        (2 * 2 * texts * query_heads * seq * seq * head) as u64,
    ));
    group.bench_function("candle f32", |b| {
        b.iter(|| {
            let scores = (q.matmul(&k.t().unwrap()).unwrap() * 0.0625).unwrap();
            let weights = candle_nn::ops::softmax_last_dim(&scores).unwrap();
            weights.matmul(&v).unwrap()
        })
    });
    for format in FORMATS.into_iter().filter(|f| f.supported()) {
        group.bench_function(format!("themap {}", name(format)), |b| {
            b.iter(|| attention_kernel(format, &qkv, heads, &lengths, 0.0625, None, &mut out))
        });
    }
    group.finish();
}

criterion_group!(benches, gelu, norm, linear, attention);
criterion_main!(benches);
