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

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use half::bf16;
use rayon::prelude::*;

use super::contiguous_f32;

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
        (w.len() == n * k).then(|| Self::pack_with(format, n, k, |col, i| w[col * k + i]))?
    }

    /// Packs the transpose of the row-major `k × n` matrix `wt`, without copying it first.
    pub fn pack_transposed(format: MatmulFormat, wt: &[f32], k: usize, n: usize) -> Option<Self> {
        (wt.len() == k * n).then(|| Self::pack_with(format, n, k, |col, i| wt[i * n + col]))?
    }

    /// Packs the `n × k` matrix whose element (output `col`, input `i`) is `at(col, i)`.
    fn pack_with(format: MatmulFormat, n: usize, k: usize, at: impl Fn(usize, usize) -> f32 + Sync) -> Option<Self> {
        if !format.supported() || n == 0 || k == 0 {
            return None;
        }
        let steps = k.div_ceil(format.values_per_step());
        let panels = n.div_ceil(NR);
        let mut packed = vec![0u32; panels * steps * NR];
        packed.par_chunks_mut(steps * NR).enumerate().for_each(|(panel, out)| {
            for step in 0..steps {
                for col in 0..NR.min(n - panel * NR) {
                    let col_in_w = panel * NR + col;
                    out[step * NR + col] = match format {
                        MatmulFormat::F32 => at(col_in_w, step).to_bits(),
                        MatmulFormat::Bf16 => {
                            let high = if 2 * step + 1 < k {
                                at(col_in_w, 2 * step + 1)
                            } else {
                                0.0
                            };
                            pack_pair(at(col_in_w, 2 * step), high)
                        }
                    };
                }
            }
        });
        Some(Self {
            format,
            n,
            k,
            steps,
            packed,
        })
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        self.k
    }

    pub fn format(&self) -> MatmulFormat {
        self.format
    }

    /// `out` (m × n) = `a` (m × k) · Wᵀ, all row-major, where `m = a.len() / k`.
    ///
    /// # Panics
    /// If `a.len()` is not a multiple of k or `out` is not m × n.
    pub fn matmul(&self, a: &[f32], out: &mut [f32]) {
        // SAFETY: only initialised f32 values are written through the view.
        let out = unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) };
        self.matmul_into(a, out);
    }

    /// `a · Wᵀ` in a new vector.
    pub fn product(&self, a: &[f32]) -> Vec<f32> {
        let len = a.len() / self.k * self.n;
        let mut out = Vec::with_capacity(len);
        self.matmul_into(a, &mut out.spare_capacity_mut()[..len]);
        // SAFETY: `matmul_into` wrote every element (k > 0, so the first k block stores them all).
        unsafe { out.set_len(len) };
        out
    }

    /// [`Self::matmul`] into memory that need not be initialised: it writes every element, so
    /// the output is not zeroed first (zeroing cost 5% of the encoder's time).
    fn matmul_into(&self, a: &[f32], out: &mut [MaybeUninit<f32>]) {
        assert_eq!(a.len() % self.k, 0, "activations are not rows of {} values", self.k);
        let m = a.len() / self.k;
        assert_eq!(out.len(), m * self.n, "output is not {m} × {}", self.n);
        if m == 0 {
            return;
        }
        let task_rows = (m.div_ceil(rayon::current_num_threads() * 4))
            .next_multiple_of(MR)
            .min(MAX_TASK_ROWS);
        out.par_chunks_mut(task_rows * self.n)
            .zip(a.par_chunks(task_rows * self.k))
            .for_each(|(out, a)| self.multiply_rows(a, out));
    }

    /// One task's rows: `out` = `a` · Wᵀ on the calling thread.
    fn multiply_rows(&self, a: &[f32], out: &mut [MaybeUninit<f32>]) {
        // SAFETY: `pack` made `self` only where the CPU has the format's instructions; in bf16,
        // `round_rows` writes all `len` pairs before `multiply_bf16` reads them.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            match self.format {
                MatmulFormat::F32 => avx512::multiply_f32(self, &micro_panels(a, self.steps, 0.0), out),
                MatmulFormat::Bf16 => {
                    let len = a.len() / self.k * self.steps;
                    let mut pairs = Vec::with_capacity(len);
                    avx512::round_rows(a, self.k, self.steps, &mut pairs.spare_capacity_mut()[..len]);
                    pairs.set_len(len);
                    avx512::multiply_bf16(self, &micro_panels(&pairs, self.steps, 0), out);
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("packed weights exist only on x86-64: {a:p} {out:p}");
    }
}

/// Rows of `steps` values regrouped into micro-panels of [`MR`] rows, step by step (the
/// values of one step of MR rows contiguous), the last panel padded with `zero`: the tile then
/// reads its activations as one stream rather than MR rows far apart.
fn micro_panels<V: Copy>(rows: &[V], steps: usize, zero: V) -> Vec<V> {
    let groups = (rows.len() / steps).div_ceil(MR);
    let mut out = vec![zero; groups * steps * MR];
    for (rows, panel) in rows.chunks(MR * steps).zip(out.chunks_exact_mut(MR * steps)) {
        if rows.len() == MR * steps {
            // Whole panels, the common case: written in order, MR values at a time.
            for (step, values) in panel.chunks_exact_mut(MR).enumerate() {
                for (r, value) in values.iter_mut().enumerate() {
                    *value = rows[r * steps + step];
                }
            }
        } else {
            for (r, row) in rows.chunks_exact(steps).enumerate() {
                for (step, &value) in row.iter().enumerate() {
                    panel[step * MR + r] = value;
                }
            }
        }
    }
    out
}

/// Two values as a pair of bf16 (`low` in the low half), each rounded to nearest even.
fn pack_pair(low: f32, high: f32) -> u32 {
    bf16::from_f32(low).to_bits() as u32 | (bf16::from_f32(high).to_bits() as u32) << 16
}

/// Tensor form for candle: `(…, k)` f32 in, `(…, n)` f32 out.
impl CustomOp1 for PackedWeights {
    fn name(&self) -> &'static str {
        "packed-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let a = contiguous_f32(storage, layout, self.name())?;
        let mut dims = layout.dims().to_vec();
        if dims.last() != Some(&self.k) {
            bail!(
                "packed-linear: activations {:?} do not end in {} features",
                dims,
                self.k
            );
        }
        let out = self.product(a);
        *dims.last_mut().expect("checked above") = self.n;
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

/// `a · bᵀ` for every leading index: `a` (…, m, k) and `b` (…, n, k) f32 in, (…, m, n) f32 out,
/// the products in `format`. Attention's scores take this form, with `b` the keys.
pub fn batched_matmul_nt(format: MatmulFormat, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.contiguous()?.apply_op2_no_bwd(
        &b.contiguous()?,
        &Batched {
            format,
            b_transposed: true,
        },
    )
}

/// `a · b` for every leading index: `a` (…, m, k) and `b` (…, k, n) f32 in, (…, m, n) f32 out,
/// the products in `format`. Attention's weighted sum takes this form, with `b` the values.
pub fn batched_matmul(format: MatmulFormat, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.contiguous()?.apply_op2_no_bwd(
        &b.contiguous()?,
        &Batched {
            format,
            b_transposed: false,
        },
    )
}

struct Batched {
    format: MatmulFormat,
    /// `b` holds one row per output column (…, n, k), rather than (…, k, n).
    b_transposed: bool,
}

impl CustomOp2 for Batched {
    fn name(&self) -> &'static str {
        "packed-batched-matmul"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (a, b) = (
            contiguous_f32(s1, l1, self.name())?,
            contiguous_f32(s2, l2, self.name())?,
        );
        let (a_dims, b_dims) = (l1.dims(), l2.dims());
        let rank = a_dims.len();
        if rank < 2 || b_dims.len() != rank || a_dims[..rank - 2] != b_dims[..rank - 2] {
            bail!("packed-batched-matmul: shapes {a_dims:?} and {b_dims:?} do not pair");
        }
        let (m, k) = (a_dims[rank - 2], a_dims[rank - 1]);
        let (n, b_k) = match self.b_transposed {
            true => (b_dims[rank - 2], b_dims[rank - 1]),
            false => (b_dims[rank - 1], b_dims[rank - 2]),
        };
        if b_k != k {
            bail!("packed-batched-matmul: shapes {a_dims:?} and {b_dims:?} do not pair");
        }
        if !self.format.supported() {
            bail!("{:?} products need AVX-512 instructions this CPU lacks", self.format);
        }
        let len = l1.shape().elem_count() / k.max(1) * n;
        let mut out = Vec::with_capacity(len);
        if k > 0 && n > 0 && m > 0 {
            // One product per task: each is small (one head's keys or values), so packing it and
            // multiplying on one core beats splitting it across cores.
            out.spare_capacity_mut()[..len]
                .par_chunks_exact_mut(m * n)
                .zip(a.par_chunks_exact(m * k).zip(b.par_chunks_exact(n * k)))
                .for_each(|(out, (a, b))| {
                    let packed = match self.b_transposed {
                        true => PackedWeights::pack(self.format, b, n, k),
                        false => PackedWeights::pack_transposed(self.format, b, k, n),
                    };
                    match packed {
                        Some(b) => b.matmul_into(a, out),
                        // Unreachable (the CPU and the sizes were checked), but never uninitialised.
                        None => out.fill(MaybeUninit::new(f32::NAN)),
                    }
                });
        } else {
            out.resize(len, 0.0);
        }
        // SAFETY: every chunk was written above (or the vector filled with zeros).
        unsafe { out.set_len(len) };
        let mut dims = a_dims.to_vec();
        dims[rank - 1] = n;
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::{pack_pair, PackedWeights, KC, MR, NC, NR};

    /// Rounds rows of `k` f32 to bf16 pairs, `pairs` per row (zero-padded when k is odd).
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn round_rows(a: &[f32], k: usize, pairs: usize, out: &mut [MaybeUninit<u32>]) {
        for (row, out) in a.chunks_exact(k).zip(out.chunks_exact_mut(pairs)) {
            let whole = k / 32;
            for i in 0..whole {
                let lo = _mm512_loadu_ps(row.as_ptr().add(i * 32));
                let hi = _mm512_loadu_ps(row.as_ptr().add(i * 32 + 16));
                // Element j of the 32 bf16 comes from value j: lane i holds values 2i and 2i+1.
                let bf: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_storeu_si512(out.as_mut_ptr().add(i * 16).cast(), bf);
            }
            for (pair, values) in row[whole * 32..].chunks(2).enumerate() {
                out[whole * 16 + pair].write(pack_pair(values[0], values.get(1).copied().unwrap_or(0.0)));
            }
        }
    }

    /// `out` = f32 rows of `a` times the packed f32 weights.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn multiply_f32(w: &PackedWeights, a: &[f32], out: &mut [MaybeUninit<f32>]) {
        multiply::<F32>(w, a, out)
    }

    /// `out` = rows of `a`, already bf16 pairs, times the packed bf16 weights.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn multiply_bf16(w: &PackedWeights, a: &[u32], out: &mut [MaybeUninit<f32>]) {
        multiply::<Bf16>(w, a, out)
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

    /// `out` = rows of `a` (`w.steps` values each) times the packed weights, block by block.
    #[inline(always)]
    unsafe fn multiply<S: Step>(w: &PackedWeights, a: &[S::Value], out: &mut [MaybeUninit<f32>]) {
        let rows = out.len() / w.n;
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
                            c: out.as_mut_ptr().cast::<f32>().add(r0 * w.n + panel * NR),
                            c_stride: w.n,
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
    fn batched_products_match_candle() -> Result<()> {
        let device = candle_core::Device::Cpu;
        let a = candle_core::Tensor::from_vec(values(2 * 3 * 13 * 40, 5, 1.0), (2, 3, 13, 40), &device)?;
        let b = candle_core::Tensor::from_vec(values(2 * 3 * 7 * 40, 6, 1.0), (2, 3, 7, 40), &device)?;
        let bt = b.t()?.contiguous()?;
        for (format, tolerance) in [(MatmulFormat::F32, 1e-5), (MatmulFormat::Bf16, 0.05)] {
            if cpu_lacks(format) {
                continue;
            }
            let ours = batched_matmul_nt(format, &a, &b)?;
            assert_eq!(ours.dims(), &[2, 3, 13, 7]);
            let exact = a.matmul(&b.t()?)?;
            let diff = (ours - exact)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < tolerance, "{format:?}: {diff}");
            let ours = batched_matmul(format, &a, &bt)?;
            assert_eq!(ours.dims(), &[2, 3, 13, 7]);
            let diff = (ours - a.matmul(&bt)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < tolerance, "{format:?}: {diff}");
        }
        Ok(())
    }

    #[test]
    fn candle_op_keeps_leading_dims() -> Result<()> {
        let device = candle_core::Device::Cpu;
        let w = values(96 * 40, 3, 1.0);
        let x = candle_core::Tensor::from_vec(values(2 * 5 * 40, 4, 1.0), (2, 5, 40), &device)?;
        let exact = x.broadcast_matmul(&candle_core::Tensor::from_vec(w.clone(), (96, 40), &device)?.t()?)?;
        for (format, tolerance) in [(MatmulFormat::F32, 1e-5), (MatmulFormat::Bf16, 0.05)] {
            if cpu_lacks(format) {
                continue;
            }
            let weights = PackedWeights::pack(format, &w, 96, 40).expect("supported");
            let y = x.apply_op1_no_bwd(&weights)?;
            assert_eq!(y.dims(), &[2, 5, 96]);
            let diff = (y - &exact)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < tolerance, "{format:?}: {diff}");
        }
        Ok(())
    }
}
