//! CPU kernels that candle lacks a fast form of: the feed-forward activation, RMSNorm,
//! attention's masked softmax, and matrix products in bf16 for CPUs with AVX-512 BF16.

mod bf16;
mod gelu;
mod norm;
mod softmax;

pub use bf16::{batched_matmul, batched_matmul_nt, bf16_supported, Bf16Weights};
pub use gelu::gelu_tanh_mul;
pub use norm::rms_norm;
pub use softmax::masked_softmax;
