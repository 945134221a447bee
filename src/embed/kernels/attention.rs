//! Self-attention for texts packed end to end, without padding.
//!
//! The texts of a batch lie one after another in the rows of one matrix, each row holding a
//! token's query heads, then its key heads, then its value heads (as one product of the
//! projections computes them). For each text and key-value head, the keys and the values are
//! packed once for [`PackedWeights`]; then every query head of the group, a block of rows at a
//! time, multiplies its queries by the keys, takes the softmax over the keys its rows see, and
//! multiplies the weights by the values straight into its columns of the output. Nothing is
//! transposed or copied between heads, no padded token costs anything, and a text's weights
//! never leave the cache.

use rayon::prelude::*;

use super::matmul::{MatmulFormat, PackedWeights};
use super::softmax::softmax_in_place;

/// The heads of one attention layer.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    /// Query heads.
    pub query: usize,
    /// Key-value heads, each shared by `query / key_value` query heads.
    pub key_value: usize,
    /// Values per head.
    pub dim: usize,
}

impl Heads {
    /// Values per row of queries, keys and values together.
    pub fn qkv_width(&self) -> usize {
        (self.query + 2 * self.key_value) * self.dim
    }

    /// Values per row of the output: one per query head and value.
    pub fn out_width(&self) -> usize {
        self.query * self.dim
    }
}

/// Query rows per task: a block's scores (64 × the text's length) stay in L2 even for the
/// longest texts, and a text of a few hundred tokens still splits into tasks for every core.
const QUERY_BLOCK: usize = 64;

/// `out` = softmax(scale · q kᵀ) v for every text and query head, where text `t` is the next
/// `lengths[t]` rows of `qkv` (rows of [`Heads::qkv_width`]) and each query sees the keys of its
/// own text, those within `window` positions only where a window is given. `out` has rows of
/// [`Heads::out_width`]: a token's heads side by side, as the output projection reads them.
///
/// # Panics
/// If `qkv` and `out` do not hold `lengths.iter().sum()` rows, the query heads are not a
/// multiple of the key-value heads, or the CPU lacks the format's instructions.
pub fn attention(
    format: MatmulFormat,
    qkv: &[f32],
    heads: Heads,
    lengths: &[usize],
    scale: f32,
    window: Option<usize>,
    out: &mut [f32],
) {
    let (row, width, dim) = (heads.qkv_width(), heads.out_width(), heads.dim);
    let tokens: usize = lengths.iter().sum();
    assert!(
        qkv.len() == tokens * row && out.len() == tokens * width,
        "rows do not match the lengths"
    );
    assert!(
        heads.key_value > 0 && heads.query % heads.key_value == 0,
        "query heads are not groups"
    );
    let group = heads.query / heads.key_value;
    let starts: Vec<usize> = lengths
        .iter()
        .scan(0, |next, &len| {
            let start = *next;
            *next += len;
            Some(start)
        })
        .collect();
    let out = SharedRows(out.as_mut_ptr());
    let texts_and_heads: Vec<(usize, usize)> = (0..lengths.len())
        .filter(|&t| lengths[t] > 0)
        .flat_map(|t| (0..heads.key_value).map(move |h| (t, h)))
        .collect();
    texts_and_heads.into_par_iter().for_each(|(text, kv)| {
        let (start, len) = (starts[text], lengths[text]);
        let rows = &qkv[start * row..(start + len) * row];
        let (key_col, value_col) = ((heads.query + kv) * dim, (heads.query + heads.key_value + kv) * dim);
        // Keys as the weights of a product with one output per key; values transposed, one
        // output per value dimension.
        let keys = PackedWeights::pack_rows(format, &rows[key_col..], row, len, dim);
        let values = PackedWeights::pack_columns(format, &rows[value_col..], row, len, dim);
        let (Some(keys), Some(values)) = (keys, values) else {
            panic!("the {format:?} kernel is not supported on this CPU");
        };
        let blocks: Vec<(usize, usize)> = (kv * group..(kv + 1) * group)
            .flat_map(|head| (0..len).step_by(QUERY_BLOCK).map(move |first| (head, first)))
            .collect();
        blocks.into_par_iter().for_each(|(head, first)| {
            let count = QUERY_BLOCK.min(len - first);
            let mut scores = vec![0f32; count * len];
            // SAFETY: `scores` holds `count` rows of `len`, one per key.
            unsafe { keys.multiply_rows(&rows[first * row + head * dim..], row, count, scores.as_mut_ptr(), len) };
            for (i, scores) in scores.chunks_exact_mut(len).enumerate() {
                let (lo, hi) = visible(first + i, len, window);
                softmax_in_place(&mut scores[lo..hi], scale);
                scores[..lo].fill(0.0);
                scores[hi..].fill(0.0);
            }
            // SAFETY: rows `first..first + count` of this text, columns of `head`: no other task
            // writes them (each (text, head, block) is one task), and they lie inside `out`.
            unsafe {
                let at = out.at((start + first) * width + head * dim);
                values.multiply_rows(&scores, len, count, at, width);
            }
        });
    });
}

/// The keys query `q` of a text of `len` tokens sees: `lo..hi` (as the reference's mask:
/// every key, or those at distance < window).
fn visible(q: usize, len: usize, window: Option<usize>) -> (usize, usize) {
    match window {
        None => (0, len),
        Some(window) => ((q + 1).saturating_sub(window), len.min(q + window)),
    }
}

/// The output's rows, written from several tasks at once, each to cells no other task writes.
#[derive(Clone, Copy)]
struct SharedRows(*mut f32);

impl SharedRows {
    /// The cell `offset` values in.
    ///
    /// # Safety
    /// `offset` must lie inside the output.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        self.0.add(offset)
    }
}

// SAFETY: tasks write disjoint cells (see `attention`), and the caller's borrow of `out` outlives
// them all (`for_each` returns when every task has finished).
unsafe impl Send for SharedRows {}
unsafe impl Sync for SharedRows {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scalar reference, in f64: per text and head, scores, masked softmax, weighted values.
    fn reference(qkv: &[f32], heads: Heads, lengths: &[usize], scale: f64, window: Option<usize>) -> Vec<f64> {
        let (row, width, dim) = (heads.qkv_width(), heads.out_width(), heads.dim);
        let group = heads.query / heads.key_value;
        let mut out = vec![0f64; lengths.iter().sum::<usize>() * width];
        let mut start = 0;
        for &len in lengths {
            for head in 0..heads.query {
                let kv = head / group;
                let (k_col, v_col) = ((heads.query + kv) * dim, (heads.query + heads.key_value + kv) * dim);
                for q in 0..len {
                    let (lo, hi) = visible(q, len, window);
                    let at = |r: usize, c: usize| qkv[(start + r) * row + c] as f64;
                    let scores: Vec<f64> = (lo..hi)
                        .map(|k| (0..dim).map(|i| at(q, head * dim + i) * at(k, k_col + i)).sum::<f64>() * scale)
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                    for i in 0..dim {
                        out[(start + q) * width + head * dim + i] = (lo..hi)
                            .zip(&scores)
                            .map(|(k, s)| (s - max).exp() / total * at(k, v_col + i))
                            .sum();
                    }
                }
            }
            start += len;
        }
        out
    }

    #[test]
    fn matches_the_scalar_reference() {
        let heads = Heads {
            query: 4,
            key_value: 2,
            dim: 24,
        };
        // Texts around the query block, one token, and a window narrower than the longest.
        let lengths = [1, 70, 5, 130];
        let tokens: usize = lengths.iter().sum();
        let qkv: Vec<f32> = (0..tokens * heads.qkv_width())
            .map(|i| ((i * 7919 % 10_007) as f32 / 10_007.0 - 0.5) * 3.0)
            .collect();
        for format in [MatmulFormat::F32, MatmulFormat::Bf16] {
            if !format.supported() {
                eprintln!("{format:?} skipped: this CPU lacks its AVX-512 instructions");
                continue;
            }
            // bf16 rounds queries, keys, weights and values to 8 bits.
            let tolerance = if format == MatmulFormat::F32 { 1e-5 } else { 3e-2 };
            for window in [None, Some(20)] {
                let mut out = vec![f32::NAN; tokens * heads.out_width()];
                attention(format, &qkv, heads, &lengths, 0.3, window, &mut out);
                let expected = reference(&qkv, heads, &lengths, 0.3, window);
                for (i, (got, want)) in out.iter().zip(&expected).enumerate() {
                    assert!(
                        (*got as f64 - want).abs() < tolerance,
                        "{format:?}, window {window:?}, value {i}: {got} against {want}"
                    );
                }
            }
        }
    }
}
