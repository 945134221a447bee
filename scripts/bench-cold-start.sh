#!/usr/bin/env bash
# Cold start of `themap search` and `themap similar` on a large index (default 1,000,000
# passages × 768 dims, synthetic: `cargo run --example synthetic-index -- --graph`, with its
# search graph and row table). Kept in $THEMAP_CACHE/cold-start-N.
#   scripts/bench-cold-start.sh [PASSAGES]
# Prints: the in-process table (benches/cold_start.rs: open in place and first lookups, beside
# reading the index whole), then wall time and peak memory of the commands, warm (page cache
# holding the files) and, where this user may drop the page cache, cold.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
DIR="${THEMAP_CACHE:-$HOME/.cache/themap}/cold-start-$N"
THEMAP_MODEL=$(bash scripts/fetch-model.sh)
export THEMAP_MODEL
cargo build --release --quiet --bin themap --example synthetic-index
if ! grep -qs '"rows"' "$DIR/manifest.json" || ! grep -qs '"graph"' "$DIR/manifest.json"; then
  rm -rf "$DIR"
  target/release/examples/synthetic-index --out "$DIR" --passages "$N" --dims 768 --graph
fi
du -sh "$DIR"
ID="doc0000042#3"
QUERY="美国关税政策与最高法院"
cargo bench --bench cold_start -- "$DIR" "$ID"

timed() { # label, command...: wall seconds and peak RSS of one run
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o /tmp/cold-start-time "$@" >/dev/null 2>/tmp/cold-start-log
  read -r wall kib </tmp/cold-start-time
  printf '| %s | %.2f | %d |' "$label" "$wall" $((kib / 1024))
  grep -o 'opened the index in [0-9.]* s, loaded the model in [0-9.]* s\|embedded [0-9]* queries in [0-9.]* s, searched in [0-9.]* s' /tmp/cold-start-log | tr '\n' ' ' || true
  echo
}
drop_caches() { sync; echo 1 >/proc/sys/vm/drop_caches 2>/dev/null; }

echo
echo "| command | wall s | peak RSS MiB | its own log |"
echo "|---|---|---|---|"
for run in 1 2 3; do
  timed "similar ID (warm, run $run)" target/release/themap similar "$ID" --index "$DIR"
done
for run in 1 2 3; do
  timed "search QUERY (warm, run $run)" target/release/themap -v search "$QUERY" --index "$DIR"
done
if drop_caches; then
  timed "similar ID (cold: page cache dropped)" target/release/themap similar "$ID" --index "$DIR"
  drop_caches
  timed "search QUERY (cold: page cache dropped)" target/release/themap -v search "$QUERY" --index "$DIR"
else
  echo "(cannot drop the page cache as this user: no cold figures)"
fi
printf '%s\n' "$QUERY" "dollar hegemony" "人工智能泡沫" "关税" "美元霸权" >/tmp/cold-start-queries
timed "search --queries (5 queries, warm)" target/release/themap -v search --queries /tmp/cold-start-queries --index "$DIR"
