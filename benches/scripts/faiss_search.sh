#!/usr/bin/env bash
# Runs faiss_search.py: edgecl's search kernels (default) or whole indexes
# (`faiss_search.sh index ...`) beside FAISS. EDGECL_BENCH_VENV names the
# venv with faiss-cpu and numpy (created when missing); arguments pass
# through (see the script's --help, and `index --help`).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python3 benches/scripts/faiss_search.py "$@"
