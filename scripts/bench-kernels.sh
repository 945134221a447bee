#!/usr/bin/env bash
# The matrix-product kernels on the model's linear shapes: criterion's `linear` group of
# benches/embed.rs (candle's f32 gemm, themap's f32 and bf16 kernels) and OpenBLAS's f32 sgemm
# through numpy, shape after shape, in ROUNDS rounds (default 2); each engine's best round goes
# into one table of GFLOP/s with the CPU named at its top (target/bench-kernels/table.md).
#   scripts/bench-kernels.sh          # about 5 minutes a round
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${THEMAP_CACHE:-$HOME/.cache/themap}"
VENV="$CACHE/venv-blas"
if ! "$VENV/bin/python" -c "import numpy, threadpoolctl" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q numpy==2.4.6 threadpoolctl==3.6.0
fi
OUT=target/bench-kernels
rm -rf "$OUT" && mkdir -p "$OUT"
CPU=$(scripts/cpu-line.sh)
echo "CPU: $CPU" >&2
cargo bench --bench embed --no-run >&2
for round in $(seq 1 "${ROUNDS:-2}"); do
  for shape in 4096x768x1152 4096x768x768 4096x768x256 4096x1152x768 4096x768x4608; do
    echo "round $round: $shape" >&2
    cargo bench --bench embed -- "^linear.* $shape\$" --warm-up-time 1 --measurement-time 5 >/dev/null 2>&1
    python3 scripts/kernels_table.py collect target/criterion | grep "\"$shape\"" >> "$OUT/round-$round.jsonl"
    "$VENV/bin/python" scripts/blas_linear.py --json --threads "$(nproc)" --shape "$shape" >> "$OUT/round-$round.jsonl" 2>/dev/null
  done
done
CPU="$CPU" python3 scripts/kernels_table.py table "$OUT"/round-*.jsonl | tee "$OUT/table.md"
