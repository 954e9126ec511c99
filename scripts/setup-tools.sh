#!/usr/bin/env bash
# Tools the tests use beyond Python: poppler-utils (pdftotext/pdftoppm, reading the PDF reports),
# postgresql-client (pg_dump for the privacy grep), chromium (the portal's browser tests, driven by
# Playwright with this executable; never `playwright install`) and the npm packages (Spectral for the
# OpenAPI lint, oidc-provider for the embedded OpenID provider, axe-core for the accessibility tests).
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v pdftotext >/dev/null || need+=(poppler-utils)
command -v pg_dump >/dev/null || need+=(postgresql-client)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing system packages: ${need[*]} (install them with apt-get)" >&2; exit 1
  fi
fi
if [ -f package-lock.json ] && { [ ! -x node_modules/.bin/spectral ] || [ ! -d node_modules/oidc-provider ] \
    || [ ! -f node_modules/axe-core/axe.min.js ]; }; then
  npm ci --no-audit --no-fund --loglevel=error
fi
