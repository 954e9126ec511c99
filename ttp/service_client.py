"""mTLS HTTP clients for calls between TTP services.

Each service calls the others with its own client certificate, so the callee
identifies it by OIN like any other party (role ``service``). Every call carries
the current request's ``X-Request-ID``, so one delivery can be followed through
the logs of all services.

On one machine every service listens on ``TTP_HOST`` at its own port. In a
container deployment each service has a host name of its own and listens on
all interfaces; ``TTP_<SERVICE>_HOST`` (e.g. ``TTP_PSEUDONYMISE_HOST=pseudonymise``)
then names the host to call it at, and must match a name in its certificate.
"""

from __future__ import annotations

import os

import httpx

from ttp.logging_setup import request_id_var
from ttp.settings import Settings
from ttp.tls import client_context


def service_client(settings: Settings, caller: str, callee: str, *, timeout: float | None = None) -> httpx.AsyncClient:
    """An async client from service ``caller`` to service ``callee`` (base URL includes /v1)."""
    return httpx.AsyncClient(
        base_url=callee_base_url(settings, callee),
        verify=client_context(settings.pki, f"service-{caller}"),
        timeout=timeout or settings.upstream_timeout,
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        event_hooks={"request": [propagate_request_id]},
    )


def callee_base_url(settings: Settings, callee: str) -> str:
    """The https base URL (with /v1) of ``callee``: ``TTP_<CALLEE>_HOST`` if set, else ``settings.host``."""
    host = os.environ.get(f"TTP_{callee.upper()}_HOST", "").strip()
    if not host:
        return settings.base_url(callee)
    return f"https://{host}:{settings.port(callee)}/v1"


async def propagate_request_id(request: httpx.Request) -> None:
    """Carry the id of the request being handled on to the callee, unless the caller set one."""
    rid = request_id_var.get()
    if rid != "-" and "x-request-id" not in request.headers:
        request.headers["X-Request-ID"] = rid
