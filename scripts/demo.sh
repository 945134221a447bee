#!/usr/bin/env bash
# The main job on the bundled corpus: fetch the model if missing, build, index data/, print the
# recurring themes and two sample lookups, and write the theme map report to themap-report/.
# Re-running is quick: the model is cached and unchanged passages reuse their vectors.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL_DIR=$(bash scripts/fetch-model.sh)
export THEMAP_MODEL="$MODEL_DIR"
cargo build --release --quiet
themap=target/release/themap

$themap index data/ --index themap-index
printf '\n$ themap themes\n'
$themap themes --index themap-index
for query in "美国关税与最高法院" "dollar hegemony"; do
  printf '\n$ themap search "%s" -k 5\n' "$query"
  $themap search "$query" -k 5 --index themap-index
done
printf '\n$ themap report --out themap-report\n'
$themap report --index themap-index --out themap-report
echo "Open themap-report/index.html in a browser."
