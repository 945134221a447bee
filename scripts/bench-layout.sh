#!/usr/bin/env bash
# The map layout against its peers on the same vectors, in one run: themap's UMAP (the layout
# harness, benches/layout.rs), then PCA, umap-learn and openTSNE (scripts/layout_peers.py, in the
# evaluation venv), scored alike. Default input: the THUCNews vectors of scripts/eval-thucnews.sh.
#
#   scripts/bench-layout.sh [10k|100k] [--skip tsne] [--skip umap]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-10k}
shift || true
CACHE="${THEMAP_CACHE:-$HOME/.cache/themap}"
WORK="$CACHE/thucnews"
VENV="$CACHE/venv-eval"
VECTORS="$WORK/vec-$SIZE-clustering.npy"
LABELS="$WORK/thucnews-$SIZE.labels.txt"
[ -f "$VECTORS" ] || { echo "no $VECTORS: run scripts/eval-thucnews.sh $SIZE first" >&2; exit 2; }
"$VENV/bin/python" -c "import umap, openTSNE, sklearn" 2>/dev/null || "$VENV/bin/pip" install --quiet umap-learn openTSNE scikit-learn
OUT="target/bench-layout"
mkdir -p "$OUT"
SECONDS_LINE=$(cargo bench --quiet --bench layout -- --vectors "$VECTORS" --out "$OUT/themap-$SIZE.npy" | tail -1)
echo "$SECONDS_LINE"
TAKEN=$(echo "$SECONDS_LINE" | python3 -c 'import json, sys; print(json.load(sys.stdin)["seconds"])')
"$VENV/bin/python" scripts/layout_peers.py "$VECTORS" "$LABELS" "$OUT/themap-$SIZE.npy" "$TAKEN" "$@" 2>/dev/null
