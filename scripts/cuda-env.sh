#!/usr/bin/env bash
# The CUDA 13.0 toolkit for building themap's `cuda` feature, from PyPI (no system CUDA needed):
# installs the pinned wheels into $THEMAP_CACHE/venv-cuda once, then prints the environment a
# build needs. Use it as
#
#   eval "$(scripts/cuda-env.sh)" && cargo build --release --features cuda
#
# Pins: every part at 13.0 (the cuda-toolkit meta-package mixes in 13.5 parts, and cudarc
# 0.19.10 refuses CUDA above 13.4). CUDA_COMPUTE_CAP=90 builds the kernels for H100/H200 (set it
# before calling this script for another card).
set -euo pipefail
CACHE="${THEMAP_CACHE:-$HOME/.cache/themap}"
VENV="$CACHE/venv-cuda"
WHEELS=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.1.0.3 nvidia-curand==10.4.0.35)
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2
fi
CU=$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))' 2>/dev/null || true)
if [ -z "$CU" ] || [ ! -x "$CU/bin/nvcc" ] || [ ! -f "$CU/lib/libcudart_static.a" ]; then
  echo "cuda-env: installing the CUDA 13.0 toolkit wheels into $VENV (about 680 MB)" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${WHEELS[@]}" >&2
  CU=$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')
fi
echo "export PATH=\"$CU/bin:\$PATH\""
echo "export CUDA_HOME=\"$CU\""
echo "export CUDA_COMPUTE_CAP=\"${CUDA_COMPUTE_CAP:-90}\""
