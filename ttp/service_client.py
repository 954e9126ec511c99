"""mTLS HTTP clients for calls between TTP services.

Each service calls the others with its own client certificate, so the callee
identifies it by OIN like any other party (role ``service``). Every call carries
the current request's ``X-Request-ID``, so one delivery can be followed through
the logs of all services.
"""

from __future__ import annotations

import httpx

from ttp.logging_setup import request_id_var
from ttp.settings import Settings
from ttp.tls import client_context


def service_client(settings: Settings, caller: str, callee: str, *, timeout: float | None = None) -> httpx.AsyncClient:
    """An async client from service ``caller`` to service ``callee`` (base URL includes /v1)."""
    return httpx.AsyncClient(
        base_url=settings.base_url(callee),
        verify=client_context(settings.pki, f"service-{caller}"),
        timeout=timeout or settings.upstream_timeout,
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        event_hooks={"request": [propagate_request_id]},
    )


async def propagate_request_id(request: httpx.Request) -> None:
    """Carry the id of the request being handled on to the callee, unless the caller set one."""
    rid = request_id_var.get()
    if rid != "-" and "x-request-id" not in request.headers:
        request.headers["X-Request-ID"] = rid
