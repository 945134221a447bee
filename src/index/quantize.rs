//! Dot-product kernels and the codes the search graph walks on.
//!
//! A 768-dimension f32 vector is 3 KiB; walking an HNSW graph reads one per visited node, and at
//! 100,000 passages that no longer fits in cache. The graph walks on short codes instead, and
//! the candidates it returns are re-ranked on the full f32 vectors, so the final scores are exact.
//!
//! - 8-bit codes (`i8`, a quarter of the bytes): one scale serves the whole collection,
//!   `code = round(x * scale)`, with `scale` chosen so the largest component seen maps to 127.
//!   Two codes give an exact integer dot product, which is what building the graph needs.
//! - 4-bit codes ([`NibbleRanges`], an eighth of the bytes): sixteen levels over each dimension's
//!   own range, as faiss's 4-bit scalar quantizer has. Sentence embeddings are anisotropic (a few
//!   dimensions carry large offsets), so a range per dimension keeps the precision a single scale
//!   would spend on them. A query meets them as 8-bit weights, one integer dot product per node.
//!
//! Vectors added later with components outside what the codes were fitted on saturate, which only
//! makes their walking distance a little less precise.

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

    /// Codes lie in 0..=15 and weights in -127..=127: a `maddubs` pair sums to at most
    /// 2·15·127 and two of them to 7,620, far from i16's limit.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_u4_i8(row: &[u8], weights: &[i8]) -> i32 {
        let blocks = row.len().min(weights.len() / 2) / 32;
        let (pr, pw) = (row.as_ptr(), weights.as_ptr());
        let low_half = _mm256_set1_epi8(15);
        let ones = _mm256_set1_epi16(1);
        // One 64-dimension block's products, summed in pairs to i32.
        let block_sum = |block: usize| {
            let bytes = _mm256_loadu_si256(pr.add(32 * block) as *const __m256i);
            let low = _mm256_and_si256(bytes, low_half);
            let high = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low_half);
            let w_low = _mm256_loadu_si256(pw.add(64 * block) as *const __m256i);
            let w_high = _mm256_loadu_si256(pw.add(64 * block + 32) as *const __m256i);
            let pairs = _mm256_add_epi16(_mm256_maddubs_epi16(low, w_low), _mm256_maddubs_epi16(high, w_high));
            _mm256_madd_epi16(pairs, ones)
        };
        // Two chains of sums, so consecutive blocks do not wait on each other.
        let mut acc = [_mm256_setzero_si256(); 2];
        let mut block = 0;
        while block + 2 <= blocks {
            acc[0] = _mm256_add_epi32(acc[0], block_sum(block));
            acc[1] = _mm256_add_epi32(acc[1], block_sum(block + 1));
            block += 2;
        }
        if block < blocks {
            acc[0] = _mm256_add_epi32(acc[0], block_sum(block));
        }
        let sum = _mm256_add_epi32(acc[0], acc[1]);
        let half = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        let quad = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0b01_00_11_10));
        let single = _mm_add_epi32(quad, _mm_shuffle_epi32(quad, 0b10_11_00_01));
        _mm_cvtsi128_si32(single)
    }
}

/// Where each dimension's sixteen 4-bit levels lie: `x ≈ low + code * step`. A row of codes holds
/// the dimensions in blocks of 64 (the last one padded with zeros), 32 bytes per block: byte `j`
/// keeps dimension `j` of the block in its low half and dimension `32 + j` in its high half, so
/// the kernel unpacks a block with one mask and one shift, and meets the query's weights in order.
#[derive(Debug, Clone, PartialEq)]
pub struct NibbleRanges {
    pub low: Vec<f32>,
    pub step: Vec<f32>,
}

/// Rows sampled to fit [`NibbleRanges`]: enough for steady quantiles, cheap at a million.
const RANGE_SAMPLE: usize = 16_384;
/// Share of a dimension's values left outside its range at each end: a rare extreme saturates
/// instead of stretching every other value's step.
const RANGE_TAIL: f64 = 0.001;

impl NibbleRanges {
    /// Ranges for the rows of `flat` (`dims` values each): per dimension, from the 0.1% to the
    /// 99.9% quantile of up to 16,384 rows spread over all of them.
    pub fn fit(flat: &[f32], dims: usize) -> Self {
        let rows = flat.len() / dims.max(1);
        let stride = rows.div_ceil(RANGE_SAMPLE).max(1);
        let sampled: Vec<&[f32]> = flat.chunks_exact(dims.max(1)).step_by(stride).collect();
        let mut column = Vec::with_capacity(sampled.len());
        let (mut low, mut step) = (Vec::with_capacity(dims), Vec::with_capacity(dims));
        for d in 0..dims {
            column.clear();
            column.extend(sampled.iter().map(|row| row[d]).filter(|v| v.is_finite()));
            let (lo, hi) = match column.len() {
                0 => (0.0, 0.0),
                n => {
                    let tail = ((n as f64 * RANGE_TAIL) as usize).min(n - 1);
                    let lo = *column.select_nth_unstable_by(tail, f32::total_cmp).1;
                    let hi = *column.select_nth_unstable_by(n - 1 - tail, f32::total_cmp).1;
                    (lo, hi)
                }
            };
            low.push(lo);
            // A constant dimension keeps code 0, and its weight in every query is 0.
            step.push(if hi > lo { (hi - lo) / 15.0 } else { 0.0 });
        }
        Self { low, step }
    }

    pub fn dims(&self) -> usize {
        self.low.len()
    }

    /// Bytes of one row of codes.
    pub fn row_bytes(&self) -> usize {
        nibble_row_bytes(self.dims())
    }

    /// Appends the codes of the rows of `flat` to `out`.
    pub fn encode(&self, flat: &[f32], out: &mut Vec<u8>) {
        let dims = self.dims();
        let row_bytes = self.row_bytes();
        // A constant dimension (step 0) gets factor 0, so code 0.
        let factors: Vec<f32> = self.step.iter().map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 }).collect();
        for row in flat.chunks_exact(dims) {
            let start = out.len();
            out.resize(start + row_bytes, 0);
            let codes = &mut out[start..];
            for (d, &x) in row.iter().enumerate() {
                let level = ((x - self.low[d]) * factors[d]).round().clamp(0.0, 15.0) as u8;
                let (byte, shift) = nibble_place(d);
                codes[byte] |= level << shift;
            }
        }
    }

    /// The vector a row of codes stands for.
    pub fn decode(&self, codes: &[u8], out: &mut Vec<f32>) {
        out.extend((0..self.dims()).map(|d| {
            let (byte, shift) = nibble_place(d);
            self.low[d] + f32::from((codes[byte] >> shift) & 15) * self.step[d]
        }));
    }

    /// `query` prepared for scoring rows of codes: `query · x ≈ offset + Σ weight_d · code_d`,
    /// with the weights (`query_d · step_d`) as 8-bit integers at one scale.
    pub fn query(&self, query: &[f32]) -> NibbleQuery {
        let offset = query.iter().zip(&self.low).map(|(q, lo)| q * lo).sum();
        let weights: Vec<f32> = query.iter().zip(&self.step).map(|(q, s)| q * s).collect();
        let scale = scale_for(&weights);
        let mut codes = Vec::with_capacity(self.row_bytes() * 2);
        encode(&weights, scale, &mut codes);
        codes.resize(self.row_bytes() * 2, 0);
        NibbleQuery {
            weights: codes,
            offset,
            inverse_scale: 1.0 / scale,
        }
    }
}

/// Bytes of a row of 4-bit codes of `dims` dimensions (see [`NibbleRanges`]).
pub fn nibble_row_bytes(dims: usize) -> usize {
    dims.div_ceil(64) * 32
}

/// Byte and bit shift of dimension `d` in a row of 4-bit codes.
#[inline]
fn nibble_place(d: usize) -> (usize, u32) {
    let (block, within) = (d / 64, d % 64);
    (block * 32 + within % 32, if within < 32 { 0 } else { 4 })
}

/// A query made ready for rows of 4-bit codes ([`NibbleRanges::query`]).
#[derive(Debug, Clone, Default)]
pub struct NibbleQuery {
    /// One per dimension, padded like a row to whole 64-dimension blocks.
    weights: Vec<i8>,
    offset: f32,
    inverse_scale: f32,
}

impl NibbleQuery {
    /// The approximate `query · x` of the vector `x` whose codes are `row`.
    #[inline]
    pub fn dot(&self, row: &[u8]) -> f32 {
        self.offset + dot_u4_i8(row, &self.weights) as f32 * self.inverse_scale
    }
}

/// `Σ code_d · weight_d` over a row of 4-bit codes and 8-bit weights in the row's order
/// (`weights.len() == 2 * row.len()`), as an exact integer.
#[inline]
pub fn dot_u4_i8(row: &[u8], weights: &[i8]) -> i32 {
    debug_assert_eq!(weights.len(), 2 * row.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { x86::dot_u4_i8(row, weights) };
    }
    dot_u4_i8_portable(row, weights)
}

fn dot_u4_i8_portable(row: &[u8], weights: &[i8]) -> i32 {
    row.chunks_exact(32)
        .zip(weights.chunks_exact(64))
        .map(|(bytes, w)| {
            bytes
                .iter()
                .enumerate()
                .map(|(j, &b)| i32::from(b & 15) * i32::from(w[j]) + i32::from(b >> 4) * i32::from(w[32 + j]))
                .sum::<i32>()
        })
        .sum()
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
    fn nibble_kernel_matches_the_portable_sum() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(9);
        for blocks in [0, 1, 2, 3, 12] {
            let row: Vec<u8> = (0..32 * blocks).map(|_| rng.gen()).collect();
            let weights: Vec<i8> = (0..64 * blocks).map(|_| rng.gen_range(-127..=127)).collect();
            let plain: i32 = (0..64 * blocks)
                .map(|d| {
                    let (byte, shift) = nibble_place(d);
                    i32::from((row[byte] >> shift) & 15) * i32::from(weights[d])
                })
                .sum();
            assert_eq!(dot_u4_i8_portable(&row, &weights), plain, "{blocks} blocks");
            assert_eq!(dot_u4_i8(&row, &weights), plain, "{blocks} blocks");
        }
        // The extremes: no saturation.
        let row = vec![0xffu8; 64];
        assert_eq!(dot_u4_i8(&row, &[-127i8; 128]), -128 * 15 * 127);
        assert_eq!(dot_u4_i8(&row, &[127i8; 128]), 128 * 15 * 127);
    }

    #[test]
    fn nibble_codes_approximate_the_dot_product() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(10);
        // 100 dimensions: one whole block and one padded; dimension 3 constant, 7 offset far from 0.
        let dims = 100;
        let flat: Vec<f32> = (0..500 * dims)
            .map(|i| match i % dims {
                3 => 0.25,
                7 => 0.5 + rng.gen_range(-0.01..0.01),
                _ => rng.gen_range(-0.1..0.1),
            })
            .collect();
        let ranges = NibbleRanges::fit(&flat, dims);
        assert_eq!(ranges.step[3], 0.0);
        let mut codes = Vec::new();
        ranges.encode(&flat, &mut codes);
        assert_eq!(codes.len(), 500 * ranges.row_bytes());
        assert_eq!(ranges.row_bytes(), 64);
        let query: Vec<f32> = (0..dims).map(|_| rng.gen_range(-0.1..0.1)).collect();
        let prepared = ranges.query(&query);
        let mut decoded = Vec::new();
        for (row, codes) in flat.chunks_exact(dims).zip(codes.chunks_exact(ranges.row_bytes())) {
            decoded.clear();
            ranges.decode(codes, &mut decoded);
            for ((x, y), step) in row.iter().zip(&decoded).zip(&ranges.step) {
                // Within half a step, or saturated at a range end (the tails left out of the fit).
                assert!(
                    (x - y).abs() <= step / 2.0 + 1e-6 || (x - y).abs() <= 0.01,
                    "{x} decoded as {y}"
                );
            }
            let exact = dot_f32(&query, row);
            let approx = prepared.dot(codes);
            assert!((approx - exact).abs() < 0.01, "{approx} for {exact}");
            // The prepared query agrees with the decoded vector up to the weights' rounding.
            assert!((approx - dot_f32(&query, &decoded)).abs() < 0.002);
        }
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
