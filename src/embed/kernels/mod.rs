//! CPU kernels that candle lacks a fast form of: the feed-forward activation, RMSNorm,
//! attention's masked softmax, and matrix products with weights packed once (f32, and bf16 for
//! CPUs with AVX-512 BF16).

mod gelu;
mod matmul;
mod norm;
mod softmax;

pub use gelu::gelu_tanh_mul;
pub use matmul::{batched_matmul, batched_matmul_nt, bf16_supported, MatmulFormat, PackedWeights};
pub use norm::rms_norm;
pub use softmax::masked_softmax;

use candle_core::{bail, CpuStorage, Layout, Result};

/// The f32 values a kernel's input holds, which must be contiguous; `op` names the kernel in
/// the error.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        bail!("{op} takes f32 tensors");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op} takes contiguous tensors");
    };
    Ok(&values[start..end])
}
