//! Where the model runs (`--device cpu|cuda[:N]`) and in which number format.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device};

use crate::error::{Error, Result};

/// A device as the user names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    Cpu,
    /// A CUDA GPU by ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("unknown device {text:?}: use cpu, cuda or cuda:N")),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// Opens the device: a clear error where this build or machine has no such device.
    pub fn open(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(_) if !candle_core::utils::cuda_is_available() => Err(Error::DeviceUnavailable(format!(
                "--device {self}: this themap was built without CUDA support; rebuild it with \
                 `cargo build --release --features cuda` (needs the CUDA toolkit), or use --device cpu"
            ))),
            Self::Cuda(n) => {
                // Each library is looked for once (a dlopen each).
                let missing = missing_cuda_libraries();
                if !missing.is_empty() {
                    return Err(Error::DeviceUnavailable(format!(
                        "--device {self}: cannot load {}; install the NVIDIA driver and the CUDA 13 runtime, \
                         cuBLAS, cuRAND and NVRTC (README: Running on a GPU) and put their folder on \
                         LD_LIBRARY_PATH, or use --device cpu",
                        missing.join(", ")
                    )));
                }
                Device::new_cuda(n).map_err(|e| {
                    Error::DeviceUnavailable(format!(
                        "--device {self}: cannot open CUDA device {n} ({e}); check `nvidia-smi`, or use --device cpu"
                    ))
                })
            }
        }
    }
}

/// The CUDA libraries a `cuda` build loads on first use that this machine cannot load: the
/// driver (libcuda), NVRTC, cuBLAS, cuBLASLt and cuRAND. Checked first because cudarc panics
/// where one is missing.
#[cfg(feature = "cuda")]
fn missing_cuda_libraries() -> Vec<&'static str> {
    // SAFETY: each only tries to load the library (dlopen) and closes it again.
    let present: [(&str, bool); 5] = unsafe {
        [
            (
                "libcuda.so.1 (the NVIDIA driver)",
                cudarc::driver::sys::is_culib_present(),
            ),
            ("libnvrtc", cudarc::nvrtc::sys::is_culib_present()),
            ("libcublas", cudarc::cublas::sys::is_culib_present()),
            ("libcublasLt", cudarc::cublaslt::sys::is_culib_present()),
            ("libcurand", cudarc::curand::sys::is_culib_present()),
        ]
    };
    present.iter().filter(|(_, ok)| !ok).map(|(name, _)| *name).collect()
}

#[cfg(not(feature = "cuda"))]
fn missing_cuda_libraries() -> Vec<&'static str> {
    Vec::new()
}

/// The number format of the model's weights and activations. Norms, pooling and the final
/// projections always run in f32. On the CPU, bf16 rounds the inputs of every matrix product
/// (linear layers and attention) to bf16, sums in f32, and keeps everything between them in f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    F32,
    /// bfloat16: the default on a GPU, and on CPUs where it measures faster than f32;
    /// EmbeddingGemma was trained in it.
    Bf16,
    /// float16: Gemma's activations can exceed its range; prefer bf16.
    F16,
}

impl Dtype {
    pub fn candle(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::Bf16 => DType::BF16,
            Self::F16 => DType::F16,
        }
    }

    /// Checks that `device` can compute in this format.
    pub fn check(self, device: DeviceChoice) -> Result<()> {
        match (device, self) {
            (DeviceChoice::Cpu, Self::Bf16) if !crate::embed::kernels::bf16_supported() => Err(Error::InvalidArgument(
                "--dtype bf16 on the CPU needs AVX-512 BF16 (the vdpbf16ps instruction, in `lscpu` \
                     flags as avx512_bf16), which this CPU lacks; use --dtype f32"
                    .into(),
            )),
            // candle's CPU f16 matrix multiply is slower than f32 and Gemma's activations exceed
            // f16's range: nothing to gain.
            (DeviceChoice::Cpu, Self::F16) => Err(Error::InvalidArgument(
                "--dtype f16 runs only on a GPU (--device cuda); on the CPU use bf16 or f32".into(),
            )),
            _ => Ok(()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_cuda_is_a_clear_error_without_it() {
        assert_eq!("cpu".parse::<DeviceChoice>(), Ok(DeviceChoice::Cpu));
        assert_eq!("CUDA".parse::<DeviceChoice>(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse::<DeviceChoice>(), Ok(DeviceChoice::Cuda(3)));
        assert!("tpu".parse::<DeviceChoice>().is_err());
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
        if !candle_core::utils::cuda_is_available() {
            let err = DeviceChoice::Cuda(0).open().unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        } else if missing_cuda_libraries().contains(&"libcuda.so.1 (the NVIDIA driver)") {
            // A `cuda` build on a machine without the driver: one clear line, no panic.
            let err = DeviceChoice::Cuda(0).open().unwrap_err().to_string();
            assert!(
                err.contains("cannot load libcuda.so.1") && err.contains("--device cpu"),
                "{err}"
            );
        }
        assert!(Dtype::F16.check(DeviceChoice::Cpu).is_err());
        assert_eq!(
            Dtype::Bf16.check(DeviceChoice::Cpu).is_ok(),
            crate::embed::kernels::bf16_supported()
        );
        assert!(Dtype::Bf16.check(DeviceChoice::Cuda(0)).is_ok());
    }
}
