#!/usr/bin/env bash
# One command to run the whole test suite: installs the app and test extras, then runs pytest.
# The browser test needs Debian's chromium at /usr/bin/chromium (apt-get install chromium); .ci/run installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh --test
if [ ! -x /usr/bin/chromium ]; then
  echo "note: /usr/bin/chromium is missing, so the browser test is skipped." >&2
  echo "      install it with: sudo apt-get install -y chromium fonts-noto-color-emoji" >&2
fi
exec .venv/bin/python -m pytest "$@"
