//! Dot-product kernels and the 8-bit codes the search graph walks on.
//!
//! A 768-dimension f32 vector is 3 KiB; walking an HNSW graph reads one per visited node, and at
//! 100,000 passages that no longer fits in cache. The graph walks on `i8` codes instead (a
//! quarter of the bytes), and the candidates it returns are re-ranked on the full f32 vectors,
//! so the final scores are exact.
//!
//! One scale serves the whole collection: `code = round(x * scale)`, with `scale` chosen so the
//! largest component seen maps to 127. Vectors added later with larger components saturate,
//! which only makes their walking distance a little less precise.

use std::sync::OnceLock;

/// `a · b` for equal-length f32 slices.
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        return unsafe { x86::dot_f32(a, b) };
    }
    dot_f32_portable(a, b)
}

/// `a · b` for equal-length i8 slices, as an exact integer.
///
/// AVX-512 VNNI (`vpdpbusd`) was measured here and not taken: on this Zen 4 host (which runs
/// 512-bit operations as two 256-bit halves) it scored 2,000 codes of 768 bytes in 34.9 µs
/// against AVX2's 31.5 µs, and in the search's form (query prepared once) 33.1 against 33.7 µs
/// (`cargo bench --bench search -- i8_dot`, benches/README.md).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { x86::dot_i8(a, b) };
    }
    dot_i8_portable(a, b)
}

/// A query's codes, made once and scored against many nodes' codes.
#[derive(Debug, Clone, Default)]
pub struct I8Query {
    codes: Vec<i8>,
}

impl I8Query {
    /// `query` as codes at `scale`.
    pub fn new(query: &[f32], scale: f32) -> Self {
        let mut codes = Vec::with_capacity(query.len());
        encode(query, scale, &mut codes);
        Self { codes }
    }

    /// `self · node`, exactly; `node` has the query's length.
    #[inline]
    pub fn dot(&self, node: &[i8]) -> i32 {
        dot_i8(node, &self.codes)
    }
}

/// An i8 dot-product kernel.
pub type I8Kernel = fn(&[i8], &[i8]) -> i32;

/// The i8 dot-product kernels this CPU can run, by name: for benchmarks that compare them in one
/// process (the search always uses the fastest).
pub fn i8_kernels() -> Vec<(&'static str, I8Kernel)> {
    let mut kernels: Vec<(&'static str, I8Kernel)> = vec![("portable", dot_i8_portable)];
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2 is present (checked above).
        kernels.push(("avx2", |a, b| unsafe { x86::dot_i8(a, b) }));
    }
    kernels
}

fn has_avx2_fma() -> bool {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

/// Eight independent sums, so the compiler can vectorise without reassociating floats.
fn dot_f32_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + tail
}

fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc[0]);
            i += 8;
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
        let quad = _mm_add_ps(half, _mm_movehl_ps(half, half));
        let single = _mm_add_ss(quad, _mm_shuffle_ps(quad, quad, 1));
        let mut total = _mm_cvtss_f32(single);
        while i < n {
            total += *pa.add(i) * *pb.add(i);
            i += 1;
        }
        total
    }

    /// Codes lie in -127..=127, so |a|·sign(b, a) pairs sum to at most 2·127² and `maddubs`
    /// never saturates.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_si256(); 2];
        let mut i = 0;
        while i + 64 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_si256(pa.add(i + 32 * j) as *const __m256i);
                let y = _mm256_loadu_si256(pb.add(i + 32 * j) as *const __m256i);
                let pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(y, x));
                *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(pairs, ones));
            }
            i += 64;
        }
        while i + 32 <= n {
            let x = _mm256_loadu_si256(pa.add(i) as *const __m256i);
            let y = _mm256_loadu_si256(pb.add(i) as *const __m256i);
            let pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(y, x));
            acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(pairs, ones));
            i += 32;
        }
        let sum = _mm256_add_epi32(acc[0], acc[1]);
        let half = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        let quad = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0b01_00_11_10));
        let single = _mm_add_epi32(quad, _mm_shuffle_epi32(quad, 0b10_11_00_01));
        let mut total = _mm_cvtsi128_si32(single);
        while i < n {
            total += i32::from(*pa.add(i)) * i32::from(*pb.add(i));
            i += 1;
        }
        total
    }
}

/// Hint the CPU to fetch the cache line at `p`.
#[inline]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The scale that maps the largest absolute component of `values` to 127.
pub fn scale_for(values: &[f32]) -> f32 {
    let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    if max > 0.0 {
        127.0 / max
    } else {
        1.0
    }
}

/// `values` as codes at `scale`, saturating at ±127.
pub fn encode(values: &[f32], scale: f32, out: &mut Vec<i8>) {
    out.extend(values.iter().map(|v| (v * scale).round().clamp(-127.0, 127.0) as i8));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn kernels_match_the_portable_sums() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        for len in [0, 1, 7, 8, 31, 32, 33, 64, 100, 256, 768, 1000] {
            let a: Vec<f32> = (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            assert!((f64::from(dot_f32(&a, &b)) - exact).abs() < 1e-4, "len {len}");
            assert!((f64::from(dot_f32_portable(&a, &b)) - exact).abs() < 1e-4, "len {len}");

            let x: Vec<i8> = (0..len).map(|_| rng.gen_range(-127..=127)).collect();
            let y: Vec<i8> = (0..len).map(|_| rng.gen_range(-127..=127)).collect();
            assert_eq!(dot_i8(&x, &y), dot_i8_portable(&x, &y), "len {len}");
            #[cfg(target_arch = "x86_64")]
            if has_avx2_fma() {
                // SAFETY: AVX2 is present.
                assert_eq!(unsafe { x86::dot_i8(&x, &y) }, dot_i8_portable(&x, &y), "len {len}");
            }
            let query = I8Query { codes: y.clone() };
            assert_eq!(query.dot(&x), dot_i8_portable(&x, &y), "len {len}");
        }
        // The extremes: no saturation.
        let x = vec![-127i8; 64];
        assert_eq!(dot_i8(&x, &x), 64 * 127 * 127);
        let y = vec![127i8; 64];
        assert_eq!(dot_i8(&x, &y), -64 * 127 * 127);
    }

    #[test]
    fn codes_approximate_the_dot_product() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(8);
        let a: Vec<f32> = (0..768).map(|_| rng.gen_range(-0.1..0.1)).collect();
        let b: Vec<f32> = a.iter().map(|v| v + rng.gen_range(-0.02..0.02)).collect();
        let scale = scale_for(&a).min(scale_for(&b));
        let (mut ca, mut cb) = (Vec::new(), Vec::new());
        encode(&a, scale, &mut ca);
        encode(&b, scale, &mut cb);
        let approx = dot_i8(&ca, &cb) as f32 / (scale * scale);
        assert!((approx - dot_f32(&a, &b)).abs() < 0.01 * dot_f32(&a, &a));
    }
}
