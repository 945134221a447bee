#!/usr/bin/env bash
# The search table on real vectors: the 100,000 THUCNews titles that `scripts/eval-thucnews.sh
# 100k` embeds with the document prompt, less 1,000 held out (seeded), which are embedded with the
# query prompt and searched for, as users' queries are. Writes ann-base.npy (99,000 × 768) and
# ann-queries.npy beside the titles in $THEMAP_CACHE/thucnews, then runs scripts/bench-ann.sh on
# them (results in target/ann/thucnews-99k/).
#   scripts/ann-real-vectors.sh [harness options, e.g. --efs 16,32,48,64,96,128]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${THEMAP_CACHE:-$HOME/.cache/themap}/thucnews"
PYTHON="${THEMAP_CACHE:-$HOME/.cache/themap}/venv-eval/bin/python"
if [ ! -f "$WORK/vec-100k-document.npy" ] || [ ! -x "$PYTHON" ]; then
  echo "ann-real-vectors: run scripts/eval-thucnews.sh 100k first (it fetches and embeds the titles)" >&2
  exit 1
fi
"$PYTHON" - "$WORK" <<'PY'
import json, random, sys
import numpy as np
work = sys.argv[1]
vectors = np.load(f"{work}/vec-100k-document.npy", mmap_mode="r")
titles = [l.rstrip("\n").split("\t", 1)[1].strip() for l in open(f"{work}/thucnews_train_10w.txt", encoding="utf-8") if "\t" in l]
assert len(titles) == len(vectors), (len(titles), len(vectors))
held = sorted(random.Random(20261201).sample(range(len(titles)), 1000))
keep = np.ones(len(titles), bool)
keep[held] = False
np.save(f"{work}/ann-base.npy", np.ascontiguousarray(vectors[keep]))
with open(f"{work}/ann-queries.jsonl", "w", encoding="utf-8") as f:
    for i in held:
        f.write(json.dumps({"id": f"q{i:06d}", "text": titles[i]}, ensure_ascii=False) + "\n")
PY
THEMAP_MODEL=$(bash scripts/fetch-model.sh)
export THEMAP_MODEL
cargo build --release --quiet
DTYPE=$(sed -n 's/.*"dtype": *"\([a-z0-9]*\)".*/\1/p' "$WORK/vec-100k-document.meta.json" | head -1)
target/release/themap embed "$WORK/ann-queries.jsonl" -o "$WORK/ann-queries.npy" --prompt query --dtype "$DTYPE" \
  --overwrite --restart -q
OUT=target/ann/thucnews-99k bash scripts/bench-ann.sh 0 768 --vectors "$WORK/ann-base.npy" \
  --query-vectors "$WORK/ann-queries.npy" "$@"
