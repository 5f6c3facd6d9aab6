#!/usr/bin/env bash
# One command to run Zero-Shot Studio: installs what is missing, then serves the app on http://localhost:${PORT:-8501}
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# Streamlit's upload cap follows the documented limit, so oversized files are refused before they are buffered.
exec .venv/bin/python -m streamlit run Home.py --server.port "${PORT:-8501}" \
    --server.maxUploadSize "${ZSS_MAX_UPLOAD_MB:-200}" "$@"
