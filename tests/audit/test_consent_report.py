"""The auditor's consent report, computed from the log alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from tests.audit.conftest import PROVIDER_OINS
from tests.helpers.asgi import party_client
from ttp.audit_events import AuditEvent
from ttp.checkpoint import verify_checkpoint
from ttp.pki import sample_parties

AGGREGATE_OIN = next(p.oin for p in sample_parties() if p.slug == "service-aggregate")


def record(kind: str, record_id: str, basis: str | None, by: str | None, *, provider: str = "98000001",
           period: str | None = "2026-H1", **extra: Any) -> dict[str, Any]:
    """An event shaped as ingest writes it (services/ingest/pipeline.py), the provider as actor."""
    subject: dict[str, Any] = {"provider": provider, "recordId": record_id, "batchId": "b1", **extra}
    if period is not None:
        subject["period"] = period
    if basis is not None:
        subject.update(legalBasis=basis, consentBy=by, consentOn="2026-02-01" if by else None,
                       contentHash="ab" * 32, contentKeyVersion=1)
    return AuditEvent(kind=kind, actorOin=PROVIDER_OINS[provider], subject=subject).model_dump(exclude_none=True)


def batch(kind: str, batch_id: str, *, provider: str = "98000001", accepted: int = 0,
          digest: str = "d1" * 32) -> dict[str, Any]:
    """A batch's entry: ingest's batch-received, or aggregate's batch-committed after its commit."""
    subject: dict[str, Any] = {"provider": provider, "batchId": batch_id, "recordsDigest": digest}
    if kind == "batch-received":
        subject["counts"] = {"received": accepted, "accepted": accepted, "duplicates": 0, "corrections": 0,
                             "rejected": 0}
    # batch-committed is aggregate's own entry, with its own OIN as actor (ttp/privileges.py)
    actor = AGGREGATE_OIN if kind == "batch-committed" else PROVIDER_OINS[provider]
    return AuditEvent(kind=kind, actorOin=actor, subject=subject,
                      idempotencyKey=f"{kind}:{provider}:{batch_id}:{digest}").model_dump(exclude_none=True)


def append(audit_app: FastAPI, dev_pki: Path, evs: list[dict[str, Any]]) -> None:
    """Append as their producers do: ingest its entries, aggregate its batch-committed."""
    clients = {who: party_client(audit_app, dev_pki, who) for who in ("service-ingest", "service-aggregate")}
    i = 0
    while i < len(evs):
        who = "service-aggregate" if evs[i]["kind"] == "batch-committed" else "service-ingest"
        j = i
        while j < len(evs) and ("service-aggregate" if evs[j]["kind"] == "batch-committed"
                                else "service-ingest") == who:
            j += 1
        r = clients[who].post("/v1/audit/entries", json={"events": evs[i:j]})
        assert r.status_code in (200, 201), r.text  # 200: all already logged (a resend)
        i = j


def test_records_of_a_batch_prepared_and_never_committed_are_not_counted_as_delivered(
    audit_app: FastAPI, dev_pki: Path
) -> None:
    """Issue 15 part 5: a batch logged as accepted but never stored is told apart until a resend commits it."""
    evs = [
        record("record-accepted", "r1", "toestemming", "ouder"),
        batch("batch-received", "b1", accepted=1),
        batch("batch-committed", "b1"),
        record("record-accepted", "r2", "toestemming", "beide", batchId="b2"),
        record("record-accepted", "r3", "wettelijke-verplichting", None, batchId="b2"),
        batch("batch-received", "b2", accepted=2, digest="e2" * 32),  # aggregate died before its commit
        record("record-rejected", "r4", None, None, batchId="b3", codes=["bsn-11-proef"]),
        batch("batch-received", "b3"),  # every record rejected: nothing to commit
    ]
    append(audit_app, dev_pki, evs)
    auditor = party_client(audit_app, dev_pki, "auditor")
    doc = auditor.get("/v1/audit/consent-report", params={"provider": "98000001", "period": "2026-H1"}).json()
    assert doc["records"]["total"] == 1 and doc["records"]["pendingCommit"] == 2
    assert doc["batches"]["committed"] == 1 and doc["batches"]["nothingToStore"] == 1
    assert doc["batches"]["preparedNotCommitted"] == [
        {"provider": "98000001", "batchId": "b2", "leafIndexes": [5]}]
    # the resend is committed: its records count, once
    resent = [batch("batch-received", "b2", accepted=2, digest="e2" * 32),
              batch("batch-committed", "b2", digest="e2" * 32)]
    append(audit_app, dev_pki, resent)
    doc = auditor.get("/v1/audit/consent-report", params={"provider": "98000001", "period": "2026-H1"}).json()
    assert doc["records"]["total"] == 3 and doc["records"]["pendingCommit"] == 0
    assert doc["batches"]["preparedNotCommitted"] == [] and doc["batches"]["committed"] == 2


def test_counts_by_legal_basis_and_consent_and_lists_age_rule_rejections(audit_app: FastAPI,
                                                                         dev_pki: Path, public_key: Any) -> None:
    evs = [
        record("record-accepted", "r1", "toestemming", "ouder"),
        record("record-accepted", "r2", "toestemming", "beide"),
        record("record-accepted", "r3", "toestemming", "jeugdige"),
        record("record-accepted", "r4", "wettelijke-verplichting", None),
        record("record-accepted", "r5", "wettelijke-verplichting", None),
        # a correction changes r1's basis; it is counted once, in its latest state
        record("record-corrected", "r1", "wettelijke-verplichting", None),
        # rejections: two for the consent age rule (one ingest could not date), one for something else
        record("record-rejected", "r6", None, None, codes=["consent-age-12-15"]),
        record("record-rejected", "r7", None, None, period=None, codes=["consent-age-under-12", "end-date"]),
        record("record-rejected", "r8", None, None, codes=["bsn-11-proef", "consent-future"]),
        record("consent-withdrawn", "r2", None, None, period=None, removed=1, periods=["2026-H1"]),
        # other providers and periods stay out
        record("record-accepted", "x1", "toestemming", "ouder", provider="98000002"),
        record("record-accepted", "x2", "toestemming", "ouder", period="2025-H2"),
        record("record-rejected", "x3", None, None, period="2025-H2", codes=["consent-age-16-plus"]),
        record("record-rejected", "x4", None, None, provider="98000002", codes=["consent-age-16-plus"]),
        record("consent-withdrawn", "x5", None, None, period=None, removed=4, periods=["2025-H2"]),
        # batch b1 was stored (aggregate's batch-committed entry follows ingest's batch-received)
        batch("batch-received", "b1", accepted=6),
        batch("batch-committed", "b1"),
    ]
    append(audit_app, dev_pki, evs)
    auditor = party_client(audit_app, dev_pki, "auditor")
    report = auditor.get("/v1/audit/consent-report", params={"provider": "98000001", "period": "2026-H1"})
    assert report.status_code == 200, report.text
    doc = report.json()
    assert doc["records"]["total"] == 5
    assert doc["records"]["byLegalBasis"] == [
        {"legalBasis": "toestemming", "consentBy": "beide", "records": 1},
        {"legalBasis": "toestemming", "consentBy": "jeugdige", "records": 1},
        {"legalBasis": "wettelijke-verplichting", "consentBy": "n.v.t.", "records": 3},
    ]
    assert doc["corrections"] == 1
    assert doc["withdrawals"] == {"count": 1, "recordsRemoved": 1}
    assert doc["rejected"] == {"total": 3, "withoutPeriod": 1, "consentAgeRule": 2}
    rejected = doc["consentAgeRuleRejections"]
    assert [r["recordId"] for r in rejected] == ["r6", "r7"]
    assert [r["leafIndex"] for r in rejected] == [6, 7]
    assert [r["period"] for r in rejected] == ["2026-H1", None]
    assert rejected[1]["codes"] == ["consent-age-under-12", "end-date"]
    # the report says which signed tree it was computed from
    assert verify_checkpoint(doc["checkpoint"], public_key).tree_size == doc["treeSize"] == len(evs)
    # without a period: every period of the provider
    every = auditor.get("/v1/audit/consent-report", params={"provider": "98000001"}).json()
    assert every["records"]["total"] == 6
    assert every["withdrawals"] == {"count": 2, "recordsRemoved": 5}
    assert [r["recordId"] for r in every["consentAgeRuleRejections"]] == ["r6", "r7", "x3"]
    assert auditor.get("/v1/audit/consent-report", params={"provider": "98000001", "period": "H1"}).status_code == 400
    assert auditor.get("/v1/audit/consent-report").status_code == 400
