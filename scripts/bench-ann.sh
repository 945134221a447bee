#!/usr/bin/env bash
# The vector-search table: themap's harness, then hnswlib, faiss (HNSWFlat, and HNSWSQ 8-bit with an
# exact re-rank: IndexRefineFlat, k_factor 2) and usearch on the same vectors.
#   scripts/bench-ann.sh N DIMS [harness options, e.g. --precision i8,f32 --hnsw-rs-search]
#   scripts/bench-ann.sh N DIMS --vectors BASE.npy --query-vectors QUERIES.npy   (real vectors)
# Peers come from PyPI into ~/.cache/themap/venv-ann (pinned versions). Data and results go to
# target/ann/N-DIMS/ (OUT overrides); all.json there holds every row. ENGINES picks the peers
# (default hnswlib,faiss,faiss-sq,usearch).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:?usage: bench-ann.sh N DIMS [options]}
DIMS=${2:?usage: bench-ann.sh N DIMS [options]}
shift 2
VENV="${THEMAP_CACHE:-$HOME/.cache/themap}/venv-ann"
if ! "$VENV/bin/python" -c "import hnswlib, faiss, usearch" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q numpy==2.4.6 hnswlib==0.8.0 faiss-cpu==1.15.1 usearch==2.26.6
fi
OUT=${OUT:-target/ann/$N-$DIMS}
mkdir -p "$OUT"
cargo bench --bench ann -- --n "$N" --dims "$DIMS" --out "$OUT" "$@"
"$VENV/bin/python" scripts/ann_peers.py "$OUT" --engines "${ENGINES:-hnswlib,faiss,faiss-sq,usearch}"
