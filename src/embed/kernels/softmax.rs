//! Attention's scale, mask and softmax in one pass.
//!
//! The reference scales the scores, adds a mask broadcast over heads (0 for a visible key, a
//! large negative number for a hidden one), then takes the softmax: three passes over
//! batch × heads × seq² values, and candle's broadcast add indexes one element at a time. The
//! keys a query sees are one contiguous range, its row's real tokens (within the window on
//! sliding layers), so here one pass takes the softmax over that range and writes zeros around it.

use candle_core::{bail, CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::contiguous_f32;

/// `softmax(scale · scores)` over the keys each query sees, zero elsewhere. `scores` is
/// (batch, …, seq) with one row per query, rows of a text in query order repeating per head
/// (so a row's query is its index modulo seq); `lengths[b]` is text b's real tokens; with a
/// `window`, a query sees keys at distance < window only. A row that sees no key is all zero.
pub fn masked_softmax(scores: &Tensor, scale: f32, lengths: &[usize], window: Option<usize>) -> Result<Tensor> {
    if !scores.device().is_cpu() || scores.dtype() != DType::F32 {
        bail!("masked-softmax runs on the CPU in f32");
    }
    let op = MaskedSoftmax {
        scale,
        lengths: lengths.to_vec(),
        window,
    };
    scores.contiguous()?.apply_op1_no_bwd(&op)
}

struct MaskedSoftmax {
    scale: f32,
    lengths: Vec<usize>,
    window: Option<usize>,
}

impl MaskedSoftmax {
    /// The keys query `q` of a text of `len` tokens sees: `lo..hi`.
    fn visible(&self, q: usize, len: usize) -> (usize, usize) {
        match self.window {
            None => (0, len),
            Some(window) => ((q + 1).saturating_sub(window), len.min(q + window)),
        }
    }
}

impl CustomOp1 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let scores = contiguous_f32(storage, layout, self.name())?;
        let dims = layout.dims();
        let seq = dims.last().copied().unwrap_or(0);
        if dims.first() != Some(&self.lengths.len()) || seq == 0 || scores.len() % (self.lengths.len() * seq) != 0 {
            bail!("masked-softmax: scores {dims:?} for {} texts", self.lengths.len());
        }
        let rows_per_text = scores.len() / self.lengths.len() / seq;
        let mut out = vec![0f32; scores.len()];
        out.par_chunks_mut(seq)
            .zip(scores.par_chunks(seq))
            .enumerate()
            .for_each(|(row, (out, scores))| {
                let len = self.lengths[row / rows_per_text].min(seq);
                let (lo, hi) = self.visible(row % seq, len);
                if lo < hi {
                    softmax(&scores[lo..hi], self.scale, &mut out[lo..hi]);
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

fn softmax(scores: &[f32], scale: f32, out: &mut [f32]) {
    out.copy_from_slice(scores);
    softmax_in_place(out, scale);
}

/// `softmax(scale · row)`, in place: the row's largest value is subtracted first, so `exp`
/// never overflows.
pub fn softmax_in_place(row: &mut [f32], scale: f32) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { softmax_avx2(row, scale) };
    }
    softmax_plain(row, scale)
}

/// The same loops compiled for AVX2 + FMA, which the compiler turns into 8-wide vector code.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_avx2(row: &mut [f32], scale: f32) {
    softmax_plain(row, scale)
}

#[inline(always)]
fn softmax_plain(row: &mut [f32], scale: f32) {
    let max = max(row);
    let mut lanes = [0f32; 8];
    let mut chunks = row.chunks_exact_mut(8);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *x = exp((*x - max) * scale);
            *lane += *x;
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for x in chunks.into_remainder() {
        *x = exp((*x - max) * scale);
        sum += *x;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|x| *x *= inv);
}

/// The largest value, in eight lanes so the loop vectorises.
#[inline(always)]
fn max(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(x);
        }
    }
    lanes.iter().copied().fold(rest, f32::max)
}

/// `e^x` without libm, branch-free so that it vectorises (libm's `expf`, one call per element,
/// made the softmax 3 ns an element). Cephes' `expf`: `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`,
/// `e^r` by a degree-7 polynomial, `2^n` put into the exponent bits; within 2 ulp of libm.
/// Below -87 the result is 0-ish (1e-38): softmax weights that small are zero in f32 sums anyway.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    // Adding 1.5 · 2^23 rounds to an integer, to nearest even, in the low bits of the mantissa.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x.mul_add(std::f32::consts::LOG2_E, ROUND);
    let n = shifted - ROUND;
    // ln 2 in two parts, so that `x - n·ln 2` loses nothing.
    let r = n.mul_add(-0.693_359_4, x);
    let r = n.mul_add(2.121_944_4e-4, r);
    let mut p = r.mul_add(1.987_569_1e-4, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 5.000_000_1e-1);
    let e_r = p.mul_add(r * r, r) + 1.0;
    let n = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    e_r * f32::from_bits(((n + 127) << 23) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_matches_libm() {
        let mut worst = 0f32;
        // Inside the clamped range [-87, 88].
        for i in -86_900..=87_900 {
            let x = i as f32 * 1e-3;
            let (ours, libm) = (exp(x), x.exp());
            worst = worst.max((ours - libm).abs() / libm);
        }
        assert!(worst < 3.0 * f32::EPSILON, "{worst}");
        assert!(exp(-1000.0) < 1e-37 && exp(0.0) == 1.0);
    }

    #[test]
    fn softmax_in_place_sums_to_one_on_every_width() {
        for width in [1, 7, 8, 9, 33, 300] {
            let mut row: Vec<f32> = (0..width).map(|i| (i as f32 * 0.37).sin() * 40.0).collect();
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let expected: Vec<f32> = row.iter().map(|x| ((x - max) * 0.5).exp()).collect();
            let total: f32 = expected.iter().sum();
            softmax_in_place(&mut row, 0.5);
            for (got, want) in row.iter().zip(&expected) {
                assert!(
                    (got - want / total).abs() < 1e-6,
                    "width {width}: {got} against {}",
                    want / total
                );
            }
        }
    }

    /// Against the reference's way: scale, add a 0 / -1e30 mask, softmax; rows that see a key.
    #[test]
    fn matches_scale_mask_softmax() -> Result<()> {
        let device = candle_core::Device::Cpu;
        let (batch, heads, seq) = (3, 2, 9);
        let lengths = [9, 4, 1];
        for window in [None, Some(3)] {
            let scores = Tensor::randn(0f32, 4.0, (batch, heads, seq, seq), &device)?;
            let mask: Vec<f32> = lengths
                .iter()
                .flat_map(|&len| {
                    (0..seq).flat_map(move |q| {
                        (0..seq).map(move |k| {
                            let seen = k < len && window.is_none_or(|w| q.abs_diff(k) < w);
                            if seen {
                                0.0
                            } else {
                                -1e30
                            }
                        })
                    })
                })
                .collect();
            let mask = Tensor::from_vec(mask, (batch, 1, seq, seq), &device)?;
            let reference = candle_nn::ops::softmax_last_dim(&(&scores * 0.5)?.broadcast_add(&mask)?)?;
            let ours = masked_softmax(&scores, 0.5, &lengths, window)?;
            let (reference, ours) = (
                reference.flatten_all()?.to_vec1::<f32>()?,
                ours.flatten_all()?.to_vec1::<f32>()?,
            );
            for (i, (r, o)) in reference.iter().zip(&ours).enumerate() {
                let (b, q) = (i / (heads * seq * seq), i / seq % seq);
                let sees_a_key = window.is_none_or(|w| q < lengths[b] + w - 1);
                if sees_a_key {
                    assert!((r - o).abs() < 1e-6, "window {window:?}, element {i}: {o} against {r}");
                } else {
                    assert_eq!(*o, 0.0, "a row that sees no key is zero");
                }
            }
        }
        Ok(())
    }
}
