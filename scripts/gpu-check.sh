#!/usr/bin/env bash
# The GPU check: one command on a GPU machine that has no Rust, no registry and no model weights.
#
#   scripts/gpu-check.sh pack             here: build the `cuda` binary and pack what the check
#                                         needs into target/gpu-check/ (under 64 MiB)
#   scripts/gpu-check.sh [--device cpu] [--quick]
#                                         there (or here, as the rehearsal): unpack the bundle and
#                                         measure; the table goes to $OUT (default
#                                         target/gpu-check-out/) as table.md, with figures.json
#
# The bundle: the stripped `cuda` build of themap (xz), the model folder without its weights
# (configs and tokenizer, xz), and People's Daily's paragraphs (xz) for the length mix. The check
# makes seeded random weights of the model's shapes there with PyTorch; scripts/gpu_check.py says
# what it measures. It needs a python3 with torch, transformers and sentence-transformers (the GPU
# machine's own; here $THEMAP_CACHE/venv-ref), and finds the CUDA 13 libraries in that Python's
# nvidia/cu13/lib (PyTorch's wheels) or /usr/local/cuda.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${THEMAP_CACHE:-$HOME/.cache/themap}"
BUNDLE=target/gpu-check
LIMIT_BYTES=$((60 * 1024 * 1024)) # the carry limit is 64 MiB with the working tree

pack() {
  eval "$(bash scripts/cuda-env.sh)"
  cargo build --release --features cuda --target-dir target/cuda
  local model staging
  model=$(bash scripts/fetch-model.sh)
  staging=$(mktemp -d target/gpu-check.XXXXXX)
  strip -o "$staging/themap" target/cuda/release/themap
  xz -T0 -9 "$staging/themap"
  # Everything but the weights (and files no loader reads), for both engines.
  tar -C "$model" -cJf "$staging/model-config.tar.xz" \
    --exclude='*.safetensors' --exclude=README.md --exclude=notebook.ipynb --exclude=tokenizer.model --exclude=.verified .
  local python="$CACHE/venv-ref/bin/python"
  [ -x "$python" ] || python=python3
  "$python" scripts/peoples_daily.py "$staging/peoples-daily.jsonl" >&2
  xz -T0 -9 "$staging/peoples-daily.jsonl"
  git rev-parse HEAD > "$staging/commit"
  local bytes
  bytes=$(du -cb "$staging" | tail -1 | cut -f1)
  if [ "$bytes" -gt "$LIMIT_BYTES" ]; then
    echo "gpu-check: the bundle is $((bytes / 1048576)) MiB, over the $((LIMIT_BYTES / 1048576)) MiB that can travel" >&2
    exit 1
  fi
  rm -rf "$BUNDLE" && mv "$staging" "$BUNDLE"
  ls -l "$BUNDLE" >&2
  echo "gpu-check: bundle ready, $((bytes / 1048576)) MiB; on the GPU machine run: bash scripts/gpu-check.sh (carry $BUNDLE)" >&2
}

# The python3 that has PyTorch and sentence-transformers.
find_python() {
  for python in "${PYTHON:-}" python3 "$CACHE/venv-ref/bin/python"; do
    if [ -n "$python" ] && "$python" -c "import torch, sentence_transformers, safetensors" 2>/dev/null; then
      echo "$python"
      return
    fi
  done
  echo "gpu-check: no python3 with torch, sentence-transformers and safetensors (set PYTHON)" >&2
  exit 1
}

check() {
  if [ ! -f "$BUNDLE/themap.xz" ]; then
    if command -v cargo >/dev/null; then
      pack
    else
      echo "gpu-check: no bundle in $BUNDLE; make it with 'scripts/gpu-check.sh pack' and carry it" >&2
      exit 1
    fi
  fi
  local python work out
  python=$(find_python)
  work="${TMPDIR:-/tmp}/themap-gpu-check"
  out="${OUT:-target/gpu-check-out}"
  rm -rf "$work" && mkdir -p "$work/config" "$out"
  xz -dc "$BUNDLE/themap.xz" > "$work/themap" && chmod +x "$work/themap"
  tar -C "$work/config" -xJf "$BUNDLE/model-config.tar.xz"
  xz -dc "$BUNDLE/peoples-daily.jsonl.xz" > "$work/peoples-daily.jsonl"
  # The CUDA libraries: those of PyTorch's wheels (nvidia/cu13/lib), else a system CUDA.
  local libs
  libs=$("$python" -c '
import glob, os, nvidia
print(":".join(d for p in nvidia.__path__ for d in glob.glob(os.path.join(p, "*", "lib")) if os.path.isdir(d)))
' 2>/dev/null || true)
  for dir in /usr/local/cuda/lib64 /usr/local/nvidia/lib64; do
    [ -d "$dir" ] && libs="$libs:$dir"
  done
  export LD_LIBRARY_PATH="${libs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "gpu-check: bundle of $(cat "$BUNDLE/commit"), $("$work/themap" --version), python $("$python" -c 'import torch, sentence_transformers as s; print(torch.__version__, "sentence-transformers", s.__version__)')" >&2
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv >&2 || true
  PYTHONUNBUFFERED=1 "$python" scripts/gpu_check.py --themap "$work/themap" --config "$work/config" \
    --peoples-daily "$work/peoples-daily.jsonl" --work "$work" --out "$out" "$@" 2>&1 | tee "$out/log.txt"
}

case "${1:-}" in
  pack) pack ;;
  -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) check "$@" ;;
esac
