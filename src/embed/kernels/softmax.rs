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
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for (out, &x) in out.iter_mut().zip(scores) {
        *out = ((x - max) * scale).exp();
        sum += *out;
    }
    let inv = 1.0 / sum;
    out.iter_mut().for_each(|x| *x *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;

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
