"""The portal's calls to the services, on behalf of the signed-in person's party.

The portal holds no outcome data and no party's certificate: it calls each service over
mTLS with its own certificate (``service-portal``, role ``service``) and names the party it
acts for in the ``Ttp-On-Behalf-Of`` header (the party's OIN). The services accept that
header only from a service registered as allowed to relay, apply the party's own rules, and
log every read as the party's with ``relayed_by``; the portal never decides access itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from ttp.service_client import service_client
from ttp.settings import Settings

#: The header naming the party a relaying service acts for; its value is the party's OIN.
ON_BEHALF_OF = "Ttp-On-Behalf-Of"

#: The services the portal calls.
CALLEES: tuple[str, ...] = ("ingest", "aggregate", "report", "audit")

ClientFor = Callable[[str, str], httpx.AsyncClient]


class Relay:
    """Send a request to a service as the portal, on behalf of a party (by OIN)."""

    def __init__(self, client_for: ClientFor) -> None:
        self._client_for = client_for

    async def request(self, oin: str, callee: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """``method path`` (below the callee's ``/v1``) on behalf of the party ``oin``."""
        headers = {**kwargs.pop("headers", {}), ON_BEHALF_OF: oin}
        client = self._client_for(callee, oin)
        return await client.request(method, path.lstrip("/"), headers=headers, **kwargs)


class PooledClients:
    """One long-lived mTLS client per service, all with the portal's own certificate.

    The party is not part of the connection (only of the header), so every person's calls
    share the same pool.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._clients: dict[str, httpx.AsyncClient] = {}

    def __call__(self, callee: str, oin: str) -> httpx.AsyncClient:
        del oin  # the connection is the portal's; the party travels in ON_BEHALF_OF
        if callee not in CALLEES:
            raise ValueError(f"the portal does not call {callee!r}")
        client = self._clients.get(callee)
        if client is None:
            client = self._clients[callee] = service_client(self._settings, "portal", callee)
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
