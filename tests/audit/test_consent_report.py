"""The auditor's consent report, computed from the log alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from services.audit.checkpoint import verify_checkpoint
from tests.helpers.asgi import party_client
from ttp.audit_events import AuditEvent

PROVIDER_OIN = "00000099100000000001"


def record(kind: str, record_id: str, basis: str | None, by: str | None, *, provider: str = "98000001",
           period: str = "2026-H1", **extra: Any) -> dict[str, Any]:
    subject: dict[str, Any] = {"provider": provider, "recordId": record_id, "period": period, **extra}
    if basis is not None:
        subject["legalBasis"] = basis
        subject["consent"] = {"by": by, "date": "2026-02-01"} if by else None
    return AuditEvent(kind=kind, actorOin=PROVIDER_OIN, subject=subject).model_dump(exclude_none=True)


def test_counts_by_legal_basis_and_consent_and_lists_age_rule_rejections(audit_app: FastAPI,
                                                                         dev_pki: Path, public_key: Any) -> None:
    evs = [
        record("record-accepted", "r1", "toestemming", "ouder"),
        record("record-accepted", "r2", "toestemming", "both"),
        record("record-accepted", "r3", "toestemming", "jeugdige"),
        record("record-accepted", "r4", "wettelijke-verplichting", None),
        record("record-accepted", "r5", "wettelijke-verplichting", None),
        # a correction changes r1's basis; it is counted once, in its latest state
        record("record-corrected", "r1", "wettelijke-verplichting", None),
        # rejections: two for the consent age rule, one for something else
        record("record-rejected", "r6", "toestemming", "ouder", reasons=[{"code": "consent-age-rule"}]),
        record("record-rejected", "r7", "toestemming", "jeugdige", reasons=["consent-age-rule", "end-date"]),
        record("record-rejected", "r8", None, None, reasons=[{"code": "bsn-11-proef"}]),
        record("consent-withdrawn", "r2", None, None, removed=1),
        # other providers and periods stay out
        record("record-accepted", "x1", "toestemming", "ouder", provider="98000002"),
        record("record-accepted", "x2", "toestemming", "ouder", period="2025-H2"),
        record("record-rejected", "x3", "toestemming", "ouder", provider="98000002",
               reasons=["consent-age-rule"]),
    ]
    res = party_client(audit_app, dev_pki, "service-ingest").post("/v1/audit/entries", json={"events": evs})
    assert res.status_code == 201
    auditor = party_client(audit_app, dev_pki, "auditor")
    report = auditor.get("/v1/audit/consent-report", params={"provider": "98000001", "period": "2026-H1"})
    assert report.status_code == 200, report.text
    doc = report.json()
    assert doc["records"]["total"] == 5
    assert doc["records"]["byLegalBasis"] == [
        {"legalBasis": "toestemming", "consentBy": "both", "records": 1},
        {"legalBasis": "toestemming", "consentBy": "jeugdige", "records": 1},
        {"legalBasis": "wettelijke-verplichting", "consentBy": "n.v.t.", "records": 3},
    ]
    assert doc["corrections"] == 1
    assert doc["withdrawals"] == {"count": 1, "recordsRemoved": 1}
    assert doc["rejected"] == {"total": 3, "consentAgeRule": 2}
    rejected = doc["consentAgeRuleRejections"]
    assert [r["recordId"] for r in rejected] == ["r6", "r7"]
    assert [r["leafIndex"] for r in rejected] == [6, 7]
    assert rejected[1]["reasons"] == ["consent-age-rule", "end-date"]
    assert rejected[0]["consentBy"] == "ouder" and rejected[0]["consentDate"] == "2026-02-01"
    # the report says which signed tree it was computed from
    assert verify_checkpoint(doc["checkpoint"], public_key).tree_size == doc["treeSize"] == len(evs)
    # without a period: all periods of the provider
    every = auditor.get("/v1/audit/consent-report", params={"provider": "98000001"}).json()
    assert every["records"]["total"] == 6
    assert auditor.get("/v1/audit/consent-report", params={"provider": "98000001", "period": "H1"}).status_code == 400
    assert auditor.get("/v1/audit/consent-report").status_code == 400
