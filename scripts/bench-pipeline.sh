#!/usr/bin/env bash
# The whole pipeline as a user runs it, on People's Daily (January 1998, 19,484 paragraphs as
# JSONL records) or a JSONL file of your own: `themap index`, then `themap themes`, then
# `themap report`, each timed (wall seconds and peak memory), and what themes and report add to
# indexing.
#
#   scripts/bench-pipeline.sh [--limit N] [--input FILE.jsonl] [--out DIR] [themap index options]
#
# On 2 CPU cores the index of all of People's Daily takes about 20 minutes (embedding is nearly
# all of it). Results go to DIR (default target/bench-pipeline/), the table to DIR/table.md.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=()
input=""
OUT=target/bench-pipeline
while [ $# -gt 0 ]; do
  case "$1" in
    --limit) limit=(--limit "$2"); shift 2 ;;
    --input) input=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) break ;;
  esac
done
rm -rf "$OUT"
mkdir -p "$OUT"
THEMAP_MODEL=$(bash scripts/fetch-model.sh)
export THEMAP_MODEL
cargo build --release --quiet --bin themap
if [ -n "$input" ]; then
  cp "$input" "$OUT/pd.jsonl"
else
  python3 scripts/peoples_daily.py "$OUT/pd.jsonl" "${limit[@]}"
fi

stage() { # name, command...
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
  read -r seconds kb < "$OUT/time.txt"
  echo "$name $seconds $kb" >> "$OUT/stages.txt"
  echo "$name: $seconds s" >&2
}
: > "$OUT/stages.txt"
stage index target/release/themap index "$OUT/pd.jsonl" --index "$OUT/index" "$@"
stage themes target/release/themap themes --index "$OUT/index"
stage report target/release/themap report --index "$OUT/index" --out "$OUT/report"

name=${input:-"People's Daily"}
python3 - "$OUT" "$name" <<'PY' | tee "$OUT/table.md"
import sys
out = sys.argv[1]
rows = [line.split() for line in open(f"{out}/stages.txt")]
passages = open(f"{out}/index.out").read().split(" passages")[0].split()[-1]
index = float(rows[0][1])
print(f"{sys.argv[2]}: {passages} passages. Ratios are to `themap index` in the same run.")
print("| stage | seconds | × index | peak MiB |")
print("|---|---|---|---|")
total = 0.0
for name, seconds, kb in rows:
    total += float(seconds)
    print(f"| themap {name} | {float(seconds):.1f} | {float(seconds) / index:.3f} | {int(kb) // 1024:,} |")
print(f"| index + themes + report | {total:.1f} | **{total / index:.3f}** | |")
PY
