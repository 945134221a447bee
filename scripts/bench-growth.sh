#!/usr/bin/env bash
# Themes that last: the kept theme model on an archive that grows, against BERTopic's online
# (`partial_fit`) and `merge_models` routes on the same vectors and the same plan; JSON lines
# for the table in benches/README.md ("Themes that last").
#
#   scripts/bench-growth.sh [10k|100k|1m] [ARRIVING] [FADING]     (default 10k game education)
#
# THUCNews (10k, 100k): the clustering-prompt vectors of scripts/eval-thucnews.sh (run it first
# for that size; embedding is cached). 1m: the synthetic index of scripts/bench-themes.sh (run it
# first), classes 7 arriving and 3 fading by default, themap only (BERTopic's UMAP does not fit
# in the time). `themap eval-growth` fits themes on 70% of every class but the arriving one,
# then updates with 20% more passages (a third of them the arriving class, none of the fading
# one), refits from scratch, and embeds 256 of the new passages to time embedding in the same
# run; it writes the plan, which scripts/growth_peers.py replays for BERTopic.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${1:-10k}
CACHE="${THEMAP_CACHE:-$HOME/.cache/themap}"
case "$SIZE" in
  10k | 100k)
    ARRIVE=${2:-game} FADE=${3:-education}
    WORK="$CACHE/thucnews"
    VECTORS="$WORK/vec-$SIZE-clustering.npy"
    TSV="$WORK/thucnews-$SIZE.growth.tsv"
    [ -f "$VECTORS" ] || { echo "no $VECTORS: run scripts/eval-thucnews.sh $SIZE first" >&2; exit 1; }
    [ -f "$TSV" ] || paste "$WORK/thucnews-$SIZE.labels.txt" "$WORK/thucnews-$SIZE.texts.txt" > "$TSV"
    EMBED=(--embed-sample 256)
    ;;
  1m)
    ARRIVE=${2:-7} FADE=${3:-3}
    WORK="$CACHE/synthetic-1000000-768"
    VECTORS=$(ls "$WORK"/vectors-[0-9]*.npy 2>/dev/null || true)
    [ -n "$VECTORS" ] || { echo "no synthetic index in $WORK: run scripts/bench-themes.sh first" >&2; exit 1; }
    TSV="$WORK/growth.tsv"
    [ -f "$TSV" ] || awk '{print $1"\tp"NR}' "$WORK/labels.txt" > "$TSV"
    EMBED=()
    ;;
  *) echo "usage: $0 [10k|100k|1m] [ARRIVING] [FADING]" >&2; exit 2 ;;
esac

VENV="$CACHE/venv-eval"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import bertopic, safetensors" 2>/dev/null || {
  "$VENV/bin/pip" install --quiet --disable-pip-version-check numpy==2.4.6 scikit-learn==1.9.1 umap-learn==0.5.12 \
    hdbscan==0.8.44 pandas==3.1.1 safetensors pyyaml tqdm plotly jieba
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps bertopic==0.17.4
}

THEMAP_MODEL=$(bash scripts/fetch-model.sh)
export THEMAP_MODEL
cargo build --release --quiet --bin themap
OUT="$WORK/growth-$SIZE-$ARRIVE"
mkdir -p "$OUT"
lscpu | grep -E "^(Model name|CPU family|Model):" > "$OUT/cpu.txt"
/usr/bin/time -f "%e s, %M KiB peak" -o "$OUT/themap.time" target/release/themap -q eval-growth "$TSV" --vectors "$VECTORS" \
  --arrive "$ARRIVE" --fade "$FADE" "${EMBED[@]}" --save-plan "$OUT/plan.txt" --json > "$OUT/themap.json"
cat "$OUT/themap.json"
if [ "$SIZE" != 1m ]; then
  "$VENV/bin/python" scripts/growth_peers.py "$VECTORS" "$TSV" "$OUT/plan.txt" --arrive "$ARRIVE" | tee "$OUT/peers.jsonl"
fi
