#!/usr/bin/env bash
# Creates .venv with Python 3.12 and installs the pinned dependencies from pyproject.toml.
# Usage: bash scripts/setup.sh            (what the backtest needs)
#        bash scripts/setup.sh test       (plus the test tools)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
    python3 -m pip install --quiet uv
fi
if [ ! -x .venv/bin/python ]; then
    uv venv --quiet --python 3.12 .venv
fi
extras=()
for extra in "$@"; do
    extras+=(--extra "$extra")
done
# Bytecode is compiled at install time: some environments set PYTHONDONTWRITEBYTECODE, and
# every fresh process (tests, benchmark runs, sweep workers) would otherwise recompile.
uv pip install --quiet --compile-bytecode --python .venv/bin/python -r pyproject.toml "${extras[@]}"
