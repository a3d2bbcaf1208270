#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder image: install bptt-check from the wheel
# in this zip, and its dependencies (sympy, numpy, jax, lark, rich, hypothesis) from PyPI.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${BPTT_PYTHON:-python3}"
"$PYTHON" -m pip install --upgrade pip >/dev/null 2>&1 || true
"$PYTHON" -m pip install ./bptt_check-*.whl
"$PYTHON" -c "import bptt_check; print('bptt-check', bptt_check.__version__, 'installed')"
