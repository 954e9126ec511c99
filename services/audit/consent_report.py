"""The auditor's consent report: under which legal basis and whose consent records came in.

Built from the log itself (not from another service's data), so every number
can be traced to entries an auditor can prove against a signed checkpoint;
the report names the tree size and checkpoint it was computed at.

It reads these entry subjects, which ingest writes:

* ``record-accepted`` / ``record-corrected``: ``provider`` (AGB), ``recordId``,
  ``contentHash``, ``legalBasis`` (``wettelijke-verplichting`` |
  ``toestemming``), ``consent`` (``{"by": "jeugdige"|"ouder"|"both", "date":
  "YYYY-MM-DD"}`` or null), ``period``.
* ``record-rejected``: ``provider``, ``recordId``, ``reasons`` (codes, as
  strings or ``{"code": ...}`` objects), optionally ``legalBasis``,
  ``consent`` and ``period``. A reason whose code starts with ``consent``
  (for example ``consent-age-rule``) means the consent did not meet the age
  rule (under 12 the parent, 12 to 15 both, 16 and over the young person).
* ``consent-withdrawn``: ``provider``, ``removed`` (number of records removed).

Records are counted once, in their latest accepted or corrected state.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from services.audit.store import AuditStore

NOT_APPLICABLE = "n.v.t."


def _codes(reasons: Any) -> list[str]:
    out: list[str] = []
    for r in reasons if isinstance(reasons, list) else []:
        if isinstance(r, str):
            out.append(r)
        elif isinstance(r, dict) and isinstance(r.get("code"), str):
            out.append(r["code"])
    return out


def _consent(subject: dict[str, Any]) -> tuple[str, str | None]:
    consent = subject.get("consent")
    if isinstance(consent, dict):
        by = consent.get("by")
        date = consent.get("date")
        return (str(by) if by else NOT_APPLICABLE, str(date) if date else None)
    return NOT_APPLICABLE, None


def build_consent_report(store: AuditStore, provider: str, period: str | None) -> dict[str, Any]:
    """Counts by legal basis and consent type, plus every consent-rule rejection, for one provider."""
    head = store.head()
    latest: dict[str, tuple[str, str]] = {}
    corrections = withdrawals = removed = rejected = 0
    consent_rejections: list[dict[str, Any]] = []
    for entry in store.iter_entries(head.tree_size, provider=provider, period=period):
        doc = orjson.loads(entry.body)
        kind, subject = doc["kind"], doc["subject"]
        if kind in ("record-accepted", "record-corrected"):
            basis = str(subject.get("legalBasis") or "onbekend")
            latest[str(subject.get("recordId"))] = (basis, _consent(subject)[0])
            corrections += kind == "record-corrected"
        elif kind == "record-rejected":
            rejected += 1
            codes = _codes(subject.get("reasons"))
            if any(c.startswith("consent") for c in codes):
                by, date = _consent(subject)
                consent_rejections.append({
                    "recordId": subject.get("recordId"),
                    "leafIndex": entry.index,
                    "timestamp": doc["timestamp"],
                    "reasons": codes,
                    "legalBasis": subject.get("legalBasis"),
                    "consentBy": by,
                    "consentDate": date,
                })
        elif kind == "consent-withdrawn":
            withdrawals += 1
            n = subject.get("removed")
            removed += n if isinstance(n, int) else 0
    counts = Counter(latest.values())
    return {
        "provider": provider,
        "period": period,
        "treeSize": head.tree_size,
        "checkpoint": head.checkpoint,
        "records": {
            "total": len(latest),
            "byLegalBasis": [
                {"legalBasis": basis, "consentBy": by, "records": n}
                for (basis, by), n in sorted(counts.items())
            ],
        },
        "corrections": corrections,
        "withdrawals": {"count": withdrawals, "recordsRemoved": removed},
        "rejected": {"total": rejected, "consentAgeRule": len(consent_rejections)},
        "consentAgeRuleRejections": consent_rejections,
    }
