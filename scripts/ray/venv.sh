#!/usr/bin/env bash
# Ray for scripts/ray/embed.py and its tests: installs the pinned ray[default] into
# $THEMAP_CACHE/venv-ray once (about 400 MB; the wheels come from PyPI), then prints its python.
#
#   PY=$(scripts/ray/venv.sh) && $PY scripts/ray/embed.py ...
set -euo pipefail
CACHE="${THEMAP_CACHE:-$HOME/.cache/themap}"
VENV="$CACHE/venv-ray"
if ! "$VENV/bin/python" -c 'import ray, sys; sys.exit(ray.__version__ != "2.60.0")' 2>/dev/null; then
  echo "ray-venv: installing ray[default]==2.60.0 into $VENV" >&2
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'ray[default]==2.60.0' >&2
fi
echo "$VENV/bin/python"
