"""The durable log on SQLite and PostgreSQL: appends, idempotency, stored subtrees, proofs."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from services.audit import store as store_module
from services.audit.models import NODE_STRIDE, Entry, Node
from services.audit.store import AuditStore, make_audit_engine
from tests.audit.conftest import INGEST_OIN, events
from tests.audit.test_merkle import mth, path, proof
from ttp.checkpoint import verify_checkpoint
from ttp.merkle import leaf_hash, root_from_leaf_hashes, verify_consistency, verify_inclusion


def bodies(store: AuditStore) -> list[bytes]:
    return [e.body for e in store.iter_entries(store.head().tree_size)]


def test_append_assigns_contiguous_indexes_and_signs_the_rfc_root(store: AuditStore, public_key: Any) -> None:
    first = store.append(events(5, "a"), INGEST_OIN)
    second = store.append(events(12, "b"), INGEST_OIN)
    assert first.leaf_indexes == list(range(5))
    assert second.leaf_indexes == list(range(5, 17))
    assert (first.appended, second.appended) == (5, 12)
    data = bodies(store)
    head = store.head()
    assert head.tree_size == 17
    assert head.root_hash == mth(data)
    cp = verify_checkpoint(head.checkpoint, public_key)
    assert (cp.tree_size, cp.root_hash) == (17, mth(data))
    # each stored entry is canonical JSON carrying its index, and its leaf hash is stored
    for i, e in enumerate(store.iter_entries(17)):
        doc = orjson.loads(e.body)
        assert doc["index"] == i and doc["recordedBy"] == INGEST_OIN
        assert e.leaf_hash == leaf_hash(e.body)
        assert orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) == e.body


def test_receipt_proofs_of_a_batch_are_the_rfc_paths(store: AuditStore) -> None:
    store.append(events(9, "a"), INGEST_OIN)
    result = store.append(events(23, "b"), INGEST_OIN)
    data = bodies(store)
    proofs = store.proofs(result)
    for i, p in zip(result.leaf_indexes, proofs, strict=True):
        assert p == path(i, data)
        verify_inclusion(leaf_hash(data[i]), i, 32, p, mth(data))


def test_idempotent_resend_adds_nothing_and_proves_the_old_leaves(store: AuditStore) -> None:
    batch = events(40, "a")
    first = store.append(batch, INGEST_OIN)
    store.append(events(7, "b"), INGEST_OIN)
    again = store.append(batch, INGEST_OIN)
    assert again.appended == 0
    assert again.leaf_indexes == first.leaf_indexes
    assert again.leaf_hashes == first.leaf_hashes
    assert again.timestamps == first.timestamps
    assert store.head().tree_size == 47
    data = bodies(store)
    for i, p in zip(again.leaf_indexes, store.proofs(again), strict=True):
        assert p == path(i, data)
    # a mixed batch: some old, some new, and a key repeated inside the batch
    mixed = [*batch[:3], *events(2, "c"), events(2, "c")[0]]
    res = store.append(mixed, INGEST_OIN)
    assert res.appended == 2
    assert res.leaf_indexes == [0, 1, 2, 47, 48, 47]
    data = bodies(store)
    for i, p in zip(res.leaf_indexes, store.proofs(res), strict=True):
        verify_inclusion(leaf_hash(data[i]), i, len(data), p, mth(data))


def test_events_without_key_are_always_appended(store: AuditStore) -> None:
    batch = events(3, "x", keyed=False)
    store.append(batch, INGEST_OIN)
    store.append(batch, INGEST_OIN)
    assert store.head().tree_size == 6


def test_stored_subtrees_are_exactly_the_complete_nodes_at_stored_levels(store: AuditStore) -> None:
    for n in (3, 13, 1, 30, 64, 9):
        store.append(events(n, f"b{n}"), INGEST_OIN)
    data = bodies(store)
    size = len(data)
    with store.engine.connect() as conn:
        nodes = {(lv, ix): h for lv, ix, h in conn.execute(select(Node.level, Node.idx, Node.hash))}
        count = conn.execute(select(func.count()).select_from(Entry)).scalar_one()
    assert count == size == 120
    expected = {
        (lv, ix) for lv in range(NODE_STRIDE, size.bit_length(), NODE_STRIDE) for ix in range(size >> lv)
    }
    assert set(nodes) == expected
    for (lv, ix), h in nodes.items():
        assert h == mth(data[ix << lv : (ix + 1) << lv])


def test_proofs_and_roots_for_every_past_size(store: AuditStore, public_key: Any) -> None:
    """One leaf per append on a small log: every size has a checkpoint; check all pairs."""
    sizes = [1, 1, 2, 1, 3, 1, 1, 5, 2, 1, 4, 1, 2]
    for i, n in enumerate(sizes):
        store.append(events(n, f"s{i}"), INGEST_OIN)
    data = bodies(store)
    total = len(data)
    checkpoints = {}
    size = 0
    for n in [0, *sizes]:
        size += n
        note = store.checkpoint(size)
        assert note is not None
        checkpoints[size] = verify_checkpoint(note, public_key)
        assert checkpoints[size].root_hash == mth(data[:size]) == store.root_at(size)
    for new in checkpoints:
        for old in checkpoints:
            if old > new:
                continue
            p = store.consistency_proof(old, new)
            assert p == (proof(old, data[:new]) if 0 < old < new else [])
            verify_consistency(old, new, p, checkpoints[old].root_hash, checkpoints[new].root_hash)
    for m in range(total):
        for n in (m + 1, total):
            leaf, p = store.inclusion_proof(m, n)
            assert leaf == leaf_hash(data[m])
            assert p == path(m, data[:n])


def test_prefetched_proofs_match_single_lookups(store: AuditStore) -> None:
    """A resend of a large old batch is proven from prefetched runs; same answers as one by one."""
    big = events(300, "big")
    store.append(events(37, "pre"), INGEST_OIN)
    store.append(big, INGEST_OIN)
    store.append(events(75, "post"), INGEST_OIN)
    res = store.append(big, INGEST_OIN)
    data = bodies(store)
    got = store.proofs(res)
    for i, p in zip(res.leaf_indexes, got, strict=True):
        assert p == path(i, data)


def test_timestamps_never_go_backwards(store: AuditStore) -> None:
    """A clock stepping back (NTP) must not make entries or checkpoints go back in time."""
    store.append(events(2, "a"), INGEST_OIN)
    store.clock = lambda: dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    store.append(events(2, "b"), INGEST_OIN)
    stamps = [orjson.loads(b)["timestamp"] for b in bodies(store)]
    assert stamps == sorted(stamps)
    assert not stamps[-1].startswith("2000")


def test_a_failed_append_leaves_nothing_behind(store: AuditStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """All or nothing: a failure after the entries are written rolls the whole batch back."""
    store.append(events(20, "ok"), INGEST_OIN)
    before = store.head()
    real = store_module.insert_rows
    calls = {"n": 0}

    def failing(conn: Any, table: Any, columns: Any, rows: Any, **kw: Any) -> None:
        calls["n"] += 1
        real(conn, table, columns, rows, **kw)
        if table.name == "audit_nodes":
            raise RuntimeError("disk full")

    monkeypatch.setattr(store_module, "insert_rows", failing)
    with pytest.raises(RuntimeError):
        store.append(events(30, "lost"), INGEST_OIN)
    assert calls["n"] == 2
    monkeypatch.setattr(store_module, "insert_rows", real)
    after = store.head()
    assert (after.tree_size, after.root_hash, after.checkpoint) == (20, before.root_hash, before.checkpoint)
    assert len(bodies(store)) == 20
    assert store.checkpoint(50) is None
    # and the same batch goes in cleanly afterwards
    assert store.append(events(30, "lost"), INGEST_OIN).appended == 30
    assert store.head().root_hash == root_from_leaf_hashes([leaf_hash(b) for b in bodies(store)])


def test_filters_read_the_derived_columns(store: AuditStore) -> None:
    store.append(events(3, "p1", provider="98000001", period="2026-H1"), INGEST_OIN)
    store.append(events(2, "p2", provider="98000002", period="2026-H2", kind="record-rejected"), INGEST_OIN)
    store.append(events(1, "p3", provider="98000001", period="2026-H2"), INGEST_OIN)
    assert [e.index for e in store.entries(provider="98000001")] == [0, 1, 2, 5]
    assert [e.index for e in store.entries(kind="record-rejected")] == [3, 4]
    assert [e.index for e in store.entries(period="2026-H2")] == [3, 4, 5]
    assert [e.index for e in store.entries(provider="98000001", period="2026-H2")] == [5]
    assert [e.index for e in store.entries(start=2, end=5)] == [2, 3, 4]
    assert [e.index for e in store.entries(limit=2)] == [0, 1]


def test_leaf_hash_in_receipt_matches_entry_bytes(store: AuditStore) -> None:
    res = store.append(events(4, "z"), INGEST_OIN)
    for e, h in zip(store.iter_entries(4), res.leaf_hashes, strict=True):
        assert base64.b64encode(leaf_hash(e.body)) == base64.b64encode(h)


def test_a_log_of_the_earlier_origin_is_not_continued(tmp_path: Any, dev_pki: Any) -> None:
    """A log written before content hashes were keyed holds unkeyed digests of records: it is closed, not extended.

    It stays readable (an export of it still verifies); the service refuses to
    append to it and says what to do instead.
    """
    from services.audit.export import export_log
    from ttp.audit_verify import verify_export
    from ttp.checkpoint import CheckpointSigner, load_private_key, load_public_key
    from ttp.db import migrate

    url = f"sqlite:///{tmp_path / 'old-audit.sqlite3'}"
    migrate("audit", url)
    key = load_private_key(dev_pki / "audit-log.key")
    old = AuditStore(make_audit_engine(url), CheckpointSigner(key, origin="outcome-ttp.example.nl/audit"))
    old.ensure_head()
    old.append(events(3, "old"), INGEST_OIN)
    old.engine.dispose()

    new = AuditStore(make_audit_engine(url), CheckpointSigner(key))
    with pytest.raises(store_module.ForeignLog, match="earlier version") as caught:
        new.ensure_head()
    assert caught.value.found == "outcome-ttp.example.nl/audit"
    assert caught.value.expected == "outcome-ttp.example.nl/audit/v2"
    exported = tmp_path / "old.export"
    with exported.open("wb") as out:
        export_log(new, out)
    assert verify_export(exported, load_public_key(dev_pki / "audit-log.pub")).ok
    new.engine.dispose()
