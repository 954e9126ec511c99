"""Container health check of the portal: ``python -m services.portal.healthcheck``.

``GET /v1/health`` over HTTPS as a browser would (the portal asks no client certificate),
verifying the portal's certificate against the TTP CA. Exit 0 on 200, 1 otherwise.
"""

from __future__ import annotations

import sys

import httpx

from ttp.settings import get_settings
from ttp.tls import server_auth_context


def check(timeout: float = 3.0) -> int:
    settings = get_settings()
    host = "localhost" if settings.host in ("0.0.0.0", "::") else settings.host
    try:
        response = httpx.get(f"https://{host}:{settings.portal_port}/v1/health",
                             verify=server_auth_context(settings.pki / "ca.pem"), timeout=timeout)
    except (OSError, httpx.HTTPError) as exc:
        print(f"portal: unhealthy ({type(exc).__name__})", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"portal: unhealthy (HTTP {response.status_code})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(check())
