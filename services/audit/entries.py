"""What one log entry is, byte for byte, and what may never be in it.

An entry is canonical JSON (keys sorted at every depth, no whitespace, UTF-8)
of ``index``, ``timestamp``, ``kind``, ``actorOin``, ``recordedBy`` (the OIN
of the service that appended it), ``subject`` and, when given,
``idempotencyKey`` and ``relayedBy`` (the OIN of the service, the portal, that
relayed the actor's request). Those exact bytes are the Merkle leaf, stored as they
were hashed, so a verifier never has to reproduce our serialiser: it hashes
what it reads. Putting the index inside the entry makes a reordered, dropped
or inserted entry visible on its own, before any hashing.

The canonical form and the personal-data guard live in
``ttp.audit_entry_format``, shared with the verifier. The guard is a defence
in depth: the services that append are responsible for never handing over a
BSN, birth date, postcode or pseudonym, and this refuses any subject that
carries a key with such a name anyway.
"""

from __future__ import annotations

import re
from typing import Any

from ttp.audit_entry_format import canonical_json, personal_data_paths
from ttp.audit_events import EVENT_KINDS, AuditEvent
from ttp.problems import InvalidParam

OIN_RE = re.compile(r"^[0-9]{20}$")
AGB_RE = re.compile(r"^[0-9]{8}$")
PERIOD_RE = re.compile(r"^[0-9]{4}-H[12]$")
MAX_KEY_LENGTH = 200
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
#: Kinds whose subject fingerprints a record: its ``contentHash`` must say which key it is under.
KEYED_CONTENT_KINDS = frozenset({"record-accepted", "record-corrected"})


def check_events(events: list[AuditEvent]) -> list[InvalidParam]:
    """Everything wrong with a batch of events, as invalidParams (never echoing values)."""
    problems: list[InvalidParam] = []
    for i, event in enumerate(events):
        base = f"/events/{i}"
        if event.kind not in EVENT_KINDS:
            problems.append(InvalidParam(name=f"{base}/kind", code="unknown-kind",
                                         reason="Not a known audit event kind."))
        if not OIN_RE.match(event.actorOin):
            problems.append(InvalidParam(name=f"{base}/actorOin", code="invalid-oin",
                                         reason="An OIN is 20 digits."))
        if event.relayedBy is not None and not OIN_RE.match(event.relayedBy):
            problems.append(InvalidParam(name=f"{base}/relayedBy", code="invalid-oin",
                                         reason="An OIN is 20 digits."))
        if event.idempotencyKey is not None and not 0 < len(event.idempotencyKey) <= MAX_KEY_LENGTH:
            problems.append(InvalidParam(name=f"{base}/idempotencyKey", code="invalid-length",
                                         reason=f"Between 1 and {MAX_KEY_LENGTH} characters."))
        provider = event.subject.get("provider")
        if provider is not None and not (isinstance(provider, str) and AGB_RE.match(provider)):
            problems.append(InvalidParam(name=f"{base}/subject/provider", code="invalid-agb",
                                         reason="subject.provider is an 8-digit AGB code."))
        period = event.subject.get("period")
        if period is not None and not (isinstance(period, str) and PERIOD_RE.match(period)):
            problems.append(InvalidParam(name=f"{base}/subject/period", code="invalid-period",
                                         reason="subject.period looks like 2026-H1."))
        if event.kind in KEYED_CONTENT_KINDS:
            problems.extend(_content_hash_problems(event.subject, f"{base}/subject"))
        for pointer in personal_data_paths(event.subject, f"{base}/subject"):
            problems.append(InvalidParam(
                name=pointer, code="personal-data",
                reason="The audit log never holds a BSN, birth date, postcode or pseudonym."))
    return problems


def _content_hash_problems(subject: dict[str, Any], base: str) -> list[InvalidParam]:
    """A record entry's content hash must be a keyed digest, with the key version it is under.

    The log cannot tell a keyed digest from an unkeyed one by looking; what it
    can insist on is the form the keyed one has (``contentHash`` hex HMAC,
    ``contentKeyVersion`` the key it is under), so an appender still sending
    the old unkeyed form is refused instead of written down for good.
    """
    problems: list[InvalidParam] = []
    digest = subject.get("contentHash")
    if not (isinstance(digest, str) and HEX64_RE.match(digest)):
        problems.append(InvalidParam(name=f"{base}/contentHash", code="invalid-content-hash",
                                     reason="contentHash is a keyed digest: 64 lower-case hex digits."))
    version = subject.get("contentKeyVersion")
    if not (type(version) is int and version >= 1):
        problems.append(InvalidParam(name=f"{base}/contentKeyVersion", code="missing-key-version",
                                     reason="A record entry names the key version its contentHash is under."))
    return problems


def encode_entry(
    index: int, timestamp: str, event: AuditEvent, recorded_by: str
) -> bytes:
    """The canonical bytes of one entry (the Merkle leaf data)."""
    doc: dict[str, Any] = {
        "index": index,
        "timestamp": timestamp,
        "kind": event.kind,
        "actorOin": event.actorOin,
        "recordedBy": recorded_by,
        "subject": event.subject,
    }
    if event.idempotencyKey is not None:
        doc["idempotencyKey"] = event.idempotencyKey
    if event.relayedBy is not None:
        doc["relayedBy"] = event.relayedBy
    return canonical_json(doc)


def derived_columns(event: AuditEvent) -> tuple[str | None, str | None]:
    """The filter columns ``(provider AGB, reporting period)`` of an event's subject."""
    provider = event.subject.get("provider")
    period = event.subject.get("period")
    return (provider if isinstance(provider, str) else None, period if isinstance(period, str) else None)

