"""The log inside its own process: serialised appends, receipts, and the local sink.

``AuditLog`` is what the routes use: appends are taken one at a time (an
asyncio lock in front of the database lock, so waiting writers queue in the
event loop rather than in the thread pool or on a database connection), and
the database work runs in a worker thread so the event loop keeps serving
reads. Proofs and receipt encoding happen after the lock is released.

``LocalAuditSink`` lets the audit service log its own events (refused
requests) through the same path, under its own OIN.
"""

from __future__ import annotations

import asyncio
import base64
import weakref
from typing import Any

from anyio import to_thread

from services.audit.store import AppendResult, AuditStore
from ttp.audit_client import BackgroundAppender
from ttp.audit_events import AuditEvent


class AuditLog:
    """Async front of ``AuditStore``: one writer per process, database work off the loop."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())

    def _lock(self) -> asyncio.Lock:
        """The writer lock of the running loop (a server has one loop; the DB lock covers the rest)."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def append(self, events: list[AuditEvent], recorded_by: str, *, proofs: str = "all") -> dict[str, Any]:
        """Append durably; returns the receipt (see ``ttp.audit_client`` for its shape).

        ``proofs="last"`` proves only the last event (a batch's summary entry).
        """
        async with self._lock():
            result = await to_thread.run_sync(self.store.append, events, recorded_by)
        return await to_thread.run_sync(self._receipt, result, proofs == "last")

    def _receipt(self, result: AppendResult, last_only: bool = False) -> dict[str, Any]:
        if last_only:
            last = AppendResult.only_last(result)
            return receipt_document(result, self.store.proofs(last), proved=last)
        return receipt_document(result, self.store.proofs(result))


def receipt_document(
    result: AppendResult, proofs: list[list[bytes]], proved: AppendResult | None = None
) -> dict[str, Any]:
    """The JSON receipt of one append; each distinct hash is base64-encoded once.

    ``proved`` names the leaves ``proofs`` belong to when they are not all of them.
    """
    proved = proved or result
    encoded: dict[bytes, str] = {}

    def b64(h: bytes) -> str:
        s = encoded.get(h)
        if s is None:
            s = encoded[h] = base64.b64encode(h).decode()
        return s

    size = result.head.tree_size
    return {
        "leafIndexes": result.leaf_indexes,
        "appended": result.appended,
        "treeSize": size,
        "rootHash": b64(result.head.root_hash),
        "checkpoint": result.head.checkpoint,
        "inclusionProofs": [
            {"leafIndex": i, "treeSize": size, "leafHash": b64(h), "timestamp": ts,
             "hashes": [b64(p) for p in proof]}
            for i, h, ts, proof in zip(
                proved.leaf_indexes, proved.leaf_hashes, proved.timestamps, proofs, strict=True)
        ],
    }


class LocalAuditSink:
    """``AuditSink`` for the audit service's own events, appended in-process."""

    def __init__(self, audit_log: AuditLog, own_oin: str) -> None:
        self.audit_log = audit_log
        self.own_oin = own_oin
        self.background = BackgroundAppender(self.append)

    async def append(self, events: list[AuditEvent], *, proofs: str = "all") -> dict[str, Any]:
        return await self.audit_log.append(events, self.own_oin, proofs=proofs)

    def append_soon(self, events: list[AuditEvent]) -> None:
        self.background.submit(events)

    async def aclose(self, timeout: float = 5.0) -> None:
        await self.background.aclose(timeout)
