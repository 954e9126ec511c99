"""Period re-delivery: a new delivery replaces what the provider delivered for a half year.

At CBS a correction of Beleidsinformatie Jeugd is a full re-delivery of the
period: with the delivery of the current half year a provider re-delivers the
previous one from the current state of its administration ("herlevering"),
and nothing older. The TTP does the same. With ``replacePeriod`` the batch
replaces the provider's stored records of that period: its records are
classified as usual (new, duplicate, correction), and every stored record of
the period that the batch leaves out is withdrawn. A record the batch carries
but ingest rejected is not left out; its stored version stays.

The withdrawal goes the way every removal goes: aggregate lists the absent
records when it prepares the batch, ingest writes one ``record-withdrawn``
entry per record with reason ``period-redelivery`` to the audit log, and only
then does the commit remove them (``services.aggregate.store.remove_records``,
the same deletion a consent withdrawal uses), in the same transaction that
stores the batch.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from ttp.periods import is_period, period_bounds, period_of, previous_period
from ttp.problems import InvalidParam, Problem
from ttp.registry import Party

#: The delivery term after a half year ends (protocol: within 3 weeks); during it that half year
#: is still the one being delivered, so the one before it may still be re-delivered.
DELIVERY_TERM: Final = dt.timedelta(days=21)

#: The reason on the audit entry of a record withdrawn because a re-delivery left it out.
REASON: Final = "period-redelivery"


def replaceable_periods(today: dt.date) -> tuple[str, ...]:
    """The periods a provider may re-deliver today, newest first.

    The current period is the one being delivered: the running half year, or
    during the 3-week delivery term after a half year ended, that half year.
    Together with the one before it, as CBS asks "levering" and "herlevering".
    """
    running = period_of(today)
    delivered = period_of(today - DELIVERY_TERM)
    periods = [running]
    for p in (delivered, previous_period(delivered)):
        if p not in periods:
            periods.append(p)
    return tuple(periods)


def check_replace_period(value: str | None, today: dt.date) -> str | None:
    """The period to replace, or a problem: 400 when malformed or in the future, 409 when closed."""
    if value is None:
        return None
    if not is_period(value):
        raise Problem(400, "replacePeriod must be a half year such as 2026-H1.",
                      invalid_params=[InvalidParam(name="replacePeriod", code="period-format",
                                                   reason="Write the half year as YYYY-H1 or YYYY-H2.")])
    allowed = replaceable_periods(today)
    if value in allowed:
        return value
    if period_bounds(value)[0] > today:
        raise Problem(400, f"{value} has not begun; nothing of it can have been delivered.",
                      invalid_params=[InvalidParam(name="replacePeriod", code="period-future",
                                                   reason="A re-delivery replaces a period that has begun.")])
    raise Problem(
        409,
        f"{value} can no longer be re-delivered: as at CBS, only the current period and the one before it "
        f"can be replaced (now {' and '.join(allowed)}). Correct a record of an older period by sending it "
        "again with the same recordId.",
        invalid_params=[InvalidParam(name="replacePeriod", code="period-closed",
                                     reason="Only the current and the previous period can be re-delivered.")],
    )


def withdrawal_events(party: Party, batch_id: str, period: str, record_ids: list[str]) -> list[dict[str, Any]]:
    """One audit entry per record the re-delivery withdraws, saying which and why."""
    agb = party.agb or ""
    return [
        dict(
            kind="record-withdrawn", actorOin=party.oin, relayedBy=party.relayed_by,
            subject={"provider": agb, "recordId": rid, "period": period, "reason": REASON, "batchId": batch_id},
            idempotencyKey=f"record-withdrawn:{agb}:{rid}:{batch_id}",
        )
        for rid in record_ids
    ]
