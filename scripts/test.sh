#!/usr/bin/env bash
# Set up .venv with the test tools and run the whole test suite (CI runs exactly this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
. .venv/bin/activate
ruff check .
python -m pytest -q "$@"
