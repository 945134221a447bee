//! `x · Wᵀ` with bf16 inputs and f32 sums, on CPUs with AVX-512 BF16.
//!
//! `vdpbf16ps` multiplies two pairs of bf16 values per f32 lane and adds both products to the
//! lane: 32 multiply-adds per instruction where an f32 FMA does 16, from half the bytes.
//! candle's CPU matrix multiply has no bf16 kernel (its bf16 path is slower than f32), so the
//! encoder's linear layers and attention's products call this one. Linear weights are rounded to
//! bf16 and packed once, at load; activations are rounded per call (to nearest even, as PyTorch
//! rounds); every sum is f32.
//!
//! The blocking is the classic GotoBLAS one. Weights are packed in panels of [`NR`] output
//! columns, each k-pair's 64 columns contiguous, so the micro-kernel streams one panel while
//! broadcasting the activations of [`MR`] rows; [`KC`] k-pairs of a panel (24 KiB) stay in L1
//! while every row block of a task passes over them. Tasks are row blocks, run in parallel.

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
/// k-pairs per cache block: one panel's block (96 × 64 × 4 bytes) fits in L1 with room to spare.
const KC: usize = 96;
/// Most rows per parallel task: the task's activations (96 × 576 pairs × 4 bytes) stay in L2.
const MAX_TASK_ROWS: usize = 96;

/// Whether this CPU can run the kernel (x86-64 with AVX512F and AVX512_BF16), unless
/// `THEMAP_NO_AVX512` is set. Read once: attention packs every head's keys and values through it.
pub fn bf16_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::env::var_os("THEMAP_NO_AVX512").is_none()
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

/// A weight matrix of `n` rows (output features) by `k` columns (input features), rounded to
/// bf16 and packed for the kernel. Only made where [`bf16_supported`].
#[derive(Debug, Clone)]
pub struct Bf16Weights {
    n: usize,
    k: usize,
    /// ⌈k / 2⌉: the kernel consumes k in pairs; an odd k is padded with a zero.
    pairs: usize,
    /// Panel after panel of `pairs × NR` u32, each two bf16 (low half: the even k).
    packed: Vec<u32>,
}

impl Bf16Weights {
    /// Packs the row-major `n × k` matrix `w`; `None` where the CPU lacks the instructions.
    pub fn pack(w: &[f32], n: usize, k: usize) -> Option<Self> {
        (w.len() == n * k).then(|| Self::pack_with(n, k, |col, i| w[col * k + i]))?
    }

    /// Packs the transpose of the row-major `k × n` matrix `wt`, without copying it first.
    pub fn pack_transposed(wt: &[f32], k: usize, n: usize) -> Option<Self> {
        (wt.len() == k * n).then(|| Self::pack_with(n, k, |col, i| wt[i * n + col]))?
    }

    /// Packs the `n × k` matrix whose element (output `col`, input `i`) is `at(col, i)`.
    fn pack_with(n: usize, k: usize, at: impl Fn(usize, usize) -> f32 + Sync) -> Option<Self> {
        if !bf16_supported() || n == 0 || k == 0 {
            return None;
        }
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(NR);
        let mut packed = vec![0u32; panels * pairs * NR];
        packed.par_chunks_mut(pairs * NR).enumerate().for_each(|(panel, out)| {
            for pair in 0..pairs {
                for col in 0..NR.min(n - panel * NR) {
                    let col_in_w = panel * NR + col;
                    let high = if 2 * pair + 1 < k {
                        at(col_in_w, 2 * pair + 1)
                    } else {
                        0.0
                    };
                    out[pair * NR + col] = pack_pair(at(col_in_w, 2 * pair), high);
                }
            }
        });
        Some(Self { n, k, pairs, packed })
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        self.k
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
            .for_each(|(out, a)| {
                let len = a.len() / self.k * self.pairs;
                let mut pairs = Vec::with_capacity(len);
                // SAFETY: `pack` made `self` only where the CPU has AVX512F and AVX512_BF16;
                // `round_rows` writes all `len` pairs before `multiply` reads them.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    avx512::round_rows(a, self.k, self.pairs, &mut pairs.spare_capacity_mut()[..len]);
                    pairs.set_len(len);
                    avx512::multiply(self, &pairs, out);
                }
            });
    }
}

/// Two values as a pair of bf16 (`low` in the low half), each rounded to nearest even.
fn pack_pair(low: f32, high: f32) -> u32 {
    bf16::from_f32(low).to_bits() as u32 | (bf16::from_f32(high).to_bits() as u32) << 16
}

/// Tensor form for candle: `(…, k)` f32 in, `(…, n)` f32 out.
impl CustomOp1 for Bf16Weights {
    fn name(&self) -> &'static str {
        "bf16-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let a = contiguous_f32(storage, layout, self.name())?;
        let mut dims = layout.dims().to_vec();
        if dims.last() != Some(&self.k) {
            bail!("bf16-linear: activations {:?} do not end in {} features", dims, self.k);
        }
        let out = self.product(a);
        *dims.last_mut().expect("checked above") = self.n;
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

/// `a · bᵀ` for every leading index: `a` (…, m, k) and `b` (…, n, k) f32 in, (…, m, n) f32 out,
/// the products in bf16. Attention's scores take this form, with `b` the keys.
pub fn batched_matmul_nt(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.contiguous()?
        .apply_op2_no_bwd(&b.contiguous()?, &Batched { b_transposed: true })
}

/// `a · b` for every leading index: `a` (…, m, k) and `b` (…, k, n) f32 in, (…, m, n) f32 out,
/// the products in bf16. Attention's weighted sum takes this form, with `b` the values.
pub fn batched_matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.contiguous()?
        .apply_op2_no_bwd(&b.contiguous()?, &Batched { b_transposed: false })
}

struct Batched {
    /// `b` holds one row per output column (…, n, k), rather than (…, k, n).
    b_transposed: bool,
}

impl CustomOp2 for Batched {
    fn name(&self) -> &'static str {
        "bf16-batched-matmul"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (a, b) = (
            contiguous_f32(s1, l1, self.name())?,
            contiguous_f32(s2, l2, self.name())?,
        );
        let (a_dims, b_dims) = (l1.dims(), l2.dims());
        let rank = a_dims.len();
        if rank < 2 || b_dims.len() != rank || a_dims[..rank - 2] != b_dims[..rank - 2] {
            bail!("bf16-batched-matmul: shapes {a_dims:?} and {b_dims:?} do not pair");
        }
        let (m, k) = (a_dims[rank - 2], a_dims[rank - 1]);
        let (n, b_k) = match self.b_transposed {
            true => (b_dims[rank - 2], b_dims[rank - 1]),
            false => (b_dims[rank - 1], b_dims[rank - 2]),
        };
        if b_k != k {
            bail!("bf16-batched-matmul: shapes {a_dims:?} and {b_dims:?} do not pair");
        }
        if !bf16_supported() {
            bail!("bf16 products need AVX512_BF16, which this CPU lacks");
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
                        true => Bf16Weights::pack(b, n, k),
                        false => Bf16Weights::pack_transposed(b, k, n),
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

    use super::{pack_pair, Bf16Weights, KC, MR, NR};

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

    /// `out` = rows of `a` (already bf16 pairs) times the packed weights, block by block.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn multiply(w: &Bf16Weights, a: &[u32], out: &mut [MaybeUninit<f32>]) {
        let rows = a.len() / w.pairs;
        let panel_len = w.pairs * NR;
        for k0 in (0..w.pairs).step_by(KC) {
            let kc = KC.min(w.pairs - k0);
            for (panel, packed) in w.packed.chunks_exact(panel_len).enumerate() {
                let b = packed.as_ptr().add(k0 * NR);
                let cols = NR.min(w.n - panel * NR);
                for r0 in (0..rows).step_by(MR) {
                    let tile = Tile {
                        a: a.as_ptr().add(r0 * w.pairs + k0),
                        a_stride: w.pairs,
                        b,
                        pairs: kc,
                        c: out.as_mut_ptr().cast::<f32>().add(r0 * w.n + panel * NR),
                        c_stride: w.n,
                        cols,
                        accumulate: k0 > 0,
                    };
                    match rows - r0 {
                        1 => tile.run::<1>(),
                        2 => tile.run::<2>(),
                        3 => tile.run::<3>(),
                        4 => tile.run::<4>(),
                        5 => tile.run::<5>(),
                        _ => tile.run::<MR>(),
                    }
                }
            }
        }
    }

    /// One micro-tile: up to MR rows × NR columns of the output over `pairs` k-pairs.
    struct Tile {
        a: *const u32,
        a_stride: usize,
        b: *const u32,
        pairs: usize,
        c: *mut f32,
        c_stride: usize,
        /// Output columns that exist (the panel may be padded past n).
        cols: usize,
        /// Add to the output (a later k block) rather than overwrite it.
        accumulate: bool,
    }

    impl Tile {
        #[target_feature(enable = "avx512f,avx512bf16")]
        #[inline]
        unsafe fn run<const R: usize>(&self) {
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
            for p in 0..self.pairs {
                let b = self.b.add(p * NR);
                let panel: [__m512bh; 4] =
                    std::array::from_fn(|j| std::mem::transmute(_mm512_loadu_si512(b.add(j * 16).cast())));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let pair = *self.a.add(r * self.a_stride + p);
                    let a: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair as i32));
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm512_dpbf16_ps(*acc, a, panel[j]);
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

    /// Tests of the kernel skip, saying so, where the CPU cannot run it.
    fn cpu_lacks_bf16() -> bool {
        let lacks = !bf16_supported();
        if lacks {
            eprintln!("skipped: this CPU lacks AVX512_BF16");
        }
        lacks
    }

    fn round(x: f32) -> f64 {
        bf16::from_f32(x).to_f64()
    }

    /// The scalar reference: the same bf16 rounding of both inputs, sums in f64. Returns each
    /// output and the sum of its terms' magnitudes, which bounds the f32 rounding error.
    fn reference(a: &[f32], w: &[f32], k: usize, n: usize) -> Vec<(f64, f64)> {
        let m = a.len() / k;
        let mut out = Vec::with_capacity(m * n);
        for i in 0..m {
            for j in 0..n {
                let terms = (0..k).map(|p| round(a[i * k + p]) * round(w[j * k + p]));
                out.push(terms.fold((0.0, 0.0), |(sum, size), t| (sum + t, size + t.abs())));
            }
        }
        out
    }

    #[test]
    fn matches_the_scalar_reference_on_odd_shapes() {
        if cpu_lacks_bf16() {
            return;
        }
        // Rows, inputs and outputs around every block edge: 1 and MR ± 1 rows, odd k, k across
        // KC blocks, n inside one panel, on a panel edge and past it.
        let shapes = [
            (1, 1, 1),
            (1, 2, 64),
            (5, 3, 17),
            (6, 32, 64),
            (7, 33, 65),
            (13, 191, 129),
            (97, 2 * KC + 5, 200),
            (200, 768, 256),
        ];
        for (seed, (m, k, n)) in shapes.into_iter().enumerate() {
            let a = values(m * k, seed as u64 * 2 + 1, 3.0);
            let w = values(n * k, seed as u64 * 2 + 2, 0.1);
            let weights = Bf16Weights::pack(&w, n, k).expect("supported");
            let mut out = vec![f32::NAN; m * n];
            weights.matmul(&a, &mut out);
            let expected = reference(&a, &w, k, n);
            for (idx, (&got, &(want, size))) in out.iter().zip(&expected).enumerate() {
                // Each of k f32 additions may round by half an ulp of the running sum.
                let bound = (k + 2) as f64 * f32::EPSILON as f64 * size;
                assert!(
                    (got as f64 - want).abs() <= bound,
                    "{m}×{k}×{n}: out[{idx}] = {got}, reference {want}"
                );
            }
        }
    }

    #[test]
    fn close_to_f32_products() {
        if cpu_lacks_bf16() {
            return;
        }
        let (m, k, n) = (64, 768, 192);
        let a = values(m * k, 7, 1.0);
        let w = values(n * k, 8, 1.0);
        let mut out = vec![0f32; m * n];
        Bf16Weights::pack(&w, n, k).expect("supported").matmul(&a, &mut out);
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
        if cpu_lacks_bf16() {
            return Ok(());
        }
        let device = candle_core::Device::Cpu;
        let a = candle_core::Tensor::from_vec(values(2 * 3 * 13 * 40, 5, 1.0), (2, 3, 13, 40), &device)?;
        let b = candle_core::Tensor::from_vec(values(2 * 3 * 7 * 40, 6, 1.0), (2, 3, 7, 40), &device)?;
        let ours = batched_matmul_nt(&a, &b)?;
        assert_eq!(ours.dims(), &[2, 3, 13, 7]);
        let exact = a.matmul(&b.t()?)?;
        let diff = (ours - exact)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 0.05, "{diff}");
        let bt = b.t()?.contiguous()?;
        let ours = batched_matmul(&a, &bt)?;
        assert_eq!(ours.dims(), &[2, 3, 13, 7]);
        let diff = (ours - a.matmul(&bt)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 0.05, "{diff}");
        Ok(())
    }

    #[test]
    fn candle_op_keeps_leading_dims() -> Result<()> {
        if cpu_lacks_bf16() {
            return Ok(());
        }
        let device = candle_core::Device::Cpu;
        let w = values(96 * 40, 3, 1.0);
        let weights = Bf16Weights::pack(&w, 96, 40).expect("supported");
        let x = candle_core::Tensor::from_vec(values(2 * 5 * 40, 4, 1.0), (2, 5, 40), &device)?;
        let y = x.apply_op1_no_bwd(&weights)?;
        assert_eq!(y.dims(), &[2, 5, 96]);
        let w = candle_core::Tensor::from_vec(w, (96, 40), &device)?;
        let exact = x.broadcast_matmul(&w.t()?)?;
        let diff = (y - exact)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 0.05, "{diff}");
        Ok(())
    }
}
