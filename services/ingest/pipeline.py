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

from services.ingest.minimise import canonical_content, classification_key, minimise, person_identifier
from services.ingest.models import Receipt, ReceiptCounts, RecordProblem, batch_status
from services.ingest.redelivery import withdrawal_events
from services.ingest.rules import ValidRecord, receipt_warnings, validate_records
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

    ``contentHash`` is the record's digest keyed under ``contentKeyVersion``
    (the current key; pseudonymise computed it): an auditor can tell two
    deliveries of a record apart, and the TTP can recompute it from a
    disputed record, but nobody who reads the log can recompute it from
    guessed personal data.
    """
    by_id = {v.record.recordId: (v, row) for v, row in zip(valid, rows, strict=True)}
    events: list[dict[str, Any]] = []
    agb = party.agb or ""
    for kind, ids in (("record-accepted", outcome["accepted"]), ("record-corrected", outcome["corrections"])):
        for rid in ids:
            v, row = by_id[rid]
            rec = v.record
            current = row["contentHashes"][0]
            content_hash = current["value"]
            events.append(
                dict(
                    kind=kind, actorOin=party.oin, relayedBy=party.relayed_by,
                    subject={
                        "provider": agb, "recordId": rid, "contentHash": content_hash,
                        "contentKeyVersion": current["keyVersion"],
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
                kind="record-rejected", actorOin=party.oin, relayedBy=party.relayed_by,
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

    Its ``recordsDigest`` (SHA-256 over the batch's recordId and *keyed*
    content hash pairs under the current key, in batch order) lets the
    provider show which content the proven entry stands for; the record
    entries before it carry the detail. Hashing keyed values adds nothing
    anyone could reverse. Aggregate's ``batch-committed`` entry carries the
    same digest once the rows are stored.
    """
    digest = records_digest((row["recordId"], row["contentHashes"][0]["value"]) for row in rows)
    agb = party.agb or ""
    return dict(
        kind="batch-received", actorOin=party.oin, relayedBy=party.relayed_by,
        subject={"provider": agb, "batchId": batch_id, "counts": counts.model_dump(), "entries": entries,
                 "recordsDigest": digest},
        idempotencyKey=f"batch-received:{agb}:{batch_id}:{digest}",
    )


def _identifiers(valid: list[ValidRecord]) -> list[dict[str, str]]:
    """What pseudonymise keys for each record: the person identifier and the record's canonical form.

    In a worker thread, like :func:`_minimise_batch`: serialising thousands of
    records is a few tens of milliseconds.
    """
    out = []
    for v in valid:
        kind, value = person_identifier(v.record)
        out.append({"kind": kind, "value": value, "content": canonical_content(v.record)})
    return out


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
    for v, values, digests in zip(valid, answer["pseudonyms"], answer["contentDigests"], strict=True):
        pseudonyms = [{"keyVersion": ver, "value": val} for ver, val in zip(versions, values, strict=True)]
        hashes = [{"keyVersion": ver, "value": val} for ver, val in zip(versions, digests, strict=True)]
        rows.append(minimise(v.record, pseudonyms, versions[0], batch_id, content_hashes=hashes))
    return rows, [classification_key(r) for r in rows]


def _batch_events(
    party: Party, batch_id: str, valid: list[ValidRecord], rows: list[dict[str, Any]],
    outcome: dict[str, Any], rejected: list[RecordProblem], counts: ReceiptCounts,
) -> list[dict[str, Any]]:
    """The batch's log entries, its summary last (in a worker thread, see :func:`_minimise_batch`)."""
    events = _audit_events(party, batch_id, valid, rows, outcome, rejected)
    if outcome.get("replacePeriod"):
        events += withdrawal_events(party, batch_id, outcome["replacePeriod"], outcome.get("withdrawn", []))
    events.append(batch_summary(party, batch_id, rows, counts, len(events)))
    return events


async def process_batch(
    up: Upstreams, party: Party, batch_id: str, records: list[Any], today: dt.date,
    replace_period: str | None = None,
) -> Receipt:
    """Run one envelope-valid batch end to end and build its receipt.

    ``replace_period``: a period re-delivery (:mod:`services.ingest.redelivery`).
    """
    received_at = dt.datetime.now(dt.UTC)
    agb = party.agb or ""
    valid, rejected = await run_in_threadpool(validate_records, records, agb, today)

    outcome: dict[str, Any] = {"accepted": [], "duplicates": [], "corrections": [], "refused": []}
    rows: list[dict[str, Any]] = []
    if valid:
        identifiers = await run_in_threadpool(_identifiers, valid)
        answer = await post_json(up.pseudonymise, "pseudonymise", "/pseudonyms", {"identifiers": identifiers})
        rows, keys = await run_in_threadpool(_minimise_batch, valid, answer, batch_id)
        prepare: dict[str, Any] = {"batchId": batch_id, "providerAgb": agb, "trajectories": keys}
        if replace_period:
            prepare["replacePeriod"] = replace_period
            prepare["keepRecordIds"] = [p.recordId for p in rejected if p.recordId is not None]
        outcome = await post_json(up.aggregate, "aggregate", "/trajectories", prepare)
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
        counts=counts, rejected=rejected, warnings=receipt_warnings(valid),
        audit=receipt_audit(audit_receipt),
        replacedPeriod=outcome.get("replacePeriod"), withdrawn=outcome.get("withdrawn", []),
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
