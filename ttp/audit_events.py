"""What a service hands the audit log, and the interface it hands it through.

Every service appends through an ``AuditSink``: the audit service's own store
appends locally; every other service uses the mTLS client in
``ttp.audit_client``. Events never carry a BSN, birth date, postcode or
pseudonym; ``subject`` holds organisation ids, record ids, hashes and counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, Field

#: The kinds of entry the log knows; the auditor filters on these.
EVENT_KINDS: tuple[str, ...] = (
    "record-accepted",
    "record-corrected",
    "record-rejected",
    "batch-received",
    "batch-committed",
    "consent-withdrawn",
    "record-withdrawn",
    "feed-read",
    "report-read",
    "share-granted",
    "share-revoked",
    "annotation-changed",
    "refusal",
    "key-rotation",
    "purge",
)


class AuditEvent(BaseModel):
    """One entry to append."""

    kind: str = Field(description="One of EVENT_KINDS")
    actorOin: str = Field(description="OIN of the party whose action this records")  # noqa: N815
    subject: dict[str, Any] = Field(default_factory=dict, description="Kind-specific facts, no personal data")
    relayedBy: str | None = Field(  # noqa: N815
        default=None,
        description="OIN of the TTP service (the portal) that relayed the actor's request, if one did",
    )
    idempotencyKey: str | None = Field(  # noqa: N815
        default=None,
        description="Appending an event whose key is already in the log returns the existing entry",
    )


class AuditSink(Protocol):
    """Where a service writes its audit events; durable once ``append`` returns."""

    async def append(self, events: Sequence[AuditEvent | dict[str, Any]], *, proofs: str = "all") -> dict[str, Any]:
        """Append events in order; returns the log's receipt (leaf indexes, checkpoint, proofs).

        ``proofs="last"`` asks for the inclusion proof of the last event only.
        """
        ...

    def append_soon(self, events: list[AuditEvent]) -> None:
        """Append without waiting (refusals, reads): best effort, retried in the background."""
        ...
