"""The auditor's consent report: under which legal basis and whose consent records came in.

Built from the log itself (not from another service's data), so every number
can be traced to entries an auditor can prove against a signed checkpoint;
the report names the tree size and checkpoint it was computed at.

It reads the entry subjects ingest writes:

* ``record-accepted`` / ``record-corrected``: ``provider`` (AGB), ``recordId``,
  ``period``, ``legalBasis`` (``wettelijke-verplichting`` | ``toestemming``),
  ``consentBy`` (``jeugdige`` | ``ouder`` | ``beide``, or null) and ``consentOn``.
* ``record-rejected``: ``provider``, ``recordId``, ``codes`` (the rule codes
  that failed) and, when ingest could derive it, ``period``. A code starting
  with ``consent-age`` means the consent did not meet the age rule (under 12
  the parent, 12 to 15 both, 16 and over the young person alone).
* ``consent-withdrawn``: ``provider``, ``removed`` (records removed) and
  ``periods`` (the periods they belonged to).
* ``record-withdrawn``: ``provider``, ``recordId``, ``period`` and ``reason``
  (``period-redelivery``: a re-delivery of the period left the record out);
  the record no longer counts.

* ``batch-received`` / ``batch-committed``: which batches aggregate stored
  (``ttp.audit_batches``). A record counts as delivered only when the batch
  that logged it was committed; records of a batch prepared and never
  committed are counted apart (``records.pendingCommit``) and the batch is
  listed under ``batches.preparedNotCommitted``, until a resend commits it.

Records are counted once, in their latest accepted or corrected state. For a
given period, rejections that carry no period cannot be attributed to one;
they are listed (with ``"period": null``) and counted apart, never dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson

from services.audit.store import AuditStore, StoredEntry
from ttp.audit_batches import BatchLedger

NOT_APPLICABLE = "n.v.t."
AGE_RULE_PREFIX = "consent-age"


def _codes(subject: dict[str, Any]) -> list[str]:
    codes = subject.get("codes")
    return [c for c in codes if isinstance(c, str)] if isinstance(codes, list) else []


class _Tally:
    def __init__(self, period: str | None) -> None:
        self.period = period
        self.latest: dict[str, tuple[str, str, str]] = {}
        self.batches = BatchLedger()
        self.corrections = self.withdrawals = self.removed = 0
        self.rejected = self.rejected_without_period = 0
        self.age_rule: list[dict[str, Any]] = []

    def add(self, entries: Iterable[StoredEntry]) -> None:
        for entry in entries:
            doc = orjson.loads(entry.body)
            kind, subject = doc["kind"], doc["subject"]
            self.batches.add(entry.index, kind, subject)
            if kind in ("record-accepted", "record-corrected"):
                basis = str(subject.get("legalBasis") or "onbekend")
                self.latest[str(subject.get("recordId"))] = (
                    basis, str(subject.get("consentBy") or NOT_APPLICABLE), str(subject.get("batchId")))
                self.corrections += kind == "record-corrected"
            elif kind == "record-withdrawn":
                self.latest.pop(str(subject.get("recordId")), None)
            elif kind == "record-rejected":
                self._rejection(entry.index, doc["timestamp"], subject)
            elif kind == "consent-withdrawn":
                periods = subject.get("periods")
                if self.period is None or (isinstance(periods, list) and self.period in periods):
                    self.withdrawals += 1
                    n = subject.get("removed")
                    self.removed += n if isinstance(n, int) else 0

    def _rejection(self, index: int, timestamp: str, subject: dict[str, Any]) -> None:
        period = subject.get("period")
        self.rejected += 1
        if self.period is not None and period is None:
            self.rejected_without_period += 1
        codes = _codes(subject)
        if any(c.startswith(AGE_RULE_PREFIX) for c in codes):
            self.age_rule.append({"recordId": subject.get("recordId"), "leafIndex": index,
                                  "timestamp": timestamp, "period": period, "codes": codes})


def build_consent_report(store: AuditStore, provider: str, period: str | None) -> dict[str, Any]:
    """Counts by legal basis and consent type, plus every consent age-rule rejection, for one provider."""
    head = store.head()
    tally = _Tally(period)
    tally.add(store.iter_entries(head.tree_size, provider=provider, period=period))
    if period is not None:  # rejections and withdrawals that name no single period
        tally.add(store.iter_entries(head.tree_size, provider=provider, without_period=True))
    tally.age_rule.sort(key=lambda r: r["leafIndex"])
    delivered = [(basis, by) for basis, by, batch in tally.latest.values()
                 if tally.batches.is_committed(provider, batch)]
    counts = Counter(delivered)
    return {
        "provider": provider,
        "period": period,
        "treeSize": head.tree_size,
        "checkpoint": head.checkpoint,
        "records": {
            "total": len(delivered),
            "pendingCommit": len(tally.latest) - len(delivered),
            "byLegalBasis": [
                {"legalBasis": basis, "consentBy": by, "records": n}
                for (basis, by), n in sorted(counts.items())
            ],
        },
        "batches": tally.batches.summary(),
        "corrections": tally.corrections,
        "withdrawals": {"count": tally.withdrawals, "recordsRemoved": tally.removed},
        "rejected": {"total": tally.rejected, "withoutPeriod": tally.rejected_without_period,
                     "consentAgeRule": len(tally.age_rule)},
        "consentAgeRuleRejections": tally.age_rule,
    }
