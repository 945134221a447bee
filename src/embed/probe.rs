//! The CPU's fastest way to run the encoder, chosen by measurement.
//!
//! Which kernel is fastest depends on the core, not only on its instruction set. AVX-512 BF16
//! doubles the multiply rate on AMD Zen 4, whose 512-bit FMAs run as two halves while
//! `vdpbf16ps` runs at full width; on Intel cores with two 512-bit FMA ports and `vdpbf16ps` on
//! one, bf16 is slower than f32. So where a CPU can run more than one kernel, the first load
//! times one encoder layer of the model's own shapes (random weights, a batch of 512 tokens)
//! through each, keeps the timings in a small file under the themap cache named for the CPU,
//! and later loads read it. A file that cannot be read, or that was written for another CPU,
//! thread count, themap or model shape, is never trusted: the kernels are timed again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::device::Dtype;
use super::kernels::MatmulFormat;
use super::model_dir::{EncoderConfig, LayerType, Pooling};
use super::Encoder;
use crate::error::{Error, Result};

/// What runs the encoder's arithmetic.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Kernel {
    /// candle's ops in the weights' dtype: gemm for matrix products on the CPU, cuBLAS on a GPU.
    Candle,
    /// themap's CPU encoder (`embed::cpu_encoder`) with its AVX-512 f32 matrix products.
    CpuF32,
    /// themap's CPU encoder with AVX-512 BF16 matrix products: linear weights rounded to bf16
    /// and packed at load, activations rounded per product, everything between products f32.
    CpuBf16,
}

impl std::fmt::Display for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Candle => "candle",
            Self::CpuF32 => "cpu-f32",
            Self::CpuBf16 => "cpu-bf16",
        })
    }
}

impl Kernel {
    /// The number format the kernel computes in on the CPU.
    pub fn dtype(self) -> Dtype {
        match self {
            Self::Candle | Self::CpuF32 => Dtype::F32,
            Self::CpuBf16 => Dtype::Bf16,
        }
    }

    /// The format of themap's own kernel, `None` for candle's.
    pub fn format(self) -> Option<MatmulFormat> {
        match self {
            Self::Candle => None,
            Self::CpuF32 => Some(MatmulFormat::F32),
            Self::CpuBf16 => Some(MatmulFormat::Bf16),
        }
    }
}

/// Bumped whenever a kernel changes enough to change which is fastest: timings kept by an
/// older themap are then taken again.
const KERNELS_REVISION: u32 = 1;

/// The probe batch: texts × tokens. Long enough for the kernels' blocking to work as it does
/// on real batches, short enough that timing three kernels stays well under half a second.
const PROBE_BATCH: (usize, usize) = (4, 128);

/// Timed passes per kernel after one warm-up pass; each kernel keeps its fastest. The kernels
/// take turns, so a disturbance (another process) falls on all of them alike.
const PROBE_ROUNDS: usize = 3;

/// A reduced format is chosen over f32 only when it is faster by more than this fraction:
/// f32 is the reference's own arithmetic, so near-ties go to it.
const REDUCED_MARGIN: f64 = 0.02;

/// The kernels this CPU can run the encoder with, candle's first.
pub fn available_kernels() -> Vec<Kernel> {
    let mut kernels = vec![Kernel::Candle];
    if MatmulFormat::F32.supported() {
        kernels.push(Kernel::CpuF32);
    }
    if MatmulFormat::Bf16.supported() {
        kernels.push(Kernel::CpuBf16);
    }
    kernels
}

/// What a probe's timings hold for: they are reused only where all of it is the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeKey {
    pub cpu: CpuIdentity,
    /// Threads the kernels run on (rayon's pool).
    pub threads: usize,
    /// The kernels timed, which `THEMAP_NO_AVX512` narrows.
    pub kernels: Vec<Kernel>,
    /// themap's version and kernel revision.
    pub themap: String,
    /// The encoder's shapes the layer was built with.
    pub model: String,
}

impl ProbeKey {
    fn new(cfg: &EncoderConfig, kernels: Vec<Kernel>) -> Self {
        Self {
            cpu: CpuIdentity::this(),
            threads: rayon::current_num_threads(),
            kernels,
            themap: format!("{} kernels {KERNELS_REVISION}", env!("CARGO_PKG_VERSION")),
            model: format!(
                "hidden {}, feed-forward {}, {} query heads and {} key-value heads of {}",
                cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
            ),
        }
    }

    /// The file the timings are kept in, under `cache`: one per key, so that machines sharing
    /// a home folder keep theirs side by side.
    fn file(&self, cache: &Path) -> PathBuf {
        let key = serde_json::to_vec(self).expect("a key serialises");
        cache.join(format!("{:016x}.json", xxhash_rust::xxh3::xxh3_64(&key)))
    }
}

/// The CPU as its CPUID instruction describes it: vendor, family and model (as `lscpu` numbers
/// them), name, and the instruction sets themap's kernels use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuIdentity {
    pub vendor: String,
    pub family: u32,
    pub model: u32,
    pub name: String,
    pub flags: Vec<String>,
}

impl CpuIdentity {
    /// This machine's CPU.
    pub fn this() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            x86::identity()
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {
            vendor: std::env::consts::ARCH.to_string(),
            family: 0,
            model: 0,
            name: std::env::consts::ARCH.to_string(),
            flags: Vec::new(),
        }
    }

    /// One line for logs and tables: `AMD EPYC (AuthenticAMD family 25 model 17; avx512f, …)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} family {} model {}; {})",
            self.name,
            self.vendor,
            self.family,
            self.model,
            self.flags.join(", ")
        )
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::__cpuid;

    use super::CpuIdentity;

    pub(super) fn identity() -> CpuIdentity {
        // Leaves above the CPU's maximum are not asked.
        let (vendor, signature, name) = {
            let leaf0 = __cpuid(0);
            let vendor: Vec<u8> = [leaf0.ebx, leaf0.edx, leaf0.ecx]
                .iter()
                .flat_map(|r| r.to_le_bytes())
                .collect();
            let signature = if leaf0.eax >= 1 { __cpuid(1).eax } else { 0 };
            let name: Vec<u8> = if __cpuid(0x8000_0000).eax >= 0x8000_0004 {
                (0x8000_0002..=0x8000_0004u32)
                    .flat_map(|leaf| {
                        let r = __cpuid(leaf);
                        [r.eax, r.ebx, r.ecx, r.edx].into_iter().flat_map(u32::to_le_bytes)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            (vendor, signature, name)
        };
        // Family and model as Linux (and so lscpu) compute them from the signature.
        let base_family = (signature >> 8) & 0xf;
        let family = if base_family == 0xf {
            base_family + ((signature >> 20) & 0xff)
        } else {
            base_family
        };
        let mut model = (signature >> 4) & 0xf;
        if base_family == 0x6 || base_family == 0xf {
            model |= ((signature >> 16) & 0xf) << 4;
        }
        let text = |bytes: &[u8]| {
            String::from_utf8_lossy(bytes)
                .trim_matches(char::from(0))
                .trim()
                .to_string()
        };
        let flags = [
            ("avx2", is_x86_feature_detected!("avx2")),
            ("fma", is_x86_feature_detected!("fma")),
            ("avx512f", is_x86_feature_detected!("avx512f")),
            ("avx512_bf16", is_x86_feature_detected!("avx512bf16")),
            ("avx512_fp16", is_x86_feature_detected!("avx512fp16")),
            ("avx512_vnni", is_x86_feature_detected!("avx512vnni")),
        ];
        CpuIdentity {
            vendor: text(&vendor),
            family,
            model,
            name: text(&name),
            flags: flags
                .iter()
                .filter(|(_, has)| *has)
                .map(|(flag, _)| flag.to_string())
                .collect(),
        }
    }
}

/// Kept timings: seconds per probe pass for each kernel, and what they hold for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeRecord {
    pub key: ProbeKey,
    pub seconds: BTreeMap<Kernel, f64>,
    /// When the kernels were timed, in seconds since 1970.
    pub measured_at: u64,
}

/// The kernel to run the encoder with on this CPU: `forced` if given, else the fastest of
/// those that compute in `dtype` (any format where `None`), timed once per CPU and kept in
/// `cache` (`None`: timed on every call, kept nowhere).
pub fn cpu_kernel(
    cfg: &EncoderConfig,
    dtype: Option<Dtype>,
    forced: Option<Kernel>,
    cache: Option<&Path>,
) -> Result<Kernel> {
    choose_kernel(
        ProbeKey::new(cfg, available_kernels()),
        dtype,
        forced,
        cache,
        |kernels| time_kernels(cfg, kernels),
    )
}

/// [`cpu_kernel`] with the timing passed in, so tests can stand in for the CPU.
fn choose_kernel(
    key: ProbeKey,
    dtype: Option<Dtype>,
    forced: Option<Kernel>,
    cache: Option<&Path>,
    time: impl FnOnce(&[Kernel]) -> Result<BTreeMap<Kernel, f64>>,
) -> Result<Kernel> {
    if let Some(kernel) = forced {
        if !key.kernels.contains(&kernel) {
            return Err(Error::InvalidArgument(format!(
                "the {kernel} kernel needs AVX-512 instructions this CPU lacks ({}); choose another with --cpu-kernel",
                key.cpu.describe()
            )));
        }
        if dtype.is_some_and(|dtype| dtype != kernel.dtype()) {
            return Err(Error::InvalidArgument(format!(
                "the {kernel} kernel computes in {}, not {}",
                kernel.dtype().name(),
                dtype.map_or("", Dtype::name)
            )));
        }
        return Ok(kernel);
    }
    let candidates: Vec<Kernel> = key
        .kernels
        .iter()
        .copied()
        .filter(|&k| dtype.is_none_or(|dtype| k.dtype() == dtype))
        .collect();
    match candidates[..] {
        [] => {
            return Err(Error::InvalidArgument(format!(
                "no CPU kernel computes in {}",
                dtype.map_or("", Dtype::name)
            )))
        }
        [only] => return Ok(only),
        _ => {}
    }
    let record = match cache.and_then(|dir| read_record(&key.file(dir), &key)) {
        Some(record) => record,
        None => {
            let started = Instant::now();
            let seconds = time(&key.kernels)?;
            let record = ProbeRecord {
                key,
                seconds,
                measured_at: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            };
            tracing::debug!(
                "timed the CPU kernels on {} in {:.2} s: {}",
                record.key.cpu.describe(),
                started.elapsed().as_secs_f64(),
                describe_timings(&record.seconds)
            );
            if let Some(dir) = cache {
                keep_record(dir, &record);
            }
            record
        }
    };
    let chosen = fastest(&record.seconds, &candidates)
        .ok_or_else(|| Error::InvalidArgument("no timing for any candidate kernel".into()))?;
    tracing::debug!(
        "CPU kernel: {chosen} ({}), the fastest of {} per probe pass ({} texts of {} tokens, one layer)",
        chosen.dtype().name(),
        describe_timings(&record.seconds),
        PROBE_BATCH.0,
        PROBE_BATCH.1
    );
    Ok(chosen)
}

/// The fastest of `candidates` by `seconds`, where a reduced format must beat f32 by more
/// than [`REDUCED_MARGIN`]. `None` where no candidate was timed.
fn fastest(seconds: &BTreeMap<Kernel, f64>, candidates: &[Kernel]) -> Option<Kernel> {
    let best_of = |dtype: Dtype| {
        candidates
            .iter()
            .filter(|&&k| k.dtype() == dtype)
            .filter_map(|k| Some((*k, *seconds.get(k)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    };
    match (best_of(Dtype::F32), best_of(Dtype::Bf16)) {
        (Some((f32, full)), Some((bf16, reduced))) => Some(if reduced < full * (1.0 - REDUCED_MARGIN) {
            bf16
        } else {
            f32
        }),
        (Some((kernel, _)), None) | (None, Some((kernel, _))) => Some(kernel),
        (None, None) => None,
    }
}

fn describe_timings(seconds: &BTreeMap<Kernel, f64>) -> String {
    seconds
        .iter()
        .map(|(kernel, s)| format!("{kernel} {:.1} ms", s * 1e3))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The record kept for `key` in `path`, if it is whole and was made for exactly that key.
fn read_record(path: &Path, key: &ProbeKey) -> Option<ProbeRecord> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::debug!("cannot read {} ({e}): timing the CPU kernels again", path.display());
            return None;
        }
    };
    let record: ProbeRecord = match serde_json::from_slice(&text) {
        Ok(record) => record,
        Err(e) => {
            tracing::debug!("{} is damaged ({e}): timing the CPU kernels again", path.display());
            return None;
        }
    };
    let timed_all = key
        .kernels
        .iter()
        .all(|k| record.seconds.get(k).is_some_and(|s| s.is_finite() && *s > 0.0));
    if record.key != *key || !timed_all {
        tracing::debug!(
            "{} was written for another CPU or themap: timing the CPU kernels again",
            path.display()
        );
        return None;
    }
    tracing::debug!("CPU kernel timings from {}", path.display());
    Some(record)
}

/// Writes `record` into `dir` (whole or not at all). A cache that cannot be written costs only
/// the timing on the next load, so it is logged, not an error.
fn keep_record(dir: &Path, record: &ProbeRecord) {
    let path = record.key.file(dir);
    let written = std::fs::create_dir_all(dir).map_err(Error::io(dir)).and_then(|()| {
        crate::fsutil::write_atomic(&path, |w| serde_json::to_writer_pretty(w, record).map_err(Into::into))
    });
    match written {
        Ok(()) => tracing::debug!("CPU kernel timings kept in {}", path.display()),
        Err(e) => tracing::warn!("{e}; the CPU kernels will be timed again on the next run"),
    }
}

/// Seconds per probe pass of one encoder layer of `cfg`'s shapes, through each kernel.
fn time_kernels(cfg: &EncoderConfig, kernels: &[Kernel]) -> Result<BTreeMap<Kernel, f64>> {
    // One sliding layer (at 128 tokens it sees every token, as a full one does) and a token
    // table of 64 rows: the layer's weights are the model's shapes, the vocabulary is not needed.
    let layer = EncoderConfig {
        vocab_size: 64,
        num_hidden_layers: 1,
        layer_types: vec![LayerType::SlidingAttention],
        ..cfg.clone()
    };
    let weights = VarMap::new();
    let vb = VarBuilder::from_varmap(&weights, DType::F32, &Device::Cpu);
    let encoders = kernels
        .iter()
        .map(|&kernel| Ok((kernel, Encoder::load(&layer, kernel, vb.clone())?)))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let (texts, tokens) = PROBE_BATCH;
    let ids: Vec<u32> = (0..tokens).map(|i| (i * 7 % 64) as u32).collect();
    let rows = vec![&ids[..]; texts];
    let mut best: BTreeMap<Kernel, f64> = BTreeMap::new();
    for round in 0..=PROBE_ROUNDS {
        for (kernel, encoder) in &encoders {
            let started = Instant::now();
            encoder.pooled(&rows, Pooling::Mean, 0, &Device::Cpu)?;
            let seconds = started.elapsed().as_secs_f64();
            // Round 0 warms caches and allocations up.
            if round > 0 {
                let entry = best.entry(*kernel).or_insert(f64::INFINITY);
                *entry = entry.min(seconds);
            }
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kernels: &[Kernel]) -> ProbeKey {
        ProbeKey {
            cpu: CpuIdentity {
                vendor: "GenuineIntel".into(),
                family: 6,
                model: 207,
                name: "a test CPU".into(),
                flags: vec!["avx512f".into(), "avx512_bf16".into()],
            },
            threads: 2,
            kernels: kernels.to_vec(),
            themap: "test".into(),
            model: "test".into(),
        }
    }

    const ALL: [Kernel; 3] = [Kernel::Candle, Kernel::CpuF32, Kernel::CpuBf16];

    /// A stand-in for the CPU's timings.
    fn timings(candle: f64, f32: f64, bf16: f64) -> BTreeMap<Kernel, f64> {
        BTreeMap::from([(Kernel::Candle, candle), (Kernel::CpuF32, f32), (Kernel::CpuBf16, bf16)])
    }

    #[test]
    fn the_fastest_kernel_is_chosen_and_near_ties_go_to_f32() {
        let cases = [
            // (candle, f32, bf16) seconds → default choice
            ((0.03, 0.025, 0.013), Kernel::CpuBf16),
            ((0.03, 0.025, 0.037), Kernel::CpuF32),
            ((0.02, 0.025, 0.037), Kernel::Candle),
            // bf16 1% faster than the best f32: within the margin, f32 it is.
            ((0.03, 0.025, 0.02475), Kernel::CpuF32),
            ((0.03, 0.025, 0.0240), Kernel::CpuBf16),
        ];
        for ((candle, f32, bf16), expected) in cases {
            let chosen = choose_kernel(key(&ALL), None, None, None, |_| Ok(timings(candle, f32, bf16))).unwrap();
            assert_eq!(chosen, expected, "{candle} {f32} {bf16}");
        }
        // With a format asked for, the fastest kernel of that format.
        let chosen = choose_kernel(key(&ALL), Some(Dtype::F32), None, None, |_| {
            Ok(timings(0.03, 0.025, 0.01))
        })
        .unwrap();
        assert_eq!(chosen, Kernel::CpuF32);
        let chosen = choose_kernel(key(&ALL), Some(Dtype::F32), None, None, |_| {
            Ok(timings(0.02, 0.025, 0.01))
        })
        .unwrap();
        assert_eq!(chosen, Kernel::Candle);
    }

    #[test]
    fn a_single_candidate_or_a_forced_kernel_needs_no_timing() {
        let never = |_: &[Kernel]| -> Result<BTreeMap<Kernel, f64>> { panic!("timed") };
        let only_candle = key(&[Kernel::Candle]);
        assert_eq!(
            choose_kernel(only_candle.clone(), None, None, None, never).unwrap(),
            Kernel::Candle
        );
        assert!(choose_kernel(only_candle.clone(), Some(Dtype::Bf16), None, None, never).is_err());
        assert!(choose_kernel(only_candle, None, Some(Kernel::CpuBf16), None, never).is_err());
        let forced = choose_kernel(key(&ALL), None, Some(Kernel::CpuF32), None, never).unwrap();
        assert_eq!(forced, Kernel::CpuF32);
        assert!(choose_kernel(key(&ALL), Some(Dtype::Bf16), Some(Kernel::CpuF32), None, never).is_err());
        let bf16_only = choose_kernel(key(&ALL), Some(Dtype::Bf16), None, None, never).unwrap();
        assert_eq!(bf16_only, Kernel::CpuBf16);
    }

    #[test]
    fn kept_timings_are_reused_and_damaged_or_foreign_ones_are_retaken() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Some(dir.path());
        let calls = std::cell::Cell::new(0);
        let choose = |key: ProbeKey, timed: BTreeMap<Kernel, f64>| {
            choose_kernel(key, None, None, cache, |_| {
                calls.set(calls.get() + 1);
                Ok(timed)
            })
            .unwrap()
        };
        // First use: timed and kept; then read back, not timed again, even where a new timing
        // would say otherwise.
        assert_eq!(choose(key(&ALL), timings(0.03, 0.025, 0.013)), Kernel::CpuBf16);
        assert_eq!(choose(key(&ALL), timings(0.03, 0.025, 0.5)), Kernel::CpuBf16);
        assert_eq!(calls.get(), 1);
        let file = key(&ALL).file(dir.path());
        assert!(file.is_file());

        // A kept record whose timings say f32 is faster (a fake probe result): f32 is chosen.
        let mut record: ProbeRecord = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        record.seconds.insert(Kernel::CpuBf16, 0.04);
        std::fs::write(&file, serde_json::to_vec(&record).unwrap()).unwrap();
        assert_eq!(choose(key(&ALL), timings(0.03, 0.025, 0.013)), Kernel::CpuF32);
        assert_eq!(calls.get(), 1);

        // Damaged: timed again, and the file rewritten whole.
        for damage in [&b"{\"key\": {\"cpu\""[..], b"", b"\x00\xff garbage"] {
            std::fs::write(&file, damage).unwrap();
            assert_eq!(choose(key(&ALL), timings(0.03, 0.025, 0.013)), Kernel::CpuBf16);
            let kept: ProbeRecord = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            assert_eq!(kept.key, key(&ALL));
        }
        assert_eq!(calls.get(), 4);

        // A record from another CPU under this CPU's file name (copied from another machine):
        // not trusted.
        let mut foreign = record.clone();
        foreign.key.cpu.model = 17;
        foreign.key.cpu.vendor = "AuthenticAMD".into();
        foreign.seconds = timings(0.03, 0.025, 0.001);
        std::fs::write(&file, serde_json::to_vec(&foreign).unwrap()).unwrap();
        assert_eq!(choose(key(&ALL), timings(0.03, 0.025, 0.04)), Kernel::CpuF32);
        assert_eq!(calls.get(), 5);
        // Nor one that lacks a timing for a kernel this CPU has, or holds a nonsense one.
        for seconds in [timings(0.03, 0.025, f64::NAN), BTreeMap::from([(Kernel::CpuF32, 0.01)])] {
            let partial = ProbeRecord {
                seconds,
                ..record.clone()
            };
            std::fs::write(&file, serde_json::to_vec(&partial).unwrap()).unwrap();
            choose(key(&ALL), timings(0.03, 0.025, 0.013));
        }
        assert_eq!(calls.get(), 7);

        // Another CPU's key has a file of its own: both are kept side by side.
        let mut other = key(&ALL);
        other.cpu.name = "another CPU".into();
        assert_ne!(other.file(dir.path()), file);
        choose(other, timings(0.03, 0.025, 0.04));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn an_unwritable_cache_still_chooses() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("file-not-folder");
        std::fs::write(&blocked, "").unwrap();
        let chosen = choose_kernel(key(&ALL), None, None, Some(&blocked), |_| {
            Ok(timings(0.03, 0.025, 0.013))
        })
        .unwrap();
        assert_eq!(chosen, Kernel::CpuBf16);
    }

    #[test]
    fn this_cpu_is_named() {
        let cpu = CpuIdentity::this();
        assert!(!cpu.vendor.is_empty() && !cpu.name.is_empty(), "{cpu:?}");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            cpu.flags.contains(&"avx512_bf16".to_string()),
            is_x86_feature_detected!("avx512bf16")
        );
    }
}
