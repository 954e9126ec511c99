"""Which delivered batches the log shows as stored, and which as prepared and abandoned.

A batch is logged in two steps. Ingest appends its record entries and its
``batch-received`` entry before aggregate stores anything (so no row exists
without its audit entry, and a resend is exact: see the docstrings of
``services/ingest/pipeline.py`` and ``services/aggregate/store.py``); then
aggregate, after the transaction that stored the rows, appends
``batch-committed``. Logging acceptance only at the commit was the other
choice, and it would have broken that order: rows would be stored before any
entry said under which legal basis they came.

Aggregate keeps an outbox for the second entry (``commit_logged_at`` of the
batch row), so a commit whose entry could not be appended at once is logged
later, and a ``batch-committed`` entry never goes missing for a stored batch.
Both entries carry the batch's ``recordsDigest`` (:func:`records_digest`),
which ties the commit to the content it stored.

For an auditor, then, a batch is one of:

* ``committed``: a ``batch-committed`` entry with the same provider, batchId
  and digest follows its ``batch-received``;
* ``nothing-to-store``: every record was rejected, so nothing was committed;
* ``prepared-not-committed``: received and audited, never stored (the TTP
  never acknowledged it; the provider was told to resend). Its record entries
  do not count as delivered until a resend commits it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

COMMITTED = "committed"
NOTHING_TO_STORE = "nothing-to-store"
PREPARED_NOT_COMMITTED = "prepared-not-committed"


def records_digest(pairs: Iterable[tuple[str, str]]) -> str:
    """SHA-256 over a batch's (recordId, content hash) pairs, in batch order."""
    h = hashlib.sha256()
    for record_id, content_hash in pairs:
        h.update(f"{record_id}\x00{content_hash}\n".encode())
    return h.hexdigest()


@dataclass
class BatchState:
    provider: str
    batch_id: str
    received: list[int] = field(default_factory=list)  # leaf indexes of its batch-received entries
    digests: set[str] = field(default_factory=set)
    stores_records: bool = False
    committed: int | None = None  # leaf index of its batch-committed entry

    @property
    def state(self) -> str:
        if self.committed is not None:
            return COMMITTED
        return PREPARED_NOT_COMMITTED if self.stores_records else NOTHING_TO_STORE


class BatchLedger:
    """Fold ``batch-received`` and ``batch-committed`` entries into one state per batch."""

    def __init__(self) -> None:
        self.batches: dict[tuple[str, str], BatchState] = {}
        self._commits: dict[tuple[str, str, str], int] = {}

    def add(self, index: int, kind: str, subject: dict[str, Any]) -> None:
        if kind not in ("batch-received", "batch-committed"):
            return
        key = (str(subject.get("provider")), str(subject.get("batchId")))
        digest = str(subject.get("recordsDigest"))
        if kind == "batch-committed":
            self._commits.setdefault((*key, digest), index)
            batch = self.batches.get(key)
            if batch is not None and digest in batch.digests and batch.committed is None:
                batch.committed = index
            return
        batch = self.batches.setdefault(key, BatchState(*key))
        batch.received.append(index)
        batch.digests.add(digest)
        counts = subject.get("counts") or {}
        stored = sum(int(counts.get(k, 0)) for k in ("accepted", "duplicates", "corrections"))
        batch.stores_records = batch.stores_records or stored > 0
        if batch.committed is None:
            batch.committed = self._commits.get((*key, digest))

    def is_committed(self, provider: str, batch_id: str) -> bool:
        batch = self.batches.get((provider, batch_id))
        return batch is not None and batch.state == COMMITTED

    def summary(self) -> dict[str, Any]:
        states = [b.state for b in self.batches.values()]
        return {
            "committed": states.count(COMMITTED),
            "nothingToStore": states.count(NOTHING_TO_STORE),
            "preparedNotCommitted": [
                {"provider": b.provider, "batchId": b.batch_id, "leafIndexes": b.received}
                for b in sorted(self.batches.values(), key=lambda b: b.received[0])
                if b.state == PREPARED_NOT_COMMITTED
            ],
        }
