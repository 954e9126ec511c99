"""How a TTP service writes to the audit log: ``HttpAuditSink``, over mTLS.

Usage in a service's lifespan (ingest, aggregate, report)::

    sink = HttpAuditSink(settings, "ingest")
    app.state.audit_sink = sink
    try:
        yield
    finally:
        await sink.aclose()          # flushes queued append_soon events

On the hot path, one call per batch, and do not acknowledge before it returns::

    try:
        receipt = await sink.append(events)
    except AuditUnavailable as exc:  # log down, timed out, overloaded, bad receipt
        raise Problem(503, "The audit log is unavailable; nothing was stored, resend the batch.",
                      headers={"Retry-After": str(exc.retry_after)}) from exc

Give every event of a resendable batch an ``idempotencyKey`` (for example
``f"record-accepted:{agb}:{batchId}:{recordId}:{contentHash}"``): a resent batch then
gets the leaves already logged instead of duplicates.

The receipt (``POST /v1/audit/entries`` answer) is::

    {
      "leafIndexes": [int, ...],     # one per event, in the order sent
      "appended": int,               # how many were new (the rest were already logged)
      "treeSize": int,               # size of the log after this append
      "rootHash": "<base64>",        # its root
      "checkpoint": "<signed note>", # C2SP tlog-checkpoint for treeSize/rootHash
      "inclusionProofs": [           # one per event, in the order sent
        {"leafIndex": int, "treeSize": int, "leafHash": "<base64>",
         "timestamp": "<RFC 3339>", "hashes": ["<base64>", ...]}
      ]
    }

Before returning, ``append`` checks that the checkpoint is signed by the log
key and that a sample of the proofs leads to its root, so a service only
acknowledges what the log has provably committed to. ``append_soon`` is for
events nobody waits on (reads, refusals): a bounded queue drained by one
background task that coalesces events into batches and retries with backoff.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ttp.audit_events import AuditEvent
from ttp.audit_verify import verify_receipt
from ttp.checkpoint import CheckpointError, load_public_key
from ttp.logging_setup import request_id_var
from ttp.merkle import ProofError
from ttp.service_client import service_client
from ttp.settings import Settings

log = logging.getLogger("ttp.audit_client")

APPEND_PATH = "/audit/entries"
#: Proofs of a receipt that ``append`` verifies (first, last and a few more).
RECEIPT_SAMPLE = 4


class AuditError(Exception):
    """Appending to the audit log did not succeed."""


class AuditUnavailable(AuditError):
    """The log could not durably take the events; answer 503 and let the caller resend."""

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class AuditRejected(AuditError):
    """The log refused the events as invalid (a bug in the calling service); resending won't help."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"audit log refused the events ({status}): {problem.get('detail', '')}")
        self.status = status
        self.problem = problem


class BackgroundAppender:
    """A bounded buffer of fire-and-forget events, drained in batches by a background task.

    Bounded because an unreachable log must not grow a service's memory
    without limit: when full, new events are dropped and counted (and logged,
    without their content). That is the only place events can be lost, and only
    ones no response depended on. Events leave the buffer in order; a batch
    that fails (or whose task is cancelled) goes back to the front and is
    retried with exponential backoff. Each event without an idempotency key
    gets a unique one when buffered, so a retry after an ambiguous failure
    (the log committed, the answer was lost) cannot log it twice.

    The buffer is a plain deque rather than an ``asyncio.Queue`` so it is not
    tied to one event loop: the drain task is (re)started in whichever loop
    submits, which keeps it working under test clients that run each request
    in a loop of its own.
    """

    def __init__(
        self,
        append: Callable[[list[AuditEvent]], Awaitable[Any]],
        *,
        max_queue: int = 10_000,
        max_batch: int = 1_000,
        linger: float = 0.05,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        self._append = append
        self._buffer: deque[AuditEvent] = deque()
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._linger = linger
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self.dropped = 0
        self.sent = 0

    def submit(self, events: list[AuditEvent]) -> None:
        """Buffer events and make sure a drain task runs; never blocks, never raises."""
        for event in events:
            if len(self._buffer) >= self._max_queue:
                self.dropped += 1
                log.error("audit buffer full, event dropped", extra={"kind": event.kind,
                                                                    "dropped": self.dropped})
            else:
                if event.idempotencyKey is None:
                    event = event.model_copy(update={"idempotencyKey": f"soon:{uuid.uuid4().hex}"})
                self._buffer.append(event)
        self._ensure_task()

    def _ensure_task(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.error("audit events buffered outside an event loop; they wait for the next one")
            return
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._drain())

    async def _drain(self) -> None:
        """Append the buffer in batches, retrying failures; each batch first lingers for more events.

        The linger (50 ms by default) is what makes a batch out of reads that
        trickle in: without it, at a few dozen reads per second every read
        became an append of its own, and an append costs the log a
        transaction, a signed checkpoint and proofs whatever its size
        (3.3 ms of the audit service's CPU per read, against 0.6 ms when
        reads came in bursts). A read's entry is at most that much later.
        """
        delay = self._retry_initial
        while self._buffer:
            if self._linger > 0 and len(self._buffer) < self._max_batch:
                await asyncio.sleep(self._linger)
            batch = [self._buffer.popleft() for _ in range(min(self._max_batch, len(self._buffer)))]
            self._in_flight += len(batch)
            try:
                await self._append(batch)
                self.sent += len(batch)
                delay = self._retry_initial
            except AuditRejected as exc:
                self.dropped += len(batch)
                log.error("audit log rejected buffered events", extra={"status": exc.status,
                                                                       "count": len(batch)})
            except asyncio.CancelledError:
                self._buffer.extendleft(reversed(batch))
                raise
            except Exception as exc:  # any failure: put the batch back, wait, retry
                self._buffer.extendleft(reversed(batch))
                log.warning("audit append failed, retrying", extra={
                    "error_type": type(exc).__name__, "retry_in": delay, "count": len(batch)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
            finally:
                self._in_flight -= len(batch)

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every buffered event is appended; False if that took longer than ``timeout``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._buffer or self._in_flight:
            if self._buffer:
                self._ensure_task()
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def aclose(self, timeout: float = 5.0) -> None:
        """Flush what can be flushed in ``timeout``, then stop the drain task."""
        if not await self.flush(timeout):
            log.error("audit buffer not empty at shutdown", extra={"pending": len(self._buffer)})
        task, self._task = self._task, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def pending(self) -> int:
        return len(self._buffer)


class HttpAuditSink:
    """``AuditSink`` of every service but the log itself: POST /v1/audit/entries over mTLS.

    See the module docstring for the receipt shape and the error contract.
    """

    def __init__(
        self,
        settings: Settings,
        caller_service: str,
        *,
        client: httpx.AsyncClient | None = None,
        public_key: Ed25519PublicKey | None = None,
        max_queue: int = 10_000,
        timeout: float | None = None,
    ) -> None:
        self.settings = settings
        self.caller = caller_service
        self._client = client or service_client(settings, caller_service, "audit", timeout=timeout)
        if public_key is None:
            key_file = settings.pki / "audit-log.pub"
            public_key = load_public_key(key_file) if key_file.exists() else None
        self.public_key = public_key
        self.background = BackgroundAppender(self.append, max_queue=max_queue)

    async def append(self, events: Sequence[AuditEvent | dict[str, Any]], *, proofs: str = "all") -> dict[str, Any]:
        """Append in order and return the receipt once the log has committed the events.

        Raises ``AuditUnavailable`` if that cannot be established (connection
        error, timeout, 5xx/429, malformed or unverifiable receipt), and
        ``AuditRejected`` on a 4xx (the events are invalid).
        """
        if not events:
            raise ValueError("append needs at least one event")
        body = orjson.dumps({"events": [_event_dict(e) for e in events], "proofs": proofs})
        headers = {"content-type": "application/json", "x-request-id": request_id_var.get()}
        try:
            response = await self._client.post(APPEND_PATH, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise AuditUnavailable(f"audit log unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            retry = response.headers.get("retry-after", "5")
            raise AuditUnavailable(f"audit log answered {response.status_code}",
                                   int(retry) if retry.isdigit() else 5)
        try:
            doc = orjson.loads(response.content)  # receipts run to megabytes: orjson, not json
        except orjson.JSONDecodeError as exc:
            raise AuditUnavailable("audit log answered with a body that is not JSON") from exc
        if response.status_code >= 400:
            raise AuditRejected(response.status_code, doc if isinstance(doc, dict) else {})
        self._check_receipt(doc, len(events), 1 if proofs == "last" else len(events))
        receipt: dict[str, Any] = doc
        return receipt

    def _check_receipt(self, doc: Any, count: int, proved: int) -> None:
        try:
            if len(doc["leafIndexes"]) != count or len(doc["inclusionProofs"]) != proved:
                raise AuditUnavailable("audit receipt does not cover every event")
            if self.public_key is not None:
                verify_receipt(doc, self.public_key, sample=RECEIPT_SAMPLE)
        except (KeyError, TypeError, ValueError, binascii.Error, CheckpointError, ProofError) as exc:
            raise AuditUnavailable(f"audit receipt does not verify: {exc}") from exc

    def append_soon(self, events: list[AuditEvent]) -> None:
        """Queue events for a background append (reads, refusals); see ``BackgroundAppender``."""
        self.background.submit(events)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Flush queued events (up to ``timeout``) and close the connection pool."""
        await self.background.aclose(timeout)
        await self._client.aclose()


def _event_dict(event: AuditEvent | dict[str, Any]) -> dict[str, Any]:
    """Events as JSON objects; the hot path (ingest, thousands per batch) passes ready dicts."""
    if isinstance(event, dict):
        return {k: v for k, v in event.items() if v is not None}
    return event.model_dump(exclude_none=True)
