#!/usr/bin/env bash
# The suite needs PostgreSQL on 127.0.0.1:5432 (trust auth, database "test").
# Start the local cluster if it is down; fail loudly if it cannot be reached.
set -euo pipefail
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ready; then exit 0; fi
if [ -d /etc/postgresql ]; then
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
fi
for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
echo "PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started; the tests need it." >&2
exit 1
