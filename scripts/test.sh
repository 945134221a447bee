#!/usr/bin/env bash
# Everything the tests need, then the tests: Chromium and CJK fonts (Debian packages) for the
# report test, the model (fetched once, cached in ~/.cache/themap), then unit, integration and
# CLI tests in release mode (the model is far too slow unoptimised), then the benches compiled
# and run once as a smoke test. A screenshot of the report is left in target/test-artifacts/.
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
cargo test --release
cargo test --release --benches   # each bench once, as a smoke test
