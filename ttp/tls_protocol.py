"""Expose the verified client certificate to the app via the ASGI TLS extension.

uvicorn verifies client certificates but does not pass them on. This protocol
subclass reads the peer certificate once per connection (after the handshake)
and adds ``scope["extensions"]["tls"]`` to every request on that connection,
in the shape the ASGI TLS extension specifies.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, cast

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ttp.app_factory import API_VERSION
from ttp.problems import PROBLEM_JSON

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any] | None:
    """Build the ASGI TLS extension dict from an established TLS connection."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
        "cipher_name": (ssl_object.cipher() or (None,))[0],
    }


class TLSHttpToolsProtocol(HttpToolsProtocol):
    """httptools protocol that adds the TLS extension to each request scope."""

    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = tls_extension(transport.get_extra_info("ssl_object"))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": cast("dict[object, object]", self._tls)}

    def send_400_response(self, msg: str) -> None:
        """A request uvicorn cannot parse still gets problem+json with the API-Version header.

        The parser's message is not echoed: it may quote bytes of the request.
        """
        body = orjson.dumps({
            "type": "about:blank", "title": "Bad Request", "status": 400,
            "detail": "The request is not valid HTTP/1.1.",
        })
        head = [
            b"HTTP/1.1 400 Bad Request\r\n",
            b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"api-version: " + API_VERSION.encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
