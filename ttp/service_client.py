"""mTLS HTTP clients for calls between TTP services.

Each service calls the others with its own client certificate, so the callee
identifies it by OIN like any other party (role ``service``).
"""

from __future__ import annotations

import httpx

from ttp.settings import Settings
from ttp.tls import client_context


def service_client(settings: Settings, caller: str, callee: str, *, timeout: float | None = None) -> httpx.AsyncClient:
    """An async client from service ``caller`` to service ``callee`` (base URL includes /v1)."""
    return httpx.AsyncClient(
        base_url=settings.base_url(callee),
        verify=client_context(settings.pki, f"service-{caller}"),
        timeout=timeout or settings.upstream_timeout,
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
    )
