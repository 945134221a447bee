#!/usr/bin/env bash
# The HTML extraction table: themap beside trafilatura on labelled pages (Debian's packaged
# documentation in English and Chinese, and themap's Chinese news, blog and forum pages), then
# the time to read and extract 10,000 saved pages. Debian's packages come through apt-get
# download; trafilatura from PyPI into ~/.cache/themap/venv-html (pinned). Everything goes to
# ~/.cache/themap/html-set.
#   scripts/bench-html.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${THEMAP_CACHE:-$HOME/.cache/themap}"
WORK="$CACHE/html-set"
VENV="$CACHE/venv-html"
if ! "$VENV/bin/python" -c "import trafilatura" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q trafilatura==2.3.1 lxml==6.1.3 lxml_html_clean==0.4.6
fi
mkdir -p "$WORK/deb"
if [ ! -d "$WORK/deb/tree/usr/share/doc/debian-handbook" ]; then
  (cd "$WORK/deb" && apt-get download debian-handbook=11.20220922 debian-reference-en=2.100 >/dev/null)
  for deb in "$WORK"/deb/*.deb; do dpkg-deb -x "$deb" "$WORK/deb/tree"; done
fi
rm -rf "$WORK/pages"
"$VENV/bin/python" scripts/html-set/prepare.py "$WORK/deb/tree" "$WORK/pages"
cargo build --release --quiet --bin themap
"$VENV/bin/python" scripts/html-set/score.py "$WORK/pages" target/release/themap

# Throughput: 10,000 saved pages (the labelled pages, copied round), read and split.
rm -rf "$WORK/10k" && mkdir -p "$WORK/10k"
pages=("$WORK"/pages/*.html)
for i in $(seq 0 9999); do cp "${pages[$((i % ${#pages[@]}))]}" "$WORK/10k/page$i.html"; done
du -sh "$WORK/10k"
start=$(date +%s.%N)
tokens=$(target/release/themap passages "$WORK/10k" -q | awk '/ tokens$/ {n++; t += $(NF-1)} END {print n, t}')
end=$(date +%s.%N)
read -r passages total <<<"$tokens"
seconds=$(echo "$end - $start" | bc)
echo "10,000 pages: $passages passages, $total tokens, read, extracted and split in $seconds s"
echo "embedding them at themap's bf16 CPU rate on this host (1,206 tokens/s, benches/README.md) would take $((total / 1206)) s"
