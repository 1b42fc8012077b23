#!/usr/bin/env bash
# Create (or reuse) .venv and install autoft with its dependencies.
#   bash scripts/setup.sh          runtime only
#   bash scripts/setup.sh --dev    plus the test tools (pytest, ruff, torch CPU, transformers)
# A GPU user replaces paddlepaddle by paddlepaddle-gpu inside .venv afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
req=requirements.txt
[ "${1:-}" = "--dev" ] && req=requirements-dev.txt
stamp=".venv/.installed-$(cat "$req" requirements.txt pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
  python -m pip install -q -r "$req" 2>&1 | grep -v "is ignored" || true
  python -m pip install -q --no-deps -e . 2>&1 | grep -v "is ignored" || true
  python -W ignore -c "import paddle, tokenizers, safetensors, cma, yaml, tqdm, snownlp" \
    || { echo "setup failed: dependencies did not import" >&2; exit 1; }
  touch "$stamp"
fi
