"""Least privilege between the TTP's services: who may relay for whom, who may log what.

One table each, so a reviewer reads the whole policy in one place:

* ``RELAYS``: the services that may call another service *on behalf of* a
  party (header ``Ttp-On-Behalf-Of``, ``ttp.relay``), and for which roles. Only
  the portal relays: it signs people in and acts for their organisation.
* ``APPENDS``: per producing service, the audit event kinds it may append and
  whom it may name as the entry's actor. The audit service refuses (403,
  logged) any other append. The actor of an entry is the authenticated
  caller itself (``itself``), or a party whose action the service carried
  out for it: ingest relays for the provider whose certificate posted the
  batch, report for the provider or gemeente reading a report (and for
  aggregate's disclosure check reading what gemeenten were shown), aggregate
  for the gemeente or Rijk reading a feed.

Which endpoint each service may call is declared on the endpoint itself
(``ttp.identity.require_service``); this module is the part the audit service
needs to judge an append, which no route signature can express.

What the audit service can and cannot check: it never sees the provider's TLS
session at ingest, so it cannot prove that provider X really posted the
batch. It checks what is checkable: the kind is one the calling service
produces, the actor is registered in a role that service acts for (or is the
service itself), the entry's ``subject.provider`` / ``subject.gemeente`` is the
actor's own when the actor is that provider or gemeente, and a ``relayedBy``
names a service allowed to relay for the actor's role. A compromised ingest
can still forge a provider's records; a compromised report can no longer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ttp.audit_events import EVENT_KINDS
from ttp.registry import Party, Registry

#: Services allowed to send ``Ttp-On-Behalf-Of``, and the roles of the parties they may act for.
RELAYS: Mapping[str, frozenset[str]] = {
    "portal": frozenset({"provider", "gemeente", "rijk", "auditor"}),
}


@dataclass(frozen=True)
class Actors:
    """Whom a producing service may name as the actor of one kind of entry."""

    #: The service itself (its own OIN): purges, key rotations.
    itself: bool = False
    #: Roles of registered parties whose action the service carries out.
    roles: frozenset[str] = field(default_factory=frozenset)
    #: Other TTP services whose action it carries out (aggregate's disclosure check reading a report).
    services: frozenset[str] = field(default_factory=frozenset)
    #: Any OIN, registered or not: only for ``refusal``, whose actor is the caller that was refused.
    anyone: bool = False


PROVIDER = Actors(roles=frozenset({"provider"}))
#: A refusal names whoever was refused, often a certificate the registry does not know.
REFUSED_CALLER = Actors(anyone=True)

#: Per producing service: event kind -> whom it may name as actor. Nothing else is appended.
APPENDS: dict[str, dict[str, Actors]] = {
    "ingest": {
        "record-accepted": PROVIDER,
        "record-corrected": PROVIDER,
        "record-rejected": PROVIDER,
        "batch-received": PROVIDER,
        "consent-withdrawn": PROVIDER,
        "record-withdrawn": PROVIDER,
        "refusal": REFUSED_CALLER,
    },
    "pseudonymise": {
        "key-rotation": Actors(itself=True),
        "refusal": REFUSED_CALLER,
    },
    "aggregate": {
        "feed-read": Actors(roles=frozenset({"gemeente", "rijk"})),
        "purge": Actors(itself=True),
        "batch-committed": Actors(itself=True),
        "refusal": REFUSED_CALLER,
    },
    "report": {
        "report-read": Actors(roles=frozenset({"provider", "gemeente"}), services=frozenset({"aggregate"})),
        "share-granted": PROVIDER,
        "share-revoked": PROVIDER,
        "annotation-changed": PROVIDER,
        "refusal": REFUSED_CALLER,
    },
    "audit": {"refusal": REFUSED_CALLER},
    "portal": {"refusal": REFUSED_CALLER},
}


def may_relay(relay: Party, party: Party) -> bool:
    """Whether service ``relay`` may act for ``party`` (never for another service)."""
    return relay.role == "service" and party.role in RELAYS.get(relay.service or "", frozenset())


def append_refusal(
    registry: Registry, caller: Party, kind: str, actor_oin: str, subject: Mapping[str, object],
    relayed_by: str | None,
) -> str | None:
    """Why ``caller`` may not append this entry, or None if it may.

    The reason names the rule broken, never a value from the subject.
    """
    rights = APPENDS.get(caller.service or "", {})
    allowed = rights.get(kind)
    if allowed is None:
        return f"The {caller.service} service does not produce '{kind}' entries."
    if relayed_by is not None:
        relay = registry.by_oin(relayed_by)
        actor = registry.by_oin(actor_oin)
        if relay is None or actor is None or not may_relay(relay, actor):
            return "relayedBy names no service allowed to relay for this actor."
    if allowed.anyone:
        return None
    if actor_oin == caller.oin:
        return None if allowed.itself else f"A '{kind}' entry records another party's action, not the service's own."
    actor = registry.by_oin(actor_oin)
    if actor is None:
        return "The actor is not a registered party."
    if actor.role == "service":
        if actor.service not in allowed.services:
            return f"The {caller.service} service does not act for the {actor.service} service."
        return None
    if actor.role not in allowed.roles:
        return f"The {caller.service} service does not act for a party of role '{actor.role}' in '{kind}' entries."
    provider = subject.get("provider")
    if actor.role == "provider" and provider is not None and provider != actor.agb:
        return "The entry concerns another provider than its actor."
    gemeente = subject.get("gemeente")
    if actor.role == "gemeente" and gemeente is not None and gemeente != actor.gemeente_code:
        return "The entry concerns another gemeente than its actor."
    return None


def check_policy() -> None:
    """Fail loudly at import if the table names an event kind the log does not know."""
    for service, rights in APPENDS.items():
        unknown = set(rights) - set(EVENT_KINDS)
        if unknown:
            raise ValueError(f"privileges: {service} appends unknown kinds {sorted(unknown)}")


check_policy()
