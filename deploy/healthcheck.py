"""Container health check of one TTP service: ``python healthcheck.py <service>``.

Calls ``GET /v1/health`` of the service in this container over mutual TLS, as
the service itself (its own client certificate from the mounted secrets), the
same way the other services reach it: the host name is ``TTP_<SERVICE>_HOST``
and must be in the server certificate. Exit status 0 when it answers 200,
1 otherwise; one line on stderr says why, without any secret.
"""

from __future__ import annotations

import sys

import httpx

from ttp.service_client import callee_base_url
from ttp.settings import SERVICES, get_settings
from ttp.tls import client_context


def check(service: str, timeout: float = 3.0) -> int:
    """0 if ``service`` answers its health endpoint with 200 over mTLS, else 1."""
    if service not in SERVICES:
        print(f"unknown service {service!r}; one of {', '.join(SERVICES)}", file=sys.stderr)
        return 1
    settings = get_settings()
    try:
        ctx = client_context(settings.pki, f"service-{service}")
        response = httpx.get(f"{callee_base_url(settings, service)}/health", verify=ctx, timeout=timeout)
    except (OSError, httpx.HTTPError) as exc:
        print(f"{service}: unhealthy ({type(exc).__name__})", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"{service}: unhealthy (HTTP {response.status_code})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(check(sys.argv[1] if len(sys.argv) > 1 else ""))
