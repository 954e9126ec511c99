#!/usr/bin/env bash
# Install the TTP into .venv and run the whole system on SQLite with a dev PKI, with the portal
# and its embedded OpenID provider.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
# The embedded OpenID provider of the portal (oidc-provider, run by node).
[ -d node_modules/oidc-provider ] || npm ci --omit=dev --no-audit --no-fund --loglevel=error
exec .venv/bin/ttp up "$@"
