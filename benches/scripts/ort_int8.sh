#!/usr/bin/env bash
# Runs ort_int8.py: edgecl's int8 GEMM beside ONNX Runtime's MatMulInteger.
# ORT_INT8_VENV names the venv to use or create (default ../venv-int8 next
# to the repository); arguments pass through (see the script's --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python3 benches/scripts/ort_int8.py "$@"
