#!/usr/bin/env bash
# Everything the tests need, then the tests: Chromium and CJK fonts (Debian packages) for the
# report test, the model (fetched once, cached in ~/.cache/themap), then unit, integration and
# CLI tests in release mode (the model is far too slow unoptimised), then the benches compiled
# and run once as a smoke test, then the Ray driver's tests on a loopback cluster, then the same
# Rust tests with the `cuda` build (below). A screenshot of the report is left in
# target/test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

# The report test loads the page in headless Chromium; CJK fonts make Chinese render.
if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
  fi
fi

THEMAP_MODEL=$(bash scripts/fetch-model.sh)
export THEMAP_MODEL
# The golden vectors live beside the repository in ../shared; a copy elsewhere can be named.
export THEMAP_GOLDEN="${THEMAP_GOLDEN:-$(pwd)/../shared/golden/embeddinggemma-300m.json}"

cargo build --release --all-targets
# Time this CPU's kernels once (kept in $THEMAP_CACHE/cpu): tests that run side by side then
# read one choice instead of each timing its own on a busy machine.
probe=$(mktemp -d)
echo '{"id": "probe", "text": "probe"}' | target/release/themap -q embed - -o "$probe/v.npy"
rm -rf "$probe"
cargo test --release
cargo test --release --benches   # each bench once, as a smoke test

# The Ray driver (scripts/ray/embed.py) on a three-node cluster on loopback addresses, started and
# stopped by the tests (ray[default] 2.60.0 from PyPI, cached in $THEMAP_CACHE/venv-ray).
RAY_PYTHON=$(bash scripts/ray/venv.sh)
THEMAP_BIN="$(pwd)/target/release/themap" "$RAY_PYTHON" -m unittest discover -s tests/ray -v

# The `cuda` build, compiled on every run (THEMAP_TEST_CUDA=0 skips it): the CUDA 13.0 toolkit from
# PyPI (cached in $THEMAP_CACHE/venv-cuda), then the same suite again with that build, in its own
# target folder, on this machine without a GPU: it must start and behave exactly as the CPU build.
# The tests that need a GPU run last, with their output shown, so the log says why they skipped.
if [ "${THEMAP_TEST_CUDA:-1}" != 0 ]; then
  eval "$(bash scripts/cuda-env.sh)"
  echo "== cuda build: CUDA_HOME=$CUDA_HOME CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP, $(nvcc --version | tail -1)"
  cargo test --release --features cuda --target-dir target/cuda --no-run
  echo "== cuda build: the test suite without a GPU"
  cargo test --release --features cuda --target-dir target/cuda -- --skip on_a_gpu
  cargo test --release --features cuda --target-dir target/cuda -- on_a_gpu --nocapture
  echo "== cuda build: --device cuda on this machine says: $(target/cuda/release/themap embed - -o /tmp/none.npy --device cuda </dev/null 2>&1 || true)"
fi
