"""Call an app in-process as a given party, without a socket.

The services identify callers by the ASGI TLS extension; in-process tests put
the party's real dev certificate there, exactly as the TLS protocol would.
Tests that must prove the TLS layer itself use real processes instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from ttp.pki import cert_paths


class AsParty:
    """ASGI wrapper presenting ``pem`` as the verified client certificate."""

    def __init__(self, app: ASGIApp, pem: str | None) -> None:
        self.app = app
        self.pem = pem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.pem is not None:
            scope = {**scope, "extensions": {"tls": {"client_cert_chain": [self.pem]}}}
        await self.app(scope, receive, send)


def party_client(app: ASGIApp, pki_dir: Path, slug: str | None, **kwargs: Any) -> TestClient:
    """A TestClient calling ``app`` as the party ``slug`` (None: no certificate).

    Does not run the app's lifespan: enter one ``TestClient(app)`` context for that.
    """
    pem = cert_paths(pki_dir, slug)[0].read_text() if slug else None
    return TestClient(AsParty(app, pem), base_url="https://testserver", **kwargs)
