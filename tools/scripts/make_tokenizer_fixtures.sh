#!/usr/bin/env bash
# Make (or reuse) a Python venv with the Hugging Face `tokenizers` library and
# regenerate runtime/tests/fixtures/tokenizer/. Extra arguments go to the
# Python script, e.g. --extra-out /tmp/tokenizer-extra.jsonl.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${EDGECL_TOKENIZER_VENV:-$root/target/tokenizer-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "tokenizers>=0.19,<0.24"
fi
exec "$venv/bin/python" "$here/make_tokenizer_fixtures.py" \
    --out "$root/runtime/tests/fixtures/tokenizer" "$@"
