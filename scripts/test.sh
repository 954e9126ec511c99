#!/usr/bin/env bash
# Install the TTP with its test tools into .venv and run lint, types and the test suite
# (against SQLite and the PostgreSQL server on 127.0.0.1:5432).
#
# The suite runs on TTP_TEST_WORKERS processes (default 2, pytest-xdist): most tests wait on
# their own service processes, PostgreSQL or TLS handshakes, so one pytest keeps about one core
# busy. Tests marked ``serial`` (they restart the shared PostgreSQL server) run afterwards, alone.
# Arguments go to both pytest runs (a path, -k, -x ...).
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
# pytest exits 5 when a selection holds no test (e.g. a path without serial tests): not a failure.
run() { .venv/bin/pytest -q -p no:cacheprovider "$@" || { rc=$?; [ "$rc" -eq 5 ] || exit "$rc"; }; }
run -n "${TTP_TEST_WORKERS:-2}" -m "not serial" "$@"
run -m serial "$@"
