#!/usr/bin/env bash
# Make (or reuse) a venv with CPU PyTorch and sentence-transformers, fetch
# all-MiniLM-L6-v2 (fetch_minilm.sh) and regenerate
# runtime/tests/fixtures/golden/. EDGECL_GOLDEN_VENV names the venv (default
# target/golden-venv); EDGECL_MINILM_DIR an already unpacked model folder.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${EDGECL_GOLDEN_VENV:-$root/target/golden-venv}"
if ! "$venv/bin/python" -c "import sentence_transformers" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --index-url https://download.pytorch.org/whl/cpu torch \
        || "$venv/bin/pip" install -q torch
    "$venv/bin/pip" install -q sentence-transformers
fi
model="${EDGECL_MINILM_DIR:-$("$here/fetch_minilm.sh")}"
exec "$venv/bin/python" "$here/make_golden.py" --model "$model" \
    --out "$root/runtime/tests/fixtures/golden" "$@"
