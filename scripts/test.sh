#!/usr/bin/env bash
# Install the TTP with its test tools into .venv and run lint, types and the test suite
# (against SQLite and the PostgreSQL server on 127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
bash scripts/setup-tools.sh
bash scripts/ensure-postgres.sh
.venv/bin/ruff check ttp services tests
.venv/bin/mypy ttp services
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
