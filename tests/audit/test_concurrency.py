"""Concurrent appends from several services lose no entry and keep one order.

Writers are separate engines (own connections, as separate processes have),
separate processes, and concurrent requests in one process; the database
lock on the tree head is what must serialise them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import orjson

from services.audit.sink import AuditLog
from services.audit.store import AuditStore
from tests.audit.conftest import events, open_store
from tests.audit.test_merkle import mth
from ttp.checkpoint import verify_checkpoint
from ttp.merkle import verify_consistency

WRITERS = 4
BATCHES = 6
PER_BATCH = 15


def check_one_order(store: AuditStore, results: list[tuple[int, int, list[int]]], public_key: Any) -> None:
    """Every event exactly once, batches contiguous, each writer's batches in its own order."""
    head = store.head()
    total = len(results) * PER_BATCH
    assert head.tree_size == total
    docs = [orjson.loads(e.body) for e in store.iter_entries(total)]
    assert [d["index"] for d in docs] == list(range(total))
    ids = [d["subject"]["recordId"] for d in docs]
    assert len(set(ids)) == total
    for writer, batch, indexes in results:
        assert indexes == list(range(indexes[0], indexes[0] + PER_BATCH))
        assert [ids[i] for i in indexes] == [f"w{writer}b{batch}-{k}" for k in range(PER_BATCH)]
    for writer in range(WRITERS):
        firsts = [ix[0] for w, _b, ix in sorted(results) if w == writer]
        assert firsts == sorted(firsts)
    data = [e.body for e in store.iter_entries(total)]
    assert head.root_hash == mth(data)
    # the checkpoint after every batch exists, verifies, and each extends the one before
    ends = sorted(ix[-1] + 1 for _w, _b, ix in results)
    previous = (0, mth([]))
    for size in ends:
        note = store.checkpoint(size)
        assert note is not None
        cp = verify_checkpoint(note, public_key)
        assert cp.root_hash == mth(data[:size])
        verify_consistency(previous[0], size, store.consistency_proof(previous[0], size), previous[1], cp.root_hash)
        previous = (size, cp.root_hash)


def test_writers_with_their_own_connections(store: AuditStore, db_url: str, dev_pki: Path, public_key: Any) -> None:
    start = threading.Barrier(WRITERS)
    results: list[tuple[int, int, list[int]]] = []
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        own = open_store(db_url, dev_pki)  # a separate engine and pool, like another process
        try:
            start.wait()
            for b in range(BATCHES):
                res = own.append(events(PER_BATCH, f"w{w}b{b}"), f"000000995000000000{w:02d}")
                results.append((w, b, res.leaf_indexes))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            own.engine.dispose()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == WRITERS * BATCHES
    check_one_order(store, results, public_key)


def _process_writer(url: str, pki: str, w: int, out: Any) -> None:
    store = open_store(url, Path(pki))
    try:
        for b in range(BATCHES):
            res = store.append(events(PER_BATCH, f"w{w}b{b}"), f"000000995000000000{w:02d}")
            out.put((w, b, res.leaf_indexes))
    finally:
        store.engine.dispose()


def test_writers_in_separate_processes(store: AuditStore, db_url: str, dev_pki: Path, public_key: Any) -> None:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    store.engine.dispose()  # no pooled connection may cross the fork
    procs = [ctx.Process(target=_process_writer, args=(db_url, str(dev_pki), w, out)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in range(WRITERS * BATCHES)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    check_one_order(store, results, public_key)


async def test_concurrent_requests_in_one_process(store: AuditStore, public_key: Any) -> None:
    audit_log = AuditLog(store)

    async def writer(w: int) -> list[tuple[int, int, list[int]]]:
        out = []
        for b in range(BATCHES):
            receipt = await audit_log.append(events(PER_BATCH, f"w{w}b{b}"), f"000000995000000000{w:02d}")
            out.append((w, b, receipt["leafIndexes"]))
        return out

    results = [r for rs in await asyncio.gather(*(writer(w) for w in range(WRITERS))) for r in rs]
    check_one_order(store, results, public_key)
