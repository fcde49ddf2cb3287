#!/usr/bin/env bash
# Runs train_peers.py: one contrastive training step of edgecl beside
# PyTorch. EDGECL_PEERS_VENV names the venv to use or create (default
# target/peers-venv); arguments pass through (see the script's --help).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${EDGECL_PEERS_VENV:-$root/target/peers-venv}"
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --index-url https://download.pytorch.org/whl/cpu torch \
        || "$venv/bin/pip" install -q torch
fi
cd "$root"
exec "$venv/bin/python" benches/scripts/train_peers.py "$@"
