//! Attention's query and key heads made ready in place: RMSNorm, then the rotary position
//! embedding.
//!
//! The reference normalises the heads, transposes them to (batch, heads, seq, dim), and rotates
//! them in a separate op: two copies of every head. Here each token's heads are normalised and
//! rotated where the projection wrote them, in one pass, and attention reads them from there.

use rayon::prelude::*;

/// The rotary embedding's angles for positions `0..max_len`: `half` cosines and sines each.
#[derive(Debug, Clone)]
pub struct RopeTable {
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
    /// Half the head size: the number of rotated pairs.
    pub half: usize,
}

/// For every row of `data` (rows of `stride` values), its `heads` heads of `2 · rope.half`
/// values starting at column `col`: `x / sqrt(mean(x²) + eps) · scale`, then each pair
/// (i, i + half) rotated by the row's position (`positions[row]`), as rotate-half RoPE does.
///
/// # Panics
/// If `data` is not `positions.len()` rows of `stride`, the heads do not fit in a row, or a
/// position is past the table.
pub fn norm_rope(
    data: &mut [f32],
    stride: usize,
    col: usize,
    heads: usize,
    scale: &[f32],
    eps: f32,
    rope: &RopeTable,
    positions: &[u32],
) {
    let dim = 2 * rope.half;
    assert_eq!(data.len(), positions.len() * stride, "rows and positions differ");
    assert!(
        col + heads * dim <= stride && scale.len() == dim,
        "heads do not fit the rows"
    );
    let rows_per_task = (16 * 1024 / stride).max(1);
    data.par_chunks_mut(rows_per_task * stride)
        .zip(positions.par_chunks(rows_per_task))
        .for_each(|(rows, positions)| {
            for (row, &position) in rows.chunks_exact_mut(stride).zip(positions) {
                let at = position as usize * rope.half;
                let (cos, sin) = (&rope.cos[at..at + rope.half], &rope.sin[at..at + rope.half]);
                for head in row[col..col + heads * dim].chunks_exact_mut(dim) {
                    norm_rope_head(head, scale, eps, cos, sin);
                }
            }
        });
}

fn norm_rope_head(head: &mut [f32], scale: &[f32], eps: f32, cos: &[f32], sin: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { norm_rope_head_avx2(head, scale, eps, cos, sin) };
    }
    norm_rope_head_plain(head, scale, eps, cos, sin)
}

/// The same loops compiled for AVX2 + FMA, which the compiler turns into 8-wide vector code.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn norm_rope_head_avx2(head: &mut [f32], scale: &[f32], eps: f32, cos: &[f32], sin: &[f32]) {
    norm_rope_head_plain(head, scale, eps, cos, sin)
}

#[inline(always)]
fn norm_rope_head_plain(head: &mut [f32], scale: &[f32], eps: f32, cos: &[f32], sin: &[f32]) {
    let inv = super::norm::inverse_rms(head, eps);
    let half = cos.len();
    let (first, second) = head.split_at_mut(half);
    let (scale1, scale2) = scale.split_at(half);
    for i in 0..half {
        // As the reference: the normalised value rounded to f32, then rotated.
        let x1 = first[i] * inv * scale1[i];
        let x2 = second[i] * inv * scale2[i];
        first[i] = x1 * cos[i] - x2 * sin[i];
        second[i] = x1 * sin[i] + x2 * cos[i];
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Result, Tensor};

    use super::*;

    /// Against the reference's way: candle's RMSNorm, transpose, candle's rope.
    #[test]
    fn matches_norm_then_candle_rope() -> Result<()> {
        let device = Device::Cpu;
        let (batch, seq, heads, dim) = (2, 9, 3, 16);
        let xs = Tensor::randn(0f32, 2.0, (batch, seq, heads, dim), &device)?;
        let scale = Tensor::randn(1f32, 0.3, dim, &device)?;
        let angles = Tensor::randn(0f32, 3.0, (seq + 4, dim / 2), &device)?;
        let (cos, sin) = (angles.cos()?, angles.sin()?);
        let reference = candle_nn::ops::rms_norm(&xs, &scale, 1e-6)?
            .transpose(1, 2)?
            .contiguous()?;
        let reference = candle_nn::rotary_emb::rope(&reference, &cos.narrow(0, 0, seq)?, &sin.narrow(0, 0, seq)?)?
            .transpose(1, 2)?
            .flatten_all()?
            .to_vec1::<f32>()?;

        // The same heads inside wider rows (at column 5 of 60), positions restarting per text.
        let stride = 60;
        let values = xs.flatten_all()?.to_vec1::<f32>()?;
        let mut data = vec![7f32; batch * seq * stride];
        for (row, head_values) in values.chunks(heads * dim).enumerate() {
            data[row * stride + 5..row * stride + 5 + heads * dim].copy_from_slice(head_values);
        }
        let table = RopeTable {
            cos: cos.flatten_all()?.to_vec1()?,
            sin: sin.flatten_all()?.to_vec1()?,
            half: dim / 2,
        };
        let positions: Vec<u32> = (0..batch).flat_map(|_| 0..seq as u32).collect();
        norm_rope(
            &mut data,
            stride,
            5,
            heads,
            &scale.to_vec1::<f32>()?,
            1e-6,
            &table,
            &positions,
        );
        for (row, expected) in reference.chunks(heads * dim).enumerate() {
            let got = &data[row * stride..(row + 1) * stride];
            for (i, (g, e)) in got[5..5 + heads * dim].iter().zip(expected).enumerate() {
                assert!((g - e).abs() < 1e-5, "row {row}, value {i}: {g} against {e}");
            }
            assert!(
                got[..5].iter().chain(&got[5 + heads * dim..]).all(|&v| v == 7.0),
                "row {row}: others touched"
            );
        }
        Ok(())
    }
}
