#!/usr/bin/env bash
# Set up .venv with the test tools and run ruff and the whole test suite, then the same suite on the
# oldest supported Paddle, paddlepaddle 2.6.2 (the CPU twin of PyPI's paddlepaddle-gpu), in
# .venv-paddle262 (created once, then reused). CI runs exactly this (.ci/run).
#   bash scripts/test.sh [pytest args]           both Paddles
#   AUTOFT_TEST_PADDLES=newest bash scripts/test.sh   .venv only (a quicker local loop)
set -euo pipefail
cd "$(dirname "$0")/.."
legs=${AUTOFT_TEST_PADDLES:-newest,oldest}
bash scripts/setup.sh --dev
.venv/bin/ruff check .
if [[ ,$legs, == *,newest,* ]]; then
  echo "== tests on paddlepaddle $(.venv/bin/python -c "import importlib.metadata as m; print(m.version('paddlepaddle'))" 2>/dev/null || echo '(GPU wheel)') (.venv)"
  .venv/bin/python -m pytest -q "$@"
fi
if [[ ,$legs, == *,oldest,* ]]; then
  VENV=.venv-paddle262 PADDLE=paddlepaddle==2.6.2 bash scripts/setup.sh --dev
  echo "== tests on paddlepaddle 2.6.2 (.venv-paddle262)"
  .venv-paddle262/bin/python -m pytest -q -p no:cacheprovider "$@"
fi
