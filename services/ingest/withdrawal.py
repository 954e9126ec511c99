"""Withdrawals: a client withdrew consent, or a re-delivery no longer holds some records.

For a consent withdrawal the person is identified the way records identify
them (BSN, or the fallback key when the BSN is unknown), pseudonymised, and
every trajectory of that person from this provider (or only the named
trajectory) is removed from the store. The audit log records what was
removed, by recordId, never the person.

:func:`withdraw` is the one way to remove trajectories, for both kinds. It is
two-phase, like a batch: aggregate prepares (records which rows would go,
deletes nothing), the log entry naming those rows becomes durable, and only
then aggregate commits (deletes exactly them). A failure at any step answers
503 and the resend of the same request finds the same withdrawal: the log
says once what was removed, and the rows go once. (Before, aggregate deleted
first: with the log down the rows were gone, the provider got 503, and the
resend logged ``removed: 0``.)
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.ingest.models import FALLBACK_BSNS
from services.ingest.pipeline import Upstreams
from services.ingest.upstream import Unavailable, post_json
from ttp.audit_events import AuditEvent
from ttp.bsn import elfproef
from ttp.registry import Party

log = logging.getLogger("ttp.ingest.withdrawal")


class ConsentWithdrawal(BaseModel):
    """Body of ``POST /v1/consent-withdrawals``."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"bsn": "111222333", "trajectoryId": "TR-2026-0042", "withdrawnOn": "2026-05-02"},
                {"bsn": "999999999", "gender": "V", "birthDate": "2013-02-01", "postcode": "1234AB",
                 "withdrawnOn": "2026-05-02"},
            ]
        },
    )
    bsn: str = Field(
        pattern=r"^[0-9]{9}$",
        description="BSN; 000000000 when there is no (known) BSN, 999999999 for an unborn child "
        "(then the fallback key, as in the record)",
    )
    gender: Literal["V", "M", "O"] | None = None
    birthDate: dt.date | None = None  # noqa: N815
    postcode: str | None = Field(default=None, pattern=r"^[1-9][0-9]{3} ?[A-Za-z]{2}$")
    trajectoryId: str | None = Field(  # noqa: N815
        default=None, min_length=1, max_length=64,
        description="Only this trajectory. Must not carry personal data (a BSN-shaped number or the client's "
        "birth date): it is logged, so such a value gets 400.",
    )
    withdrawnOn: dt.date  # noqa: N815

    @model_validator(mode="after")
    def _identifiable(self) -> ConsentWithdrawal:
        if self.bsn in FALLBACK_BSNS:
            if not (self.gender and self.birthDate and self.postcode):
                raise ValueError("without a BSN, gender, birthDate and postcode are required")
        elif not elfproef(self.bsn):
            raise ValueError("bsn does not pass the 11-proef")
        return self

    def identifier(self) -> tuple[str, str]:
        """(kind, value) for pseudonymise, the same as for a record of this person."""
        if self.bsn not in FALLBACK_BSNS:
            return "bsn", self.bsn
        assert self.gender and self.birthDate and self.postcode
        postcode = self.postcode.replace(" ", "").upper()
        return "fallback", f"{self.gender}|{self.birthDate.isoformat()}|{postcode}"


class WithdrawalReceipt(BaseModel):
    removed: int = Field(description="Trajectories removed from the store")
    recordIds: list[str] = Field(description="The provider's recordIds that were removed")  # noqa: N815
    periods: list[str] = Field(description="Periods whose figures were recomputed")
    audit: dict[str, object] | None = None


def person_selection(pseudonyms: list[dict[str, Any]], trajectory_id: str | None) -> dict[str, Any]:
    """What to withdraw for a consent withdrawal: a person's trajectories (or one of them)."""
    return {"pseudonyms": pseudonyms, "trajectoryRef": trajectory_id}


def records_selection(record_ids: list[str]) -> dict[str, Any]:
    """What to withdraw when a period re-delivery no longer holds these records (recordIds)."""
    return {"recordIds": sorted(set(record_ids))}


async def withdraw(
    up: Upstreams, party: Party, selection: dict[str, Any], withdrawn_on: dt.date, *,
    kind: str = "consent-withdrawn", facts: dict[str, Any] | None = None,
) -> WithdrawalReceipt:
    """Remove trajectories of ``party`` two-phase: prepare, log what goes, commit. Safe to repeat.

    ``selection`` is :func:`person_selection` or :func:`records_selection`;
    ``kind`` the log entry's kind and ``facts`` what else it says (for
    example the re-delivery's batch). The entry names every recordId removed;
    its idempotency key is the withdrawal's, so a repeat of the same request
    after a failure anywhere logs nothing new and removes nothing more.
    Raises ``Unavailable`` (503) when a step fails; nothing is acknowledged then.
    """
    agb = party.agb or ""
    prepared = await post_json(
        up.aggregate, "aggregate", "/consent-withdrawals",
        {"providerAgb": agb, **selection, "withdrawnOn": withdrawn_on.isoformat()},
    )
    withdrawal_id = prepared["withdrawalId"]
    event = AuditEvent(
        kind=kind, actorOin=party.oin, relayedBy=party.relayed_by,
        subject={"provider": agb, **(facts or {}), "withdrawnOn": withdrawn_on.isoformat(),
                 "removed": prepared["removed"], "removedRecordIds": prepared["recordIds"],
                 "periods": prepared["periods"]},
        idempotencyKey=f"{kind}:{agb}:{withdrawal_id}",
    )
    try:
        audit = await up.audit.append([event])
    except Exception as exc:
        log.warning("withdrawal not logged; nothing removed", extra={"error_type": type(exc).__name__})
        raise Unavailable("audit") from exc
    done = await post_json(up.aggregate, "aggregate", f"/consent-withdrawals/{agb}/{withdrawal_id}/commit", {})
    return WithdrawalReceipt(removed=done["removed"], recordIds=done["recordIds"], periods=done["periods"],
                             audit=audit)
