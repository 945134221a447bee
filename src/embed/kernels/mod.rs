//! CPU kernels that candle lacks a fast form of: matrix products with weights packed once (f32,
//! and bf16 for CPUs with AVX-512 BF16), attention over texts packed without padding, the
//! feed-forward activation, RMSNorm (with the residual add around it, and with RoPE on attention
//! heads), and attention's masked softmax.

mod attention;
mod gelu;
mod matmul;
mod norm;
mod rope;
mod softmax;

pub use attention::{attention, Heads};
pub use gelu::{gelu_tanh_mul, gelu_tanh_mul_halves};
pub use matmul::{bf16_supported, MatmulFormat, PackedWeights};
pub use norm::{add_norm, rms_norm, rms_norm_rows};
pub use rope::{norm_rope, RopeTable};
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
