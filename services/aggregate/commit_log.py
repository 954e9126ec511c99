"""The ``batch-committed`` entry: aggregate tells the log that a batch's rows are stored.

Appended after the commit's transaction, so it can only ever follow stored
rows; the batch row's ``commit_logged_at`` is the outbox that guarantees it is
appended at all. The commit route tries at once; when the log cannot take it
then, the commit still stands (its rows were audited before they were
stored) and :func:`keep_commits_logged` appends it later, on this run or the
next. Idempotency keys make a repeat harmless. See ``ttp.audit_batches`` for
what an auditor makes of a batch with and without this entry.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from services.aggregate import store
from ttp.audit_events import AuditEvent
from ttp.registry import Registry

log = logging.getLogger("ttp.aggregate.commit_log")

#: Seconds between retries of batch-committed entries the log could not take at commit.
RETRY_INTERVAL = 5.0


def own_oin(registry: Registry) -> str:
    """Aggregate's OIN in the registry: the actor of the entries it writes itself."""
    for party in registry.all():
        if party.role == "service" and party.slug == "service-aggregate":
            return party.oin
    raise LookupError("the party registry has no service-aggregate")


def committed_event(actor: str, batch: store.CommittedBatch) -> AuditEvent:
    outcome = batch.outcome
    return AuditEvent(
        kind="batch-committed", actorOin=actor,
        subject={"provider": batch.provider, "batchId": batch.batch_id, "recordsDigest": batch.records_digest,
                 "stored": {"accepted": len(outcome.accepted), "corrections": len(outcome.corrections),
                            "duplicates": len(outcome.duplicates), "refused": len(outcome.refused)}},
        idempotencyKey=f"batch-committed:{batch.provider}:{batch.batch_id}:{batch.records_digest}",
    )


async def log_commits(app: FastAPI, provider: str | None = None, batch_id: str | None = None) -> int:
    """Append ``batch-committed`` for committed batches not yet logged; how many were logged.

    Never raises for an unavailable log: the outbox keeps the batch for the next try.
    """
    engine = app.state.engine
    batches = await run_in_threadpool(store.unlogged_commits, engine, provider, batch_id)
    if not batches:
        return 0
    try:
        actor = own_oin(app.state.registry)
        await app.state.audit_sink.append([committed_event(actor, b) for b in batches], proofs="last")
    except Exception as exc:
        log.warning("batch-committed entries not logged yet; retried later",
                    extra={"error_type": type(exc).__name__, "count": len(batches)})
        return 0
    await run_in_threadpool(store.mark_commits_logged, engine, batches, dt.datetime.now(dt.UTC))
    return len(batches)


async def keep_commits_logged(app: FastAPI, interval: float = RETRY_INTERVAL) -> None:
    """Drain the outbox now and every ``interval`` seconds (commits left by a failure or a crash)."""
    while True:
        try:
            while await log_commits(app):
                pass
        except Exception as exc:  # a database hiccup: the next round tries again
            log.warning("batch-committed outbox round failed", extra={"error_type": type(exc).__name__})
        await asyncio.sleep(interval)
