"""Who is calling: the OIN in the verified TLS client certificate, and its role.

The certificate was verified by the TLS layer against the TTP CA; here we only
read its subject ``serialNumber`` (the OIN) and look the party up in the
registry. A header is trusted only in the explicit trusted-proxy mode.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import NameOID
from fastapi import Request

from ttp.audit_events import AuditEvent
from ttp.problems import Problem
from ttp.registry import Party, Registry
from ttp.request_scope import loggable_request, route_template

log = logging.getLogger("ttp.identity")

UNKNOWN_OIN = "0" * 20


@lru_cache(maxsize=4096)
def oin_from_pem(pem: str) -> str | None:
    """The OIN (subject serialNumber) of a PEM certificate, or None if absent or malformed."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        return None
    attrs = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if not attrs:
        return None
    value = str(attrs[0].value)
    return value if len(value) == 20 and value.isdigit() else None


def client_certificate_pem(request: Request) -> str | None:
    """The caller's certificate from the ASGI TLS extension (or the proxy header if trusted)."""
    tls = request.scope.get("extensions", {}).get("tls")
    if tls and tls.get("client_cert_chain"):
        return str(tls["client_cert_chain"][0])
    if getattr(request.app.state, "trusted_proxy_mode", False):
        header = request.headers.get("x-client-cert")
        if header:
            return unquote(header)
    return None


def refuse(request: Request, oin: str, detail: str) -> Problem:
    """Log a refusal to the audit log (without waiting) and build the 403 to raise.

    The entry names the route template and screened parameters
    (:mod:`ttp.request_scope`), never the raw path: the log is append-only,
    and a path is whatever the caller typed, of any length.
    """
    sink = getattr(request.app.state, "audit_sink", None)
    if sink is not None:
        sink.append_soon(
            [
                AuditEvent(
                    kind="refusal",
                    actorOin=oin,
                    subject={
                        "service": request.app.state.service_name,
                        "method": request.method,
                        **loggable_request(request),
                        "reason": detail,
                    },
                )
            ]
        )
    log.warning("refused", extra={"oin": oin, "route": route_template(request.scope), "reason": detail})
    return Problem(403, detail)


def current_party(request: Request) -> Party:
    """FastAPI dependency: the registered party behind the client certificate."""
    pem = client_certificate_pem(request)
    if pem is None:
        raise refuse(request, UNKNOWN_OIN, "No client certificate was presented.")
    oin = oin_from_pem(pem)
    if oin is None:
        raise refuse(request, UNKNOWN_OIN, "The client certificate carries no OIN in its subject serialNumber.")
    registry: Registry = request.app.state.registry
    party = registry.by_oin(oin)
    if party is None:
        raise refuse(request, oin, "This organisation is not registered with the TTP.")
    request.state.party = party
    return party


def require_roles(*roles: str) -> Callable[[Request], Coroutine[Any, Any, Party]]:
    """Dependency factory: the caller must hold one of ``roles``, else 403 (logged)."""

    async def dependency(request: Request) -> Party:
        party = current_party(request)
        if party.role not in roles:
            raise refuse(request, party.oin, f"The role '{party.role}' may not use this endpoint.")
        return party

    return dependency
