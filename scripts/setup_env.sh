#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the pinned requirements; skipped when nothing changed since last time.
# Usage: scripts/setup_env.sh [--test]   (--test adds pytest and Playwright for Python; no browser download)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
files="requirements.txt requirements-nodeps.txt"
[ "${1:-}" = "--test" ] && files="$files requirements-test.txt"
stamp=".venv/.zss-installed-$(cat $files | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "Installing Python packages into .venv (first run takes a few minutes)…"
  .venv/bin/python -m pip install --quiet -r requirements.txt
  .venv/bin/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
  [ "${1:-}" = "--test" ] && .venv/bin/python -m pip install --quiet -r requirements-test.txt
  touch "$stamp"
fi
