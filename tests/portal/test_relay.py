"""What the portal puts on the wire when it calls a service for a signed-in person's party."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from services.portal.relay import ON_BEHALF_OF, PooledClients, Relay
from tests.helpers.cluster import free_port
from ttp.identity import oin_from_pem
from ttp.pki import PORTAL_SLUG
from ttp.registry import Registry
from ttp.settings import Settings
from ttp.tls import server_context

T = TypeVar("T")


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the request's path and headers: what a service would see."""
    request = Request(scope, receive)
    await JSONResponse({"path": request.url.path, "headers": dict(request.headers)})(scope, receive, send)


def in_own_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh event loop in a thread: the browser tests' Playwright owns this thread's loop."""
    result: list[T] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(coro)))
    thread.start()
    thread.join(timeout=60)
    return result[0]


def test_every_call_names_the_party_by_oin_in_the_on_behalf_of_header() -> None:
    in_own_loop(_names_the_party())


async def _names_the_party() -> None:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=echo), base_url="https://aggregate/v1")
    relay = Relay(lambda callee, oin: client)
    seen = (await relay.request("00000099200000000001", "aggregate", "GET", "/gemeenten/GM0363/outcomes",
                                headers={ON_BEHALF_OF: "00000099200000000002"})).json()
    assert seen["path"] == "/v1/gemeenten/GM0363/outcomes"
    # The signed-in party wins, even over a header a page would pass along.
    assert seen["headers"][ON_BEHALF_OF.lower()] == "00000099200000000001"
    await client.aclose()


def test_the_pooled_clients_present_the_portals_own_certificate(dev_pki: Path, tmp_path: Path) -> None:
    in_own_loop(_presents_the_portal_certificate(dev_pki, tmp_path))


async def _presents_the_portal_certificate(dev_pki: Path, tmp_path: Path) -> None:
    """A real TLS handshake with a service's own server context: the client certificate is the portal's."""
    port = free_port()
    settings = Settings(home=tmp_path, pki_dir=dev_pki, ingest_port=port)
    seen: dict[str, str | None] = {}
    listener = socket.create_server(("127.0.0.1", port))

    def accept_one() -> None:
        conn, _ = listener.accept()
        with server_context(dev_pki, "ingest").wrap_socket(conn, server_side=True) as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            seen["oin"] = oin_from_pem(x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode())

    thread = threading.Thread(target=accept_one)
    thread.start()
    pooled = PooledClients(settings)
    with contextlib.suppress(httpx.HTTPError):
        await pooled("ingest", "00000099100000000001").get("health")
    thread.join(timeout=10)
    listener.close()
    await pooled.aclose()
    portal = next(p for p in Registry.from_yaml(dev_pki / "parties.yaml").all() if p.slug == PORTAL_SLUG)
    assert seen["oin"] == portal.oin


def test_one_pool_serves_every_party_and_only_the_services_the_portal_calls(dev_pki: Path, tmp_path: Path) -> None:
    pooled = PooledClients(Settings(home=tmp_path, pki_dir=dev_pki))
    assert pooled("ingest", "00000099100000000001") is pooled("ingest", "00000099200000000001")
    with pytest.raises(ValueError, match="does not call"):
        pooled("pseudonymise", "00000099100000000001")
