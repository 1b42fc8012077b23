#!/usr/bin/env bash
# Create (or reuse) .venv and install autoft with its dependencies.
#   bash scripts/setup.sh              runtime; Paddle's CPU wheel unless a Paddle is already installed
#   bash scripts/setup.sh --gpu        runtime with paddlepaddle-gpu (3.x from Paddle's index for CUDA 12.6;
#                                      PADDLE_CUDA=cu118|... another CUDA; PADDLE_GPU_WHEEL=pypi: PyPI's 2.6.2)
#   bash scripts/setup.sh --dev        plus the test tools (pytest, ruff, torch CPU, transformers, ray)
# --dev and --gpu combine. An installed paddlepaddle-gpu is never replaced by the CPU wheel (the two
# wheels ship the same `paddle` package); scripts/paddle_wheel.py decides, docs/gpu.md explains.
# VENV=DIR uses another venv; PADDLE=paddlepaddle==2.6.2 pins the CPU wheel (CI's oldest-Paddle leg).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
req=requirements.txt
wheel=()
for arg in "$@"; do
  case "$arg" in
    --dev) req=requirements-dev.txt ;;
    --gpu) wheel=(--gpu) ;;
    *) echo "usage: bash scripts/setup.sh [--dev] [--gpu]; found $arg" >&2; exit 2 ;;
  esac
done
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# pip's "Location ... is ignored" lines (a mirror without some projects) say nothing to the user.
quiet() { grep -v -e "is ignored" || true; }
key=$(cat "$req" requirements.txt pyproject.toml scripts/setup.sh scripts/paddle_wheel.py | sha1sum | cut -c1-12)
stamp="$VENV/.installed-$key-${wheel[*]:-cpu}-${PADDLE:-}-${PADDLE_CUDA:-}-${PADDLE_GPU_WHEEL:-}"
stamp=${stamp// /}
if [ ! -f "$stamp" ]; then
  rm -f "$VENV"/.installed-*  # this run may change the venv (e.g. --gpu removes the CPU wheel)
  python -m pip install -q --upgrade pip 2>&1 | quiet
  plan=$(python scripts/paddle_wheel.py "${wheel[@]}")
  while read -ra action; do
    case "${action[0]:-}" in
      uninstall) python -m pip uninstall -y -q "${action[@]:1}" 2>&1 | quiet ;;
      install) python -m pip install -q "${action[@]:1}" 2>&1 | quiet \
        || { echo "setup failed: could not install ${action[1]} (see pip's message above); with --gpu try" \
                  "PADDLE_CUDA=cu118 (another CUDA build) or PADDLE_GPU_WHEEL=pypi; docs/gpu.md" >&2; exit 1; } ;;
    esac
  done <<< "$plan"
  if [ "$req" = requirements-dev.txt ] && ! python -c "import importlib.metadata as m; m.version('torch')" 2>/dev/null; then
    # PyTorch's CPU build: the tests only cross-check numerics; PyPI's Linux torch pulls GBs of CUDA wheels.
    torch_pin=$(grep -oE '^torch==[^ ]+' requirements-dev.txt)
    if ! python -c "import socket; socket.create_connection(('download.pytorch.org', 443), timeout=5).close()" 2>/dev/null \
      || ! python -m pip install -q --retries 1 "$torch_pin" --index-url https://download.pytorch.org/whl/cpu 2>&1 | quiet; then
      echo "setup: PyTorch's CPU index is not reachable from here; $torch_pin comes from the default index" >&2
    fi
  fi
  python -m pip install -q -r "$req" 2>&1 | quiet
  # setuptools warns with a 10-line "Editable installation ... !!" box on every editable install; only
  # that warning is silenced (PYTHONWARNINGS reaches pip's build subprocess), errors still show.
  PYTHONWARNINGS="ignore:Editable installation" python -m pip install -q --no-deps -e . 2>&1 | quiet
  # Paddle imported the way autoft imports it (runtime: Python's zlib first; Paddle 2.6 exports its own).
  python -W ignore -c "from autoft import runtime; runtime.import_paddle(); import tokenizers, safetensors, cma, yaml, tqdm, snownlp" \
    || { echo "setup failed: dependencies did not import" >&2; exit 1; }
  touch "$stamp"
fi
