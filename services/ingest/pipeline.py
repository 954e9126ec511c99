"""One batch through the TTP: validate, pseudonymise, stage, audit, commit, receipt.

The order is what makes a retry safe. Aggregate stages the batch (nothing
visible), the audit entries become durable, and only then aggregate commits
and ingest acknowledges. A failure at any step answers 503 and leaves nothing
acknowledged; the resend finds the staged or committed batch and the audit
entries by their idempotency keys, so nothing is lost and nothing counts twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.concurrency import run_in_threadpool

from services.ingest.minimise import minimise, person_identifier
from services.ingest.models import Receipt, ReceiptCounts, RecordProblem, batch_status
from services.ingest.rules import ValidRecord, validate_records
from services.ingest.upstream import Unavailable, post_json
from ttp import metrics
from ttp.audit_events import AuditEvent, AuditSink
from ttp.problems import InvalidParam
from ttp.registry import Party

log = logging.getLogger("ttp.ingest.pipeline")


@dataclass
class Upstreams:
    """The clients ingest needs, one per downstream service."""

    pseudonymise: httpx.AsyncClient
    aggregate: httpx.AsyncClient
    audit: AuditSink


def _audit_events(
    party: Party, batch_id: str, valid: list[ValidRecord], rows: list[dict[str, Any]],
    outcome: dict[str, Any], rejected: list[RecordProblem],
) -> list[AuditEvent]:
    """Entries for the log: legal basis and consent of every stored record, and every rejection.

    Idempotency keys tie an entry to (provider, recordId, content): the same
    content resent never adds an entry, a correction always does.
    """
    by_id = {v.record.recordId: (v, row) for v, row in zip(valid, rows, strict=True)}
    events: list[AuditEvent] = []
    agb = party.agb or ""
    for kind, ids in (("record-accepted", outcome["accepted"]), ("record-corrected", outcome["corrections"])):
        for rid in ids:
            v, row = by_id[rid]
            rec = v.record
            content_hash = row["contentHash"]
            events.append(
                AuditEvent(
                    kind=kind, actorOin=party.oin,
                    subject={
                        "provider": agb, "recordId": rid, "contentHash": content_hash,
                        "batchId": batch_id, "period": row["period"], "legalBasis": rec.legalBasis,
                        "consentBy": rec.consent.givenBy if rec.consent else None,
                        "consentOn": rec.consent.givenOn.isoformat() if rec.consent else None,
                    },
                    idempotencyKey=f"{kind}:{agb}:{rid}:{content_hash}",
                )
            )
    for problem in rejected:
        codes = sorted({p.code for p in problem.problems})
        events.append(
            AuditEvent(
                kind="record-rejected", actorOin=party.oin,
                subject={
                    "provider": agb, "recordId": problem.recordId, "batchId": batch_id,
                    "index": problem.index, "codes": codes,
                },
                idempotencyKey=f"record-rejected:{agb}:{batch_id}:{problem.index}:{','.join(codes)}",
            )
        )
    return events


async def process_batch(
    up: Upstreams, party: Party, batch_id: str, records: list[Any], today: dt.date
) -> Receipt:
    """Run one envelope-valid batch end to end and build its receipt."""
    received_at = dt.datetime.now(dt.UTC)
    agb = party.agb or ""
    valid, rejected = await run_in_threadpool(validate_records, records, agb, today)

    outcome: dict[str, Any] = {"accepted": [], "duplicates": [], "corrections": [], "refused": []}
    rows: list[dict[str, Any]] = []
    if valid:
        identifiers = [person_identifier(v.record) for v in valid]
        answer = await post_json(
            up.pseudonymise, "pseudonymise", "/pseudonyms",
            {"identifiers": [{"kind": k, "value": val} for k, val in identifiers]},
        )
        versions: list[int] = answer["keyVersions"]
        rows = [
            minimise(
                v.record,
                [{"keyVersion": ver, "value": val} for ver, val in zip(versions, values, strict=True)],
                versions[0],
                batch_id,
            )
            for v, values in zip(valid, answer["pseudonyms"], strict=True)
        ]
        outcome = await post_json(
            up.aggregate, "aggregate", "/trajectories",
            {"batchId": batch_id, "providerAgb": agb, "trajectories": rows},
        )
    by_id = {v.record.recordId: v for v in valid}
    for refused in outcome.get("refused", []):
        v = by_id[refused["recordId"]]
        rejected.append(
            RecordProblem(
                index=v.index, recordId=v.record.recordId,
                problems=[InvalidParam(name=f"/records/{v.index}/legalBasis", code=refused["code"],
                                       reason=refused["reason"])],
            )
        )
    rejected.sort(key=lambda p: p.index)

    events = _audit_events(party, batch_id, valid, rows, outcome, rejected)
    audit_receipt: dict[str, Any] | None = None
    if events:
        try:
            audit_receipt = await up.audit.append(events)
        except Exception as exc:
            log.warning("audit append failed", extra={"error_type": type(exc).__name__})
            raise Unavailable("audit") from exc
    if valid:
        await post_json(up.aggregate, "aggregate", f"/trajectory-batches/{agb}/{batch_id}/commit", {})

    counts = ReceiptCounts(
        received=len(records), accepted=len(outcome["accepted"]), duplicates=len(outcome["duplicates"]),
        corrections=len(outcome["corrections"]), rejected=len(rejected),
    )
    metrics.count_records("accepted", counts.accepted)
    metrics.count_records("duplicate", counts.duplicates)
    metrics.count_records("correction", counts.corrections)
    metrics.count_records("rejected", counts.rejected)
    return Receipt(
        batchId=batch_id, provider=agb, receivedAt=received_at, status=batch_status(counts),
        counts=counts, rejected=rejected, audit=audit_receipt,
    )
