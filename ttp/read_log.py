"""Every feed and report read is durably logged before its answer leaves the service.

The spec's promise is that the log says who saw which output. A read whose
entry is only queued in memory breaks it twice: an audit log that cannot
write still lets the output out, and a crash of the serving process loses
the queued entries of outputs already served. So a read route calls
:func:`log_read` before it sends anything, and that returns only once the
read's entry is durable, in one of two places:

1. the audit log itself (its receipt, checked by ``HttpAuditSink``), or
2. when the log cannot take it, a local spool: a small SQLite file per
   service (``<home>/spool/<service>-reads.sqlite3``, WAL with
   ``synchronous=FULL``, so every commit is fsync'd) that a background task
   delivers to the log, on this run or after a restart.

If neither takes the entry, the read answers 503 with Retry-After and nothing
is served.

Reads are group-committed: a read joins the batch being gathered, one batch
is appended at a time, and every read of the batch is released by the same
durable receipt. An append costs the log a transaction and a signed
checkpoint whatever its size, so batching keeps the log's CPU per read low;
the price is that a read waits for the append in flight and a short linger
(a few milliseconds) instead of nothing. Each entry gets a unique
idempotency key when it is recorded, so an append that timed out but did
commit, then spooled and delivered again, is still logged once.

While the spool holds undelivered entries, new reads go straight to the
spool (the log was just found unable to write; waiting for it on every read
would stall them all), until the delivery task has emptied it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from anyio import to_thread
from fastapi import Request

from ttp.audit_client import AuditRejected
from ttp.audit_events import AuditEvent
from ttp.problems import Problem

log = logging.getLogger("ttp.read_log")

#: Seconds a read lingers for others to share its append (the group commit window).
LINGER = 0.003
#: Largest batch of read entries in one append (and in one delivery from the spool).
MAX_BATCH = 500
#: How long one append may take before the batch goes to the spool instead.
APPEND_TIMEOUT = 2.0
#: Undelivered entries the spool holds at most; beyond that reads answer 503.
SPOOL_MAX = 100_000
RETRY_AFTER = 5


class ReadNotLogged(Exception):
    """Neither the log nor the local spool took the read's entry: the read must not be served."""


class ReadSpool:
    """Read entries the log could not take yet, in a local SQLite file, fsync'd at every commit.

    SQLite rather than an append-only file because entries leave it in any
    order a delivery confirms them, and a torn last write of a crash is rolled
    back by its journal instead of leaving half a line. The file holds what
    read entries hold (organisation ids, periods, output names), no personal
    data; it is still made readable by the service's user only.
    """

    def __init__(self, path: Path, max_entries: int = SPOOL_MAX) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self.path = path
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        self.pending = int(self._conn.execute("SELECT count(*) FROM spool").fetchone()[0])

    def put(self, events: list[AuditEvent]) -> None:
        """Store ``events`` durably (one fsync'd transaction) or raise."""
        with self._lock:
            if self.pending + len(events) > self.max_entries:
                raise ReadNotLogged(f"read spool full ({self.pending} entries undelivered)")
            rows = [(orjson.dumps(e.model_dump(exclude_none=True)),) for e in events]
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("INSERT INTO spool (body) VALUES (?)", rows)
            self.pending += len(events)

    def oldest(self, limit: int) -> list[tuple[int, AuditEvent]]:
        with self._lock:
            rows = self._conn.execute("SELECT id, body FROM spool ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [(i, AuditEvent.model_validate(orjson.loads(body))) for i, body in rows]

    def remove(self, ids: list[int]) -> None:
        with self._lock:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i in ids])
            self.pending = int(self._conn.execute("SELECT count(*) FROM spool").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


@dataclass
class _Group:
    """The reads of one event loop waiting for their batch (futures belong to one loop)."""

    pending: list[tuple[AuditEvent, asyncio.Future[None]]] = field(default_factory=list)
    flusher: asyncio.Task[None] | None = None


class ReadLog:
    """Group commit of read entries to the audit log, with a durable local spool behind it."""

    def __init__(
        self,
        append: Callable[[list[AuditEvent]], Awaitable[Any]],
        spool: ReadSpool | None,
        *,
        linger: float = LINGER,
        max_batch: int = MAX_BATCH,
        append_timeout: float = APPEND_TIMEOUT,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        self._append = append
        self.spool = spool
        self._linger = linger
        self._max_batch = max_batch
        self._append_timeout = append_timeout
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Group] = weakref.WeakKeyDictionary()
        self._delivery: asyncio.Task[None] | None = None
        self.appends = 0
        self.delivered = 0

    async def record(self, event: AuditEvent) -> None:
        """Return once ``event`` is durable in the log or the spool; raise ``ReadNotLogged`` otherwise."""
        if event.idempotencyKey is None:
            event = event.model_copy(update={"idempotencyKey": f"read:{uuid.uuid4().hex}"})
        loop = asyncio.get_running_loop()
        group = self._groups.get(loop)
        if group is None:
            group = self._groups[loop] = _Group()
        done: asyncio.Future[None] = loop.create_future()
        group.pending.append((event, done))
        if group.flusher is None or group.flusher.done():
            group.flusher = loop.create_task(self._flush(group))
        await asyncio.shield(done)

    async def _flush(self, group: _Group) -> None:
        """Make the group's reads durable batch by batch, one append at a time."""
        try:
            while group.pending:
                if self._linger > 0 and len(group.pending) < self._max_batch:
                    await asyncio.sleep(self._linger)
                batch, group.pending = group.pending[: self._max_batch], group.pending[self._max_batch :]
                error = await self._make_durable([event for event, _ in batch])
                for _, done in batch:
                    if done.done():
                        continue
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(ReadNotLogged(str(error)))
        finally:  # cancelled at shutdown: nobody may be left waiting for a batch that will not come
            for _, done in group.pending:
                if not done.done():
                    done.set_exception(ReadNotLogged("the service is shutting down"))
            group.pending = []

    async def _make_durable(self, events: list[AuditEvent]) -> Exception | None:
        """Append ``events`` to the log, or spool them; the error if neither took them."""
        if self.spool is None or self.spool.pending == 0:
            try:
                await asyncio.wait_for(self._append(events), self._append_timeout)
                self.appends += 1
                return None
            except AuditRejected as exc:  # invalid entries (a bug): spooling them would not help
                log.error("audit log rejected read entries", extra={"status": exc.status, "count": len(events)})
                return exc
            except Exception as exc:
                log.warning("audit log unavailable for read entries, spooling them",
                            extra={"error_type": type(exc).__name__, "count": len(events)})
                if self.spool is None:
                    return exc
        try:
            await to_thread.run_sync(self.spool.put, events)
        except Exception as exc:
            log.error("read entries neither logged nor spooled; reads refused",
                      extra={"error_type": type(exc).__name__, "count": len(events)})
            return exc
        self.ensure_delivery()
        return None

    def ensure_delivery(self) -> None:
        """Start delivering the spool to the log, unless a delivery runs (in this loop) already."""
        if self.spool is None or self.spool.pending == 0:
            return
        loop = asyncio.get_running_loop()
        task = self._delivery
        if task is None or task.done() or task.get_loop() is not loop:
            self._delivery = loop.create_task(self._deliver(self.spool))

    async def _deliver(self, spool: ReadSpool) -> None:
        """Append spooled entries oldest first, with backoff while the log cannot take them."""
        delay = self._retry_initial
        while spool.pending:
            rows = await to_thread.run_sync(spool.oldest, self._max_batch)
            if not rows:
                break
            try:
                await asyncio.wait_for(self._append([event for _, event in rows]), self._append_timeout)
            except AuditRejected as exc:
                # Entries the log will never take (a bug, logged loudly); keeping them would block the rest.
                log.error("audit log rejected spooled read entries; removed from the spool",
                          extra={"status": exc.status, "count": len(rows)})
            except Exception as exc:
                log.warning("spooled read entries not delivered yet, retrying",
                            extra={"error_type": type(exc).__name__, "retry_in": delay, "count": len(rows)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            else:
                self.delivered += len(rows)
                delay = self._retry_initial
            await to_thread.run_sync(spool.remove, [i for i, _ in rows])
        log.info("read spool delivered", extra={"delivered": self.delivered})

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the spool is delivered; False if that took longer than ``timeout``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.spool is not None and self.spool.pending:
            self.ensure_delivery()
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def aclose(self, timeout: float = 5.0) -> None:
        """Deliver what can be delivered in ``timeout``; the rest waits in the spool for the next start."""
        if not await self.flush(timeout):
            log.warning("read entries left in the spool at shutdown; delivered at the next start",
                        extra={"pending": self.spool.pending if self.spool else 0})
        task, self._delivery = self._delivery, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.spool is not None:
            self.spool.close()


def spool_path(home: Path, service: str) -> Path:
    """Where a service keeps read entries the log has not taken yet."""
    return home / "spool" / f"{service}-reads.sqlite3"


def open_read_log(sink: Any, home: Path, service: str) -> ReadLog:
    """The read log of a service over its audit sink, delivering what a previous run left spooled.

    Call from the service's lifespan, inside its event loop. A spool that
    cannot be opened is logged and left out: reads are then served only while
    the log itself takes their entries.
    """
    spool: ReadSpool | None
    try:
        spool = ReadSpool(spool_path(home, service))
    except (OSError, sqlite3.Error) as exc:
        log.error("read spool unavailable; reads depend on the audit log alone",
                  extra={"error_type": type(exc).__name__})
        spool = None

    async def append(events: list[AuditEvent]) -> Any:
        return await sink.append(events, proofs="last")

    read_log = ReadLog(append, spool)
    if spool is not None and spool.pending:
        log.info("delivering read entries spooled by an earlier run", extra={"pending": spool.pending})
        read_log.ensure_delivery()
    return read_log


async def log_read(request: Request, event: AuditEvent) -> None:
    """Make a read's entry durable before its output is sent; 503 (nothing served) if it cannot be."""
    read_log: ReadLog = request.app.state.read_log
    try:
        await read_log.record(event)
    except ReadNotLogged as exc:
        raise Problem(503, "This read cannot be logged right now, so nothing was served; try again shortly.",
                      headers={"Retry-After": str(RETRY_AFTER)}) from exc
