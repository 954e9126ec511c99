"""The migration step of a deployment: bring every storing service's database to the current schema.

Runs once before the services start (``migrate`` in docker-compose.yml), with
the same image and the same ``TTP_<SERVICE>_DATABASE_URL`` values as the
services, so a schema change is applied before any new code serves requests
and a failing migration stops the rollout instead of one service crash-looping.
The services run the same (idempotent) Alembic upgrade at start-up, so this
step is a no-op when nothing changed. It prints service names, never a URL
(a URL may name a password file or host an operator does not want in logs).
"""

from __future__ import annotations

import sys

from ttp.db import migrate
from ttp.settings import STORING_SERVICES, get_settings


def main(services: list[str]) -> int:
    """Upgrade each service's database to head; 1 on the first failure."""
    settings = get_settings()
    for service in services or list(STORING_SERVICES):
        if service not in STORING_SERVICES:
            print(f"{service} stores nothing; one of {', '.join(STORING_SERVICES)}", file=sys.stderr)
            return 1
        try:
            migrate(service, settings.database_url(service))
        except Exception as exc:  # report which service failed, then stop the rollout
            print(f"migration of {service} failed: {type(exc).__name__}", file=sys.stderr)
            return 1
        print(f"{service}: database at the current schema", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
