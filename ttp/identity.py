"""Who is calling: the OIN in the verified TLS client certificate, and its role.

The certificate was verified by the TLS layer against the TTP CA; here we only
read its subject ``serialNumber`` (the OIN) and look the party up in the
registry. A header is trusted only in the explicit trusted-proxy mode.

Access is one typed dependency, ``Require`` (made by ``require_roles``,
``require_service`` and ``require_registered``): a route names the roles and
the TTP services it admits, and every other caller gets 403 problem+json,
logged as a refusal, before the route reads its body. A TTP service is
admitted by name, never by the bare role ``service`` (least privilege,
``ttp.privileges``).

Relaying: the portal calls a service with its own certificate plus
``Ttp-On-Behalf-Of: <OIN>`` naming the signed-in party's organisation. The
header is honoured only from a service allowed to relay for that party's role
(``ttp.privileges.RELAYS``); from anyone else it is refused and logged. A
relayed request is then that party's in every respect, and the party carries
``relayed_by`` (the portal's OIN), which every audit entry of the request
records as ``relayedBy``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import NameOID
from fastapi import Request

from ttp.audit_events import AuditEvent
from ttp.privileges import RELAYS, may_relay
from ttp.problems import InvalidParam, Problem
from ttp.registry import Party, Registry, Role, ServiceName
from ttp.request_scope import loggable_request, route_template

log = logging.getLogger("ttp.identity")

UNKNOWN_OIN = "0" * 20
#: The header a relaying service (the portal) names the party it acts for with.
ON_BEHALF_OF = "Ttp-On-Behalf-Of"
_OIN = re.compile(r"^[0-9]{20}$")


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


def refuse(request: Request, oin: str, detail: str, *, answer: Problem | None = None) -> Problem:
    """Log a refusal to the audit log (without waiting) and build the 403 to raise.

    The entry names the route template and screened parameters
    (:mod:`ttp.request_scope`), never the raw path: the log is append-only,
    and a path is whatever the caller typed, of any length.

    ``answer`` replaces the 403 where the refusal must not reveal that the
    resource exists (another provider's receipt answers as a missing one); the
    log still records ``detail``.
    """
    sink = getattr(request.app.state, "audit_sink", None)
    if sink is not None:
        sink.append_soon(
            [
                AuditEvent(
                    kind="refusal",
                    actorOin=oin,
                    relayedBy=getattr(request.state, "relayed_by", None),
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
    return answer or Problem(403, detail)


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


def acting_party(request: Request) -> Party:
    """The party this request acts for: the caller, or the party a relaying service names.

    ``Ttp-On-Behalf-Of`` from a caller that may not relay, or naming a party it
    may not act for, is refused (403, logged under the caller's OIN): a header
    never widens what a certificate may do.
    """
    caller = current_party(request)
    claimed = request.headers.get(ON_BEHALF_OF)
    if claimed is None:
        return caller
    if caller.role != "service" or caller.service not in RELAYS:
        raise refuse(request, caller.oin, f"Only a relaying TTP service may send {ON_BEHALF_OF}.")
    if not _OIN.match(claimed):
        raise Problem(400, f"The {ON_BEHALF_OF} header is not valid.", invalid_params=[InvalidParam(
            name=ON_BEHALF_OF, code="invalid-oin", reason="An OIN of 20 digits.")])
    registry: Registry = request.app.state.registry
    party = registry.by_oin(claimed)
    if party is None:
        raise refuse(request, caller.oin, f"The party named in {ON_BEHALF_OF} is not registered with the TTP.")
    if not may_relay(caller, party):
        raise refuse(request, caller.oin, f"The {caller.service} service may not act for a party of role "
                                          f"'{party.role}'.")
    relayed = dataclasses.replace(party, relayed_by=caller.oin)
    request.state.party = relayed
    request.state.relayed_by = caller.oin
    return relayed


class Require:
    """FastAPI dependency: the acting party must be one this route admits, else 403 (logged).

    Declared once per route (``Depends(require_service("ingest"))``); it runs
    before anything reads the request body, so a wrong caller learns nothing
    from validation errors. ``roles`` are party roles (never ``service``);
    ``services`` names TTP services; ``own_service`` admits the service's own
    certificate (its container probe); ``registered`` admits any registered party.
    """

    def __init__(
        self,
        *,
        roles: Iterable[Role] = (),
        services: Iterable[ServiceName] = (),
        own_service: bool = False,
        registered: bool = False,
    ) -> None:
        self.roles = frozenset[str](roles)
        self.services = frozenset[str](services)
        if "service" in self.roles:
            raise ValueError("admit TTP services by name (require_service), not by the role 'service'")
        self.own_service = own_service
        self.registered = registered

    def admits(self, party: Party, service_name: str) -> bool:
        """Whether ``party`` may call a route of service ``service_name`` guarded by this."""
        if self.registered:
            return True
        if party.role == "service":
            return party.service in self.services or (self.own_service and party.service == service_name)
        return party.role in self.roles

    async def __call__(self, request: Request) -> Party:
        party = acting_party(request)
        if not self.admits(party, request.app.state.service_name):
            who = f"The {party.service} service" if party.role == "service" else f"The role '{party.role}'"
            raise refuse(request, party.oin, f"{who} may not use this endpoint.")
        return party


def require_roles(*roles: Role, services: Iterable[ServiceName] = ()) -> Require:
    """Admit parties of ``roles`` (and the TTP ``services`` named), nobody else."""
    return Require(roles=roles, services=services)


def require_service(*services: ServiceName) -> Require:
    """Admit exactly the TTP services named: the internal calls each service needs."""
    return Require(services=services)


def require_registered() -> Require:
    """Admit any registered party (the API documents), and no certificate the registry does not know."""
    return Require(registered=True)

