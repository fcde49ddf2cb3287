#!/usr/bin/env bash
# Regenerate runtime/tests/fixtures/cross_encoder/ with a Python that has
# torch and transformers: $EDGECL_TORCH_VENV, else a venv made under target/
# (CPU torch from PyPI, a large download).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${EDGECL_TORCH_VENV:-$root/target/torch-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch "transformers>=4.40"
fi
exec "$venv/bin/python" "$here/make_cross_encoder_fixture.py" \
    --out "$root/runtime/tests/fixtures/cross_encoder" "$@"
