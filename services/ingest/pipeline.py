"""One batch through the TTP: validate, pseudonymise, classify, audit, commit, receipt.

The order is what makes a retry safe. Aggregate classifies the batch's
records by their keys (nothing of a record is stored), the audit entries
become durable, and only then aggregate receives and stores the rows and
ingest acknowledges. A failure at any step answers 503 and leaves nothing
acknowledged; the resend finds the prepared or committed batch and the audit
entries by their idempotency keys, so nothing is lost and nothing counts twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.concurrency import run_in_threadpool

from services.ingest.minimise import classification_key, minimise, person_identifier
from services.ingest.models import Receipt, ReceiptCounts, RecordProblem, batch_status
from services.ingest.rules import ValidRecord, validate_records
from services.ingest.upstream import Unavailable, post_json
from ttp import metrics
from ttp.audit_batches import records_digest
from ttp.audit_events import AuditSink
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
) -> list[dict[str, Any]]:
    """Entries for the log: legal basis and consent of every stored record, and every rejection.

    Plain dicts with the ``AuditEvent`` fields: there are thousands per batch.

    Idempotency keys tie an entry to (provider, batch, recordId, content): the
    same batch resent never adds an entry, a correction always does, and so
    does the same content in another batch, so a record's entry belongs to the
    batch that committed it and not to one abandoned before it
    (``ttp.audit_batches``).
    """
    by_id = {v.record.recordId: (v, row) for v, row in zip(valid, rows, strict=True)}
    events: list[dict[str, Any]] = []
    agb = party.agb or ""
    for kind, ids in (("record-accepted", outcome["accepted"]), ("record-corrected", outcome["corrections"])):
        for rid in ids:
            v, row = by_id[rid]
            rec = v.record
            content_hash = row["contentHash"]
            events.append(
                dict(
                    kind=kind, actorOin=party.oin,
                    subject={
                        "provider": agb, "recordId": rid, "contentHash": content_hash,
                        "batchId": batch_id, "period": row["period"], "legalBasis": rec.legalBasis,
                        "consentBy": rec.consent.givenBy if rec.consent else None,
                        "consentOn": rec.consent.givenOn.isoformat() if rec.consent else None,
                    },
                    idempotencyKey=f"{kind}:{agb}:{batch_id}:{rid}:{content_hash}",
                )
            )
    for problem in rejected:
        codes = sorted({p.code for p in problem.problems})
        events.append(
            dict(
                kind="record-rejected", actorOin=party.oin,
                subject={
                    "provider": agb, "recordId": problem.recordId, "batchId": batch_id,
                    "index": problem.index, "codes": codes,
                },
                idempotencyKey=f"record-rejected:{agb}:{batch_id}:{problem.index}:{','.join(codes)}",
            )
        )
    return events


def batch_summary(
    party: Party, batch_id: str, rows: list[dict[str, Any]], counts: ReceiptCounts, entries: int
) -> dict[str, Any]:
    """The batch's own log entry, last of its append: the one the receipt proves.

    Its ``recordsDigest`` (SHA-256 over the batch's recordId and content hash
    pairs, in batch order) lets the provider show which content the proven
    entry stands for; the record entries before it carry the detail. Aggregate's
    ``batch-committed`` entry carries the same digest once the rows are stored.
    """
    digest = records_digest((row["recordId"], row["contentHash"]) for row in rows)
    agb = party.agb or ""
    return dict(
        kind="batch-received", actorOin=party.oin,
        subject={"provider": agb, "batchId": batch_id, "counts": counts.model_dump(), "entries": entries,
                 "recordsDigest": digest},
        idempotencyKey=f"batch-received:{agb}:{batch_id}:{digest}",
    )


def _minimise_batch(
    valid: list[ValidRecord], answer: dict[str, Any], batch_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The minimised rows of a batch and their classification keys.

    Run in a worker thread, like validation: for a batch of thousands this is
    a tenth of a second of work that would otherwise stall the event loop, and
    with it every other request to ingest (health checks and load-shedding
    answers included).
    """
    versions: list[int] = answer["keyVersions"]
    rows = []
    for v, values in zip(valid, answer["pseudonyms"], strict=True):
        pseudonyms = [{"keyVersion": ver, "value": val} for ver, val in zip(versions, values, strict=True)]
        rows.append(minimise(v.record, pseudonyms, versions[0], batch_id))
    return rows, [classification_key(r) for r in rows]


def _batch_events(
    party: Party, batch_id: str, valid: list[ValidRecord], rows: list[dict[str, Any]],
    outcome: dict[str, Any], rejected: list[RecordProblem], counts: ReceiptCounts,
) -> list[dict[str, Any]]:
    """The batch's log entries, its summary last (in a worker thread, see :func:`_minimise_batch`)."""
    events = _audit_events(party, batch_id, valid, rows, outcome, rejected)
    events.append(batch_summary(party, batch_id, rows, counts, len(events)))
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
        rows, keys = await run_in_threadpool(_minimise_batch, valid, answer, batch_id)
        outcome = await post_json(
            up.aggregate, "aggregate", "/trajectories",
            {"batchId": batch_id, "providerAgb": agb, "trajectories": keys},
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

    counts = ReceiptCounts(
        received=len(records), accepted=len(outcome["accepted"]), duplicates=len(outcome["duplicates"]),
        corrections=len(outcome["corrections"]), rejected=len(rejected),
    )
    events = await run_in_threadpool(_batch_events, party, batch_id, valid, rows, outcome, rejected, counts)
    try:
        audit_receipt = await up.audit.append(events, proofs="last")
    except Exception as exc:
        log.warning("audit append failed", extra={"error_type": type(exc).__name__})
        raise Unavailable("audit") from exc
    if valid:
        await post_json(up.aggregate, "aggregate", f"/trajectory-batches/{agb}/{batch_id}/commit",
                        {"trajectories": rows})

    metrics.count_records("accepted", counts.accepted)
    metrics.count_records("duplicate", counts.duplicates)
    metrics.count_records("correction", counts.corrections)
    metrics.count_records("rejected", counts.rejected)
    return Receipt(
        batchId=batch_id, provider=agb, receivedAt=received_at, status=batch_status(counts),
        counts=counts, rejected=rejected, audit=receipt_audit(audit_receipt),
    )


def receipt_audit(audit: dict[str, Any]) -> dict[str, Any]:
    """The audit part of a receipt: where the batch's entries are and the proof of its summary entry."""
    indexes: list[int] = audit["leafIndexes"]
    return {
        "batchEntry": indexes[-1],
        "recordEntries": indexes[:-1],
        "treeSize": audit["treeSize"],
        "rootHash": audit["rootHash"],
        "checkpoint": audit["checkpoint"],
        "inclusionProof": audit["inclusionProofs"][-1],
    }
