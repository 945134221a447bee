#!/usr/bin/env bash
# Everything the tests need, then the tests: the model (fetched once, cached in
# ~/.cache/themap), then unit, integration and CLI tests in release mode (the model is far too
# slow unoptimised), then the benches compiled and run once as a smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."

THEMAP_MODEL=$(bash scripts/fetch-model.sh)
export THEMAP_MODEL
# The golden vectors live beside the repository in ../shared; a copy elsewhere can be named.
export THEMAP_GOLDEN="${THEMAP_GOLDEN:-$(pwd)/../shared/golden/embeddinggemma-300m.json}"

cargo build --release --all-targets
cargo test --release
cargo test --release --benches   # each bench once, as a smoke test
