#!/usr/bin/env bash
# Themes at sizes nobody embeds on a laptop: speed and memory of `themap themes` on a synthetic
# index, and k-means at k = 50 against faiss on the same vectors, in one run; one table.
#
#   scripts/bench-themes.sh [PASSAGES] [DIMS]       (default 1000000 768)
#
# The index (cargo run --example synthetic-index: clustered unit vectors in 50 clusters, texts
# drawn from each cluster's vocabulary, 20 passages a document) is cached in
# $THEMAP_CACHE/synthetic-PASSAGES-DIMS. Its vectors stand in for the model's, so themes cluster
# them as they are (--vectors document); keywords are ranked with the model as usual. Rows:
#   - `themap themes` with k chosen, as a user runs it: wall time and peak memory (against the
#     vectors' own f32 size), and NMI against the true clusters;
#   - k-means at k = 50 with faiss's defaults on both sides (25 iterations on 256 points per
#     centroid, one run, then every row assigned): `themap eval-clusters` and faiss.Kmeans;
#   - themap's own defaults at k = 50 (10 restarts on 20,000 rows, 20 iterations on every row).
set -euo pipefail
cd "$(dirname "$0")/.."

PASSAGES=${1:-1000000}
DIMS=${2:-768}
K=50
CACHE="${THEMAP_CACHE:-$HOME/.cache/themap}"
INDEX="$CACHE/synthetic-$PASSAGES-$DIMS"
VENV="$CACHE/venv-eval"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import sklearn, faiss" 2>/dev/null || "$VENV/bin/pip" install --quiet --disable-pip-version-check \
  numpy==2.4.6 scikit-learn==1.9.1 faiss-cpu==1.15.1

THEMAP_MODEL=$(bash scripts/fetch-model.sh)
export THEMAP_MODEL
cargo build --release --quiet --bin themap --example synthetic-index
themap=target/release/themap
if [ ! -f "$INDEX/labels.txt" ]; then
  target/release/examples/synthetic-index --out "$INDEX" --passages "$PASSAGES" --dims "$DIMS" --clusters $K
fi
vectors=$(ls "$INDEX"/vectors-[0-9]*.npy)
labels_tsv="$INDEX/labels.tsv"
[ -f "$labels_tsv" ] || sed 's/$/\tsynthetic/' "$INDEX/labels.txt" > "$labels_tsv"

results="$INDEX/results.jsonl"
: > "$results"
/usr/bin/time -f "%e %M" -o "$INDEX/time.txt" $themap themes --index "$INDEX" --vectors document \
  --assignments "$INDEX/assignments.tsv" -q > "$INDEX/themes.txt"
read -r seconds kb < "$INDEX/time.txt"
"$VENV/bin/python" - "$INDEX" "$seconds" "$kb" "$vectors" >> "$results" <<'PY'
import json, os, sys
from sklearn import metrics
index, seconds, kb, vectors = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
pred = [int(l.split("\t")[1]) for l in open(f"{index}/assignments.tsv").read().splitlines()[1:]]
truth = [l.strip() for l in open(f"{index}/labels.txt")]
f32_mb = (os.path.getsize(vectors) - 128) / 2**20
print(json.dumps({"run": "themap themes, k chosen: the whole command (load, k, fit, keywords)", "k": len(set(pred)),
                  "nmi": metrics.normalized_mutual_info_score(truth, pred), "seconds": seconds,
                  "peak_mb": kb // 1024, "peak_vs_vectors": kb / 1024 / f32_mb}))
PY

eval_themap() { # label, extra eval-clusters flags...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$INDEX/time.txt" $themap eval-clusters "$labels_tsv" --vectors "$vectors" --k $K --json -q "$@" \
    > "$INDEX/eval.json"
  read -r seconds kb < "$INDEX/time.txt"
  "$VENV/bin/python" - "$INDEX/eval.json" "$label" "$kb" >> "$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["timings"]
print(json.dumps({"run": sys.argv[2], "k": r["k"], "nmi": r["nmi"], "seconds": t["fit"] + t["assign"],
                  "scoring": t["describe"], "peak_mb": int(sys.argv[3]) // 1024}))
PY
}
eval_themap "themap k-means, faiss's settings (1 run, 25 iterations, 12,800 rows, then all assigned)" \
  --runs 1 --iterations 25 --no-early-stop --train-sample $((256 * K)) --refine-iterations 0
eval_themap "themap k-means, its defaults (10 runs on 20,000 rows, 20 iterations on all)"
"$VENV/bin/python" scripts/cluster_peers.py "$vectors" "$INDEX/labels.txt" --k $K --peers faiss \
  --faiss-iterations 25 --faiss-max-points 256 \
  | "$VENV/bin/python" -c "import json,sys; [print(json.dumps({'run': 'faiss.Kmeans (1 run, 25 iterations, 256 per centroid) + assignment', **json.loads(l)})) for l in sys.stdin]" \
  >> "$results"

"$VENV/bin/python" - "$results" "$PASSAGES" "$DIMS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\nSynthetic {int(sys.argv[2]):,} × {sys.argv[3]} (50 clusters). k-means seconds: training and assigning every row,")
print("not loading the vectors; themap then scores every passage (similarity, confidence, outliers), shown apart.")
print("| run | k | NMI | seconds | scoring s | peak MiB |")
print("|---|---|---|---|---|---|")
for r in rows:
    peak = f"{r['peak_mb']:,}" if "peak_mb" in r else ""
    if "peak_vs_vectors" in r:
        peak += f" ({r['peak_vs_vectors']:.2f}× the vectors)"
    scoring = f"{r['scoring']:.1f}" if "scoring" in r else ""
    print(f"| {r['run']} | {r['k']} | {r['nmi']:.4f} | {r['seconds']:.1f} | {scoring} | {peak} |")
PY
