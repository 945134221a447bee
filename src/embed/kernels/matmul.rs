//! `x · Wᵀ` on AVX-512, in f32 or with bf16 inputs and f32 sums.
//!
//! candle's CPU matrix multiply (gemm) packs both operands on every call and has no bf16 kernel
//! (its bf16 path is slower than f32), so the encoder's linear layers and attention's products
//! call this one. Linear weights are packed once, at load; activations are read as they are
//! (f32) or rounded per call (bf16, to nearest even, as PyTorch rounds); every sum is f32.
//!
//! - f32: `vfmadd231ps`, 16 multiply-adds per instruction.
//! - bf16 (AVX-512 BF16): `vdpbf16ps` multiplies two pairs of bf16 values per f32 lane and adds
//!   both products to the lane: 32 multiply-adds per instruction, from half the bytes. Whether
//!   that is faster depends on the core (twice f32 on AMD Zen 4, slower on Intel cores with two
//!   512-bit FMA ports), which is why the format is chosen by measurement (`embed::probe`).
//!
//! The blocking is the classic GotoBLAS one, the same for both formats. A "step" of k is one f32
//! or one pair of bf16. Weights are packed in panels of [`NR`] output columns, each step's 64
//! columns contiguous, so the micro-kernel streams one panel while broadcasting the activations
//! of [`MR`] rows; [`KC`] steps of a panel (24 KiB) stay in L1 while every row block of a task
//! passes over them. Tasks are row blocks, run in parallel.

use std::sync::OnceLock;

use half::bf16;
use rayon::prelude::*;

/// Output columns per packed panel: four 16-lane registers.
const NR: usize = 64;
/// Rows per micro-tile: 6 × 4 accumulators take 24 of the 32 vector registers.
const MR: usize = 6;
/// Steps of k per cache block: one panel's block (96 × 64 × 4 bytes) fits in L1 with room to spare.
const KC: usize = 96;
/// Panels per column block: a task's outputs for one block (96 rows × 512 columns × 4 bytes)
/// stay in L2 while every k block adds to them. Without it the widest layers (4608 outputs)
/// moved their outputs to and from L3 once per k block and ran 15% slower.
const NC: usize = 8;
/// Most rows per parallel task: the task's activations (96 rows of up to 4608 bytes per 1152
/// inputs) stay in L2.
const MAX_TASK_ROWS: usize = 96;

/// The number format of a packed product's inputs; sums are f32 in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatmulFormat {
    F32,
    Bf16,
}

impl MatmulFormat {
    /// Whether this CPU runs the kernel: x86-64 with AVX512F (and AVX512_BF16 for bf16), unless
    /// `THEMAP_NO_AVX512` is set. Read once per format: attention packs every head through it.
    pub fn supported(self) -> bool {
        static F32: OnceLock<bool> = OnceLock::new();
        static BF16: OnceLock<bool> = OnceLock::new();
        let (cell, needs_bf16) = match self {
            Self::F32 => (&F32, false),
            Self::Bf16 => (&BF16, true),
        };
        *cell.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                std::env::var_os("THEMAP_NO_AVX512").is_none()
                    && is_x86_feature_detected!("avx512f")
                    && (!needs_bf16 || is_x86_feature_detected!("avx512bf16"))
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = needs_bf16;
                false
            }
        })
    }

    /// Input values per step of k.
    fn values_per_step(self) -> usize {
        match self {
            Self::F32 => 1,
            Self::Bf16 => 2,
        }
    }
}

/// Whether this CPU can run the bf16 kernel (AVX512F and AVX512_BF16).
pub fn bf16_supported() -> bool {
    MatmulFormat::Bf16.supported()
}

/// A weight matrix of `n` rows (output features) by `k` columns (input features), packed for
/// the kernel in its format. Only made where the format is [`supported`](MatmulFormat::supported).
#[derive(Debug, Clone)]
pub struct PackedWeights {
    format: MatmulFormat,
    n: usize,
    k: usize,
    /// Steps of k: k in f32, ⌈k / 2⌉ in bf16 (an odd k is padded with a zero).
    steps: usize,
    /// Panel after panel of `steps × NR` u32, each an f32's bits or two bf16 (low half: the even k).
    packed: Vec<u32>,
}

impl PackedWeights {
    /// Packs the row-major `n × k` matrix `w`; `None` where the CPU lacks the instructions.
    pub fn pack(format: MatmulFormat, w: &[f32], n: usize, k: usize) -> Option<Self> {
        (w.len() == n * k).then(|| Self::pack_rows(format, w, k, n, k))?
    }

    /// Packs the `n × k` matrix whose output `c` has its `k` inputs at `rows[c * stride..]`
    /// (attention's keys: one output per key, inside rows of every head).
    ///
    /// # Panics
    /// If `rows` is too short for `n` rows of `k` at `stride`.
    pub fn pack_rows(format: MatmulFormat, rows: &[f32], stride: usize, n: usize, k: usize) -> Option<Self> {
        assert!(
            n == 0 || stride >= k && rows.len() >= (n - 1) * stride + k,
            "rows too short"
        );
        Self::pack_panels(format, n, k, |panel, steps, out| {
            let mut pairs = vec![0u32; steps];
            for col in 0..NR.min(n - panel * NR) {
                let row = &rows[(panel * NR + col) * stride..][..k];
                let values: &[u32] = match format {
                    MatmulFormat::F32 => bytemuck_f32(row),
                    MatmulFormat::Bf16 => {
                        #[cfg(target_arch = "x86_64")]
                        avx512::round_row(row, &mut pairs);
                        &pairs
                    }
                };
                for (step, &value) in values.iter().enumerate() {
                    out[step * NR + col] = value;
                }
            }
        })
    }

    /// Packs the `n × k` matrix whose input `i` has its `n` outputs at `rows[i * stride..]`:
    /// the transpose of row-major rows (attention's values: one output per value dimension).
    ///
    /// # Panics
    /// If `rows` is too short for `k` rows of `n` at `stride`.
    pub fn pack_columns(format: MatmulFormat, rows: &[f32], stride: usize, k: usize, n: usize) -> Option<Self> {
        assert!(
            k == 0 || stride >= n && rows.len() >= (k - 1) * stride + n,
            "rows too short"
        );
        Self::pack_panels(format, n, k, |panel, _, out| {
            let cols = NR.min(n - panel * NR);
            let at = |i: usize| &rows[i * stride + panel * NR..][..cols];
            for (step, out) in out.chunks_exact_mut(NR).enumerate() {
                match format {
                    MatmulFormat::F32 => out[..cols].copy_from_slice(bytemuck_f32(at(step))),
                    MatmulFormat::Bf16 => {
                        let high = (2 * step + 1 < k).then(|| at(2 * step + 1));
                        interleave_bf16(at(2 * step), high, &mut out[..cols]);
                    }
                }
            }
        })
    }

    /// Packs an `n × k` matrix panel by panel, in parallel: `fill(panel, steps, out)` writes
    /// one panel's `steps × NR` values into zeros. `None` where the CPU lacks the instructions.
    fn pack_panels(
        format: MatmulFormat,
        n: usize,
        k: usize,
        fill: impl Fn(usize, usize, &mut [u32]) + Sync,
    ) -> Option<Self> {
        if !format.supported() || n == 0 || k == 0 {
            return None;
        }
        let steps = k.div_ceil(format.values_per_step());
        let mut packed = vec![0u32; n.div_ceil(NR) * steps * NR];
        packed
            .par_chunks_mut(steps * NR)
            .enumerate()
            .for_each(|(panel, out)| fill(panel, steps, out));
        Some(Self {
            format,
            n,
            k,
            steps,
            packed,
        })
    }

    /// `out` (m × n) = `a` (m × k) · Wᵀ, all row-major, where `m = a.len() / k`, row blocks
    /// in parallel. Every element of `out` is written; none is read.
    ///
    /// # Panics
    /// If `a.len()` is not a multiple of k or `out` is not m × n.
    pub fn matmul(&self, a: &[f32], out: &mut [f32]) {
        assert_eq!(a.len() % self.k, 0, "activations are not rows of {} values", self.k);
        let m = a.len() / self.k;
        assert_eq!(out.len(), m * self.n, "output is not {m} × {}", self.n);
        let task_rows = (m.div_ceil(rayon::current_num_threads() * 4))
            .next_multiple_of(MR)
            .clamp(MR, MAX_TASK_ROWS);
        out.par_chunks_mut(task_rows * self.n)
            .zip(a.par_chunks(task_rows * self.k))
            .for_each(|(out, a)| {
                let rows = a.len() / self.k;
                // SAFETY: `out` holds `rows` rows of n.
                unsafe { self.multiply_rows(a, self.k, rows, out.as_mut_ptr(), self.n) }
            });
    }

    /// `rows` rows of `a`, row `r` starting at `r * a_stride`, times Wᵀ, into rows of `out` at
    /// `out_stride`, on the calling thread: the form for products inside a larger matrix
    /// (one attention head of a row of all heads).
    ///
    /// # Safety
    /// `out` must be valid for writes of `rows` rows of n values at `out_stride`, and no other
    /// thread may touch those values meanwhile.
    ///
    /// # Panics
    /// If `a` is too short for `rows` rows of k at `a_stride`.
    pub unsafe fn multiply_rows(&self, a: &[f32], a_stride: usize, rows: usize, out: *mut f32, out_stride: usize) {
        if rows == 0 {
            return;
        }
        assert!(
            a_stride >= self.k && a.len() >= (rows - 1) * a_stride + self.k,
            "activations too short"
        );
        let row = |r: usize| &a[r * a_stride..r * a_stride + self.k];
        // SAFETY: `pack` made `self` only where the CPU has the format's instructions.
        #[cfg(target_arch = "x86_64")]
        match self.format {
            MatmulFormat::F32 => {
                let panels = micro_panels(rows, self.steps, 0.0, |r, values| values.copy_from_slice(row(r)));
                avx512::multiply_f32(self, &panels, rows, out, out_stride)
            }
            MatmulFormat::Bf16 => {
                let panels = micro_panels(rows, self.steps, 0, |r, pairs| avx512::round_row(row(r), pairs));
                avx512::multiply_bf16(self, &panels, rows, out, out_stride)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("packed weights exist only on x86-64: {:p} {out:p} {out_stride}", row(0));
    }
}

/// `rows` rows of `steps` values each (as `row(r, values)` writes them) regrouped into
/// micro-panels of [`MR`] rows, step by step (the values of one step of MR rows contiguous), the
/// last panel padded with `zero`: a tile then reads its activations as one stream rather than
/// MR rows far apart.
fn micro_panels<V: Copy>(rows: usize, steps: usize, zero: V, row: impl Fn(usize, &mut [V])) -> Vec<V> {
    let groups = rows.div_ceil(MR);
    let mut out = vec![zero; groups * steps * MR];
    let mut group_rows = vec![zero; MR * steps];
    for (group, panel) in out.chunks_exact_mut(MR * steps).enumerate() {
        let count = MR.min(rows - group * MR);
        for (r, values) in group_rows.chunks_exact_mut(steps).take(count).enumerate() {
            row(group * MR + r, values);
        }
        for (step, values) in panel.chunks_exact_mut(MR).enumerate() {
            for (r, value) in values.iter_mut().take(count).enumerate() {
                *value = group_rows[r * steps + step];
            }
        }
    }
    out
}

/// Two values as a pair of bf16 (`low` in the low half), each rounded to nearest even.
fn pack_pair(low: f32, high: f32) -> u32 {
    bf16::from_f32(low).to_bits() as u32 | (bf16::from_f32(high).to_bits() as u32) << 16
}

/// f32 values as their bits.
fn bytemuck_f32(values: &[f32]) -> &[u32] {
    // SAFETY: f32 and u32 have the same size and alignment, and every bit pattern is a u32.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), values.len()) }
}

/// `out[c]` = the pair (`low[c]`, `high[c]`, or 0 without `high`), each rounded to bf16.
fn interleave_bf16(low: &[f32], high: Option<&[f32]>, out: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { interleave_bf16_avx512(low, high, out) };
    }
    interleave_bf16_plain(low, high, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn interleave_bf16_avx512(low: &[f32], high: Option<&[f32]>, out: &mut [u32]) {
    interleave_bf16_plain(low, high, out)
}

#[inline(always)]
fn interleave_bf16_plain(low: &[f32], high: Option<&[f32]>, out: &mut [u32]) {
    match high {
        Some(high) => {
            for ((out, &low), &high) in out.iter_mut().zip(low).zip(high) {
                *out = bf16_bits(low) | bf16_bits(high) << 16;
            }
        }
        None => out.iter_mut().zip(low).for_each(|(out, &low)| *out = bf16_bits(low)),
    }
}

/// A finite f32 rounded to bf16 (to nearest even, as `half` and PyTorch round), branch-free so
/// that it vectorises.
#[inline(always)]
fn bf16_bits(x: f32) -> u32 {
    let bits = x.to_bits();
    (bits + 0x7fff + ((bits >> 16) & 1)) >> 16
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{pack_pair, PackedWeights, KC, MR, NC, NR};

    /// Rounds a row of f32 to bf16 pairs (the last zero-padded when the row is odd): `pairs`
    /// holds ⌈len / 2⌉.
    pub(super) fn round_row(row: &[f32], pairs: &mut [u32]) {
        // SAFETY: only called for bf16 weights, which exist only where the CPU has AVX512_BF16.
        unsafe { round_row_avx512(row, pairs) }
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn round_row_avx512(row: &[f32], pairs: &mut [u32]) {
        let whole = row.len() / 32;
        for i in 0..whole {
            let lo = _mm512_loadu_ps(row.as_ptr().add(i * 32));
            let hi = _mm512_loadu_ps(row.as_ptr().add(i * 32 + 16));
            // Element j of the 32 bf16 comes from value j: lane i holds values 2i and 2i+1.
            let bf: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(pairs.as_mut_ptr().add(i * 16).cast(), bf);
        }
        for (pair, values) in row[whole * 32..].chunks(2).enumerate() {
            pairs[whole * 16 + pair] = pack_pair(values[0], values.get(1).copied().unwrap_or(0.0));
        }
    }

    /// `out` = f32 activations (in micro-panels) times the packed f32 weights.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn multiply_f32(w: &PackedWeights, a: &[f32], rows: usize, out: *mut f32, out_stride: usize) {
        multiply::<F32>(w, a, rows, out, out_stride)
    }

    /// `out` = activations rounded to bf16 pairs (in micro-panels) times the packed bf16 weights.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn multiply_bf16(w: &PackedWeights, a: &[u32], rows: usize, out: *mut f32, out_stride: usize) {
        multiply::<Bf16>(w, a, rows, out, out_stride)
    }

    /// One step of k in a format: an activation value broadcast to all lanes, multiplied into
    /// 16 f32 sums with a register of packed weights. Inlined into the `target_feature`
    /// functions above, so the intrinsics compile with their instructions.
    trait Step {
        /// One step of a row of activations: an f32, or two bf16 in a u32.
        type Value: Copy;
        unsafe fn splat(value: Self::Value) -> __m512;
        unsafe fn multiply_add(sums: __m512, a: __m512, b: __m512) -> __m512;
    }

    struct F32;

    impl Step for F32 {
        type Value = f32;

        #[inline(always)]
        unsafe fn splat(value: f32) -> __m512 {
            _mm512_set1_ps(value)
        }

        #[inline(always)]
        unsafe fn multiply_add(sums: __m512, a: __m512, b: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, sums)
        }
    }

    struct Bf16;

    impl Step for Bf16 {
        type Value = u32;

        #[inline(always)]
        unsafe fn splat(pair: u32) -> __m512 {
            _mm512_castsi512_ps(_mm512_set1_epi32(pair as i32))
        }

        #[inline(always)]
        unsafe fn multiply_add(sums: __m512, a: __m512, b: __m512) -> __m512 {
            _mm512_dpbf16_ps(
                sums,
                std::mem::transmute::<__m512, __m512bh>(a),
                std::mem::transmute::<__m512, __m512bh>(b),
            )
        }
    }

    /// `out` = `rows` rows of `a` (micro-panels of `w.steps` steps) times the packed weights,
    /// block by block.
    #[inline(always)]
    unsafe fn multiply<S: Step>(w: &PackedWeights, a: &[S::Value], rows: usize, out: *mut f32, out_stride: usize) {
        debug_assert!(a.len() >= rows.div_ceil(MR) * MR * w.steps);
        let panel_len = w.steps * NR;
        let panels = w.packed.len() / panel_len;
        for first in (0..panels).step_by(NC) {
            for k0 in (0..w.steps).step_by(KC) {
                let kc = KC.min(w.steps - k0);
                for panel in first..panels.min(first + NC) {
                    let b = w.packed.as_ptr().add(panel * panel_len + k0 * NR).cast::<f32>();
                    let cols = NR.min(w.n - panel * NR);
                    for r0 in (0..rows).step_by(MR) {
                        let tile = Tile {
                            a: a.as_ptr().add(r0 * w.steps + k0 * MR),
                            b,
                            steps: kc,
                            c: out.add(r0 * out_stride + panel * NR),
                            c_stride: out_stride,
                            cols,
                            accumulate: k0 > 0,
                        };
                        match rows - r0 {
                            1 => tile.run::<S, 1>(),
                            2 => tile.run::<S, 2>(),
                            3 => tile.run::<S, 3>(),
                            4 => tile.run::<S, 4>(),
                            5 => tile.run::<S, 5>(),
                            _ => tile.run::<S, MR>(),
                        }
                    }
                }
            }
        }
    }

    /// One micro-tile: up to MR rows × NR columns of the output over `steps` steps of k.
    struct Tile<V> {
        /// The activations of this tile's rows at its first step, in a micro-panel.
        a: *const V,
        b: *const f32,
        steps: usize,
        c: *mut f32,
        c_stride: usize,
        /// Output columns that exist (the panel may be padded past n).
        cols: usize,
        /// Add to the output (a later k block) rather than overwrite it.
        accumulate: bool,
    }

    impl<V: Copy> Tile<V> {
        #[inline(always)]
        unsafe fn run<S: Step<Value = V>, const R: usize>(&self) {
            let masks: [__mmask16; 4] = std::array::from_fn(|j| {
                let left = self.cols.saturating_sub(j * 16).min(16);
                ((1u32 << left) - 1) as __mmask16
            });
            let mut acc = [[_mm512_setzero_ps(); 4]; R];
            if self.accumulate {
                for (r, acc) in acc.iter_mut().enumerate() {
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm512_maskz_loadu_ps(masks[j], self.c.add(r * self.c_stride + j * 16));
                    }
                }
            }
            for p in 0..self.steps {
                let b = self.b.add(p * NR);
                let panel: [__m512; 4] = std::array::from_fn(|j| _mm512_loadu_ps(b.add(j * 16)));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let a = S::splat(*self.a.add(p * MR + r));
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc = S::multiply_add(*acc, a, panel[j]);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                for (j, acc) in acc.iter().enumerate() {
                    _mm512_mask_storeu_ps(self.c.add(r * self.c_stride + j * 16), masks[j], *acc);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMATS: [MatmulFormat; 2] = [MatmulFormat::F32, MatmulFormat::Bf16];

    /// A deterministic pseudo-random spread over [-scale, scale).
    fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    /// Tests of a format skip, saying so, where the CPU cannot run it.
    fn cpu_lacks(format: MatmulFormat) -> bool {
        let lacks = !format.supported();
        if lacks {
            eprintln!("skipped: this CPU lacks the AVX-512 instructions of the {format:?} kernel");
        }
        lacks
    }

    /// A value as the kernel multiplies it: itself in f32, rounded to bf16 in bf16.
    fn round(format: MatmulFormat, x: f32) -> f64 {
        match format {
            MatmulFormat::F32 => x as f64,
            MatmulFormat::Bf16 => bf16::from_f32(x).to_f64(),
        }
    }

    /// The scalar reference: the same rounding of both inputs, sums in f64. Returns each output
    /// and the sum of its terms' magnitudes, which bounds the f32 rounding error.
    fn reference(format: MatmulFormat, a: &[f32], w: &[f32], k: usize, n: usize) -> Vec<(f64, f64)> {
        let m = a.len() / k;
        let mut out = Vec::with_capacity(m * n);
        for i in 0..m {
            for j in 0..n {
                let terms = (0..k).map(|p| round(format, a[i * k + p]) * round(format, w[j * k + p]));
                out.push(terms.fold((0.0, 0.0), |(sum, size), t| (sum + t, size + t.abs())));
            }
        }
        out
    }

    #[test]
    fn matches_the_scalar_reference_on_odd_shapes() {
        // Rows, inputs and outputs around every block edge: 1 and MR ± 1 rows, odd k, k across
        // KC blocks (in steps of both formats), n inside one panel, on a panel edge and past it.
        let shapes = [
            (1, 1, 1),
            (1, 2, 64),
            (5, 3, 17),
            (6, 32, 64),
            (7, 33, 65),
            (13, 191, 129),
            (97, 2 * KC + 5, 200),
            (50, 4 * KC + 3, 70),
            (200, 768, 256),
        ];
        for format in FORMATS {
            if cpu_lacks(format) {
                continue;
            }
            for (seed, (m, k, n)) in shapes.into_iter().enumerate() {
                let a = values(m * k, seed as u64 * 2 + 1, 3.0);
                let w = values(n * k, seed as u64 * 2 + 2, 0.1);
                let weights = PackedWeights::pack(format, &w, n, k).expect("supported");
                let mut out = vec![f32::NAN; m * n];
                weights.matmul(&a, &mut out);
                let expected = reference(format, &a, &w, k, n);
                for (idx, (&got, &(want, size))) in out.iter().zip(&expected).enumerate() {
                    // Each of k f32 additions may round by half an ulp of the running sum.
                    let bound = (k + 2) as f64 * f32::EPSILON as f64 * size;
                    assert!(
                        (got as f64 - want).abs() <= bound,
                        "{format:?} {m}×{k}×{n}: out[{idx}] = {got}, reference {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn bf16_is_close_to_f32_products() {
        if cpu_lacks(MatmulFormat::Bf16) {
            return;
        }
        let (m, k, n) = (64, 768, 192);
        let a = values(m * k, 7, 1.0);
        let w = values(n * k, 8, 1.0);
        let mut out = vec![0f32; m * n];
        PackedWeights::pack(MatmulFormat::Bf16, &w, n, k)
            .expect("supported")
            .matmul(&a, &mut out);
        let exact: Vec<f32> = (0..m * n)
            .map(|idx| (0..k).map(|p| a[idx / n * k + p] * w[idx % n * k + p]).sum())
            .collect();
        let (dot, norms) = out
            .iter()
            .zip(&exact)
            .fold((0f64, (0f64, 0f64)), |(d, (x, y)), (&o, &e)| {
                (d + (o * e) as f64, (x + (o * o) as f64, y + (e * e) as f64))
            });
        // bf16 keeps 8 significant bits: each product is off by ~2^-8 relative, and the errors
        // of 768 terms average out.
        assert!(
            dot / (norms.0 * norms.1).sqrt() > 0.9999,
            "{}",
            dot / (norms.0 * norms.1).sqrt()
        );
    }

    #[test]
    fn all_three_packings_agree() {
        // The same 70 × 45 matrix given as rows (inside wider rows) and as columns.
        let (n, k, stride) = (70, 45, 50);
        let w = values(n * k, 9, 2.0);
        let rows: Vec<f32> = w
            .chunks(k)
            .flat_map(|row| row.iter().copied().chain([9.0; 5]))
            .collect();
        let columns: Vec<f32> = (0..k)
            .flat_map(|i| (0..n).map(|c| w[c * k + i]).chain([9.0; 3]).collect::<Vec<_>>())
            .collect();
        for format in FORMATS {
            if cpu_lacks(format) {
                continue;
            }
            let packed = PackedWeights::pack(format, &w, n, k).unwrap().packed;
            assert_eq!(
                PackedWeights::pack_rows(format, &rows, stride, n, k).unwrap().packed,
                packed
            );
            assert_eq!(
                PackedWeights::pack_columns(format, &columns, n + 3, k, n)
                    .unwrap()
                    .packed,
                packed
            );
        }
    }

    #[test]
    fn branch_free_bf16_rounding_is_halfs() {
        for x in values(100_000, 11, 1e4)
            .into_iter()
            .chain([0.0, -0.0, 1.0, f32::MAX, f32::MIN_POSITIVE, 1e-40])
        {
            assert_eq!(bf16_bits(x), bf16::from_f32(x).to_bits() as u32, "{x}");
        }
    }

    #[test]
    fn strided_rows_in_and_out() {
        // Rows of 40 inputs inside rows of 100 (at offset 30), written into columns 10.. of rows
        // of 120: the values around them stay as they were.
        let (m, k, n, a_stride, out_stride) = (13, 40, 96, 100, 120);
        let w = values(n * k, 3, 1.0);
        let a = values(m * a_stride, 4, 1.0);
        for format in FORMATS {
            if cpu_lacks(format) {
                continue;
            }
            let weights = PackedWeights::pack(format, &w, n, k).expect("supported");
            let mut out = vec![f32::NAN; m * out_stride];
            // SAFETY: `out` holds m rows of `out_stride` from column 10, n < out_stride - 10.
            unsafe { weights.multiply_rows(&a[30..], a_stride, m, out[10..].as_mut_ptr(), out_stride) };
            let contiguous: Vec<f32> = a.chunks(a_stride).flat_map(|row| row[30..30 + k].to_vec()).collect();
            let expected = reference(format, &contiguous, &w, k, n);
            for r in 0..m {
                for c in 0..out_stride {
                    let got = out[r * out_stride + c];
                    if (10..10 + n).contains(&c) {
                        let (want, size) = expected[r * n + c - 10];
                        assert!((got as f64 - want).abs() <= (k + 2) as f64 * f32::EPSILON as f64 * size);
                    } else {
                        assert!(got.is_nan(), "{format:?}: row {r} column {c} written");
                    }
                }
            }
        }
    }
}
