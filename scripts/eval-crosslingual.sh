#!/usr/bin/env bash
# Cross-script lookup in each number format: does bf16 find the same passages as f32?
#
#   scripts/eval-crosslingual.sh [N]      (default 2000)
#
# Passages: N paragraphs of People's Daily, January 1998 (simplified script; scripts/peoples_daily.py),
# a seeded sample of those with at least two sentences. Queries: for each passage, its longest
# sentence converted to traditional script (OpenCC's s2t tables, PyPI opencc-python-reimplemented),
# embedded with the query prompt. A query's own paragraph is its right answer among all N.
# For themap f32 and themap bf16 (where the CPU has AVX-512 BF16): recall@1 and recall@10, and
# how often bf16's ten nearest passages are f32's. Results in target/eval-crosslingual/.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
CACHE="${THEMAP_CACHE:-$HOME/.cache/themap}"
VENV="$CACHE/venv-eval"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import numpy, opencc" 2>/dev/null || "$VENV/bin/pip" install --quiet --disable-pip-version-check \
  numpy==2.4.6 opencc-python-reimplemented==0.1.7
MODEL=$(scripts/fetch-model.sh)
cargo build --release --quiet
THEMAP=target/release/themap
OUT=target/eval-crosslingual
mkdir -p "$OUT"

python3 scripts/peoples_daily.py "$OUT/peoples-daily.jsonl"
"$VENV/bin/python" - "$OUT" "$N" <<'PY'
import json, random, re, sys
from opencc import OpenCC
out, n = sys.argv[1], int(sys.argv[2])
rows = [json.loads(l) for l in open(f"{out}/peoples-daily.jsonl", encoding="utf-8")]
def sentences(text):
    return [s for s in re.split(r"(?<=[。！？])", text) if len(s) >= 12]
rows = [r for r in rows if len(sentences(r["text"])) >= 2 and len(r["text"]) <= 400]
rows = random.Random(20261130).sample(rows, n)
to_traditional = OpenCC("s2t")
with open(f"{out}/passages.jsonl", "w", encoding="utf-8") as passages, \
     open(f"{out}/queries.jsonl", "w", encoding="utf-8") as queries:
    for r in rows:
        passages.write(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n")
        query = to_traditional.convert(max(sentences(r["text"]), key=len))
        queries.write(json.dumps({"id": r["id"], "text": query}, ensure_ascii=False) + "\n")
PY

DTYPES="f32"
if grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null; then DTYPES="f32 bf16"; fi
for dtype in $DTYPES; do
  for kind in passages:document queries:query; do
    name=${kind%%:*} prompt=${kind##*:}
    echo "themap embed $name --dtype $dtype" >&2
    "$THEMAP" -q embed "$OUT/$name.jsonl" -o "$OUT/$name-$dtype.npy" --prompt "$prompt" --dtype "$dtype" \
      --model "$MODEL" --overwrite > /dev/null
  done
done

"$VENV/bin/python" - "$OUT" $DTYPES <<'PY' | tee "$OUT/table.md"
import sys
import numpy as np
out, dtypes = sys.argv[1], sys.argv[2:]
top = {}
print(f"| format | recall@1 | recall@10 | top-10 shared with f32 |")
print("|---|---|---|---|")
for dtype in dtypes:
    p, q = np.load(f"{out}/passages-{dtype}.npy"), np.load(f"{out}/queries-{dtype}.npy")
    scores = q @ p.T
    top[dtype] = np.argsort(-scores, axis=1)[:, :10]
    truth = np.arange(len(q))[:, None]
    r1, r10 = (top[dtype][:, :1] == truth).any(1).mean(), (top[dtype] == truth).any(1).mean()
    shared = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top[dtype], top["f32"])])
    print(f"| {dtype} | {r1:.4f} | {r10:.4f} | {shared:.4f} |")
print(f"\n{len(q)} traditional-script queries against {len(p)} simplified-script passages.")
PY
