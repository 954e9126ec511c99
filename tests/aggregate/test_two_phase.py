"""Two-phase delivery at the store: classify by keys, then store the audited rows.

What a data officer relies on: nothing of a record is written before its
audit entry exists, the rows stored are exactly the ones classified, a resend
never counts twice, and a correction replaces the old row.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import orjson
import pytest
from sqlalchemy import func, inspect, select

from services.aggregate import store
from services.aggregate.models import Measurement, Trajectory, TrajectoryBatch
from services.aggregate.wire import EXAMPLE_TRAJECTORY, CommitRequest, PrepareRequest, WireKey, WithdrawalRequest
from tests.aggregate.factory import store_engine
from ttp.audit_batches import records_digest

NOW = dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC)
AGB = "98000001"


def _row(i: int, **changes: Any) -> dict[str, Any]:
    row = copy.deepcopy(EXAMPLE_TRAJECTORY)
    row.update(recordId=f"R-{i}", contentHashes=[{"keyVersion": 1, "value": f"{i:064x}"}], trajectoryRef=f"TR-{i}",
               pseudonyms=[{"keyVersion": 1, "value": f"{i + 10**6:064x}"}], **changes)
    return row


def _prepare(engine: Any, batch: str, rows: list[dict[str, Any]]) -> store.BatchOutcome:
    keys = [{k: r[k] for k in WireKey.model_fields} for r in rows]
    req = PrepareRequest.model_validate_json(orjson.dumps({"batchId": batch, "providerAgb": AGB, "trajectories": keys}))
    return store.prepare(engine, req, NOW)


def _commit(engine: Any, batch: str, rows: list[dict[str, Any]]) -> store.BatchOutcome:
    req = CommitRequest.model_validate_json(orjson.dumps({"trajectories": rows}))  # as on the wire
    return store.commit(engine, AGB, batch, req, NOW)


def _count(engine: Any, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_prepare_stores_nothing_of_a_record_and_commit_stores_the_classified_rows(db_url: str) -> None:
    engine = store_engine(db_url)
    rows = [_row(i) for i in range(3)]
    outcome = _prepare(engine, "b1", rows)
    assert outcome.accepted == ["R-0", "R-1", "R-2"] and outcome.state == "prepared"
    assert _count(engine, Trajectory) == 0 and _count(engine, Measurement) == 0
    batch_columns = {c["name"] for c in inspect(engine).get_columns("trajectory_batches")}
    assert "payload" not in batch_columns  # a prepared batch holds no rows, not even staged

    committed = _commit(engine, "b1", rows)
    assert committed.state == "committed" and committed.accepted == outcome.accepted
    assert _count(engine, Trajectory) == 3 and _count(engine, Measurement) == 3
    # the same commit again (a retry after a lost answer) counts nothing twice
    assert _commit(engine, "b1", rows).accepted == outcome.accepted
    assert _count(engine, Trajectory) == 3


def test_commit_refuses_rows_other_than_the_prepared_ones(db_url: str) -> None:
    engine = store_engine(db_url)
    rows = [_row(i) for i in range(3)]
    _prepare(engine, "b1", rows)
    swapped = [rows[0], rows[1], _row(7)]
    with pytest.raises(store.BatchConflict, match="not the records this batch was prepared with"):
        _commit(engine, "b1", swapped)
    changed = [rows[0], rows[1], {**rows[2], "contentHashes": [{"keyVersion": 1, "value": "f" * 64}]}]
    with pytest.raises(store.BatchConflict):
        _commit(engine, "b1", changed)
    with pytest.raises(store.BatchConflict):
        _commit(engine, "b1", list(reversed(rows)))
    assert _count(engine, Trajectory) == 0
    with engine.connect() as conn:
        assert conn.execute(select(TrajectoryBatch.state)).scalar_one() == "prepared"


def test_duplicates_and_corrections_across_batches(db_url: str) -> None:
    engine = store_engine(db_url)
    first = [_row(i) for i in range(2)]
    _prepare(engine, "b1", first)
    _commit(engine, "b1", first)
    corrected = {**first[1], "contentHashes": [{"keyVersion": 1, "value": "e" * 64}], "pc4": "1011"}
    second = [first[0], corrected, _row(5)]
    outcome = _prepare(engine, "b2", second)
    assert (outcome.duplicates, outcome.corrections, outcome.accepted) == (["R-0"], ["R-1"], ["R-5"])
    _commit(engine, "b2", second)
    with engine.connect() as conn:
        stored = dict(conn.execute(select(Trajectory.record_id, Trajectory.pc4)).all())
    assert stored == {"R-0": "1055", "R-1": "1011", "R-5": "1055"}  # the correction replaced the old row


def test_commit_of_a_batch_never_prepared(db_url: str) -> None:
    engine = store_engine(db_url)
    with pytest.raises(store.BatchNotFound):
        _commit(engine, "never", [_row(1)])


def _rotated(row: dict[str, Any], *, keep_old: bool = True) -> dict[str, Any]:
    """``row`` as ingest sends it after a rotation to key v2: hashes and pseudonyms under v2 (and v1 while loaded)."""
    old_hash, old_pseudonym = row["contentHashes"][0]["value"], row["pseudonyms"][0]["value"]
    hashes = [{"keyVersion": 2, "value": "2" + old_hash[1:]}]
    pseudonyms = [{"keyVersion": 2, "value": "2" + old_pseudonym[1:]}]
    if keep_old:
        hashes.append({"keyVersion": 1, "value": old_hash})
        pseudonyms.append({"keyVersion": 1, "value": old_pseudonym})
    return {**row, "contentHashes": hashes, "pseudonyms": pseudonyms}


def test_a_record_resent_after_a_key_rotation_is_still_a_duplicate(db_url: str) -> None:
    """The stored hash is compared under the key version it was stored with, not the newest."""
    engine = store_engine(db_url)
    first = [_row(i) for i in range(2)]
    _prepare(engine, "b1", first)
    _commit(engine, "b1", first)
    # the same batch resent after the rotation is the same batch, not a conflict
    assert _prepare(engine, "b1", [_rotated(r) for r in first]).accepted == ["R-0", "R-1"]
    changed = {**_rotated(first[1]), "pc4": "1011"}
    changed["contentHashes"] = [{"keyVersion": 2, "value": "d" * 64}, {"keyVersion": 1, "value": "e" * 64}]
    outcome = _prepare(engine, "b2", [_rotated(first[0]), changed])
    assert (outcome.duplicates, outcome.corrections) == (["R-0"], ["R-1"])
    _commit(engine, "b2", [_rotated(first[0]), changed])
    with engine.connect() as conn:
        stored = {r: (h, v) for r, h, v in conn.execute(
            select(Trajectory.record_id, Trajectory.content_hash, Trajectory.key_version))}
    # the correction is stored under the new key; the duplicate kept its row under the old one
    assert stored == {"R-0": (first[0]["contentHashes"][0]["value"], 1), "R-1": ("d" * 64, 2)}
    # once v1 is retired, a row stored under it cannot be compared: it counts as a correction, never as new
    retired = _prepare(engine, "b3", [_rotated(first[0], keep_old=False)])
    assert (retired.accepted, retired.duplicates, retired.corrections) == ([], [], ["R-0"])

def _withdrawal(**fields: Any) -> WithdrawalRequest:
    return WithdrawalRequest.model_validate_json(orjson.dumps(
        {"providerAgb": AGB, "withdrawnOn": "2026-07-01", **fields}))


def test_withdrawal_prepares_without_deleting_and_a_resend_gets_the_same_rows_and_one_deletion(db_url: str) -> None:
    """Issue 15 part 5: the rows go only at the commit, after the log entry naming them; a resend is exact."""
    engine = store_engine(db_url)
    rows = [_row(i) for i in range(3)]
    for i, row in enumerate(rows):  # three persons
        row["pseudonyms"] = [{"keyVersion": 1, "value": f"{i + 1:02x}" * 32}]
    person = rows[0]["pseudonyms"]
    _prepare(engine, "b1", rows)
    _commit(engine, "b1", rows)
    prepared = store.prepare_withdrawal(engine, _withdrawal(pseudonyms=person), NOW)
    assert (prepared.state, prepared.recordIds, prepared.periods) == ("prepared", ["R-0"], ["2026-H1"])
    assert _count(engine, Trajectory) == 3  # nothing deleted before the log has the entry
    again = store.prepare_withdrawal(engine, _withdrawal(pseudonyms=person), NOW)
    assert again == prepared  # a resend after a failure: the same withdrawal, so the same log entry
    done = store.commit_withdrawal(engine, AGB, prepared.withdrawalId, NOW)
    assert (done.state, done.removed, done.recordIds) == ("committed", 1, ["R-0"])
    assert _count(engine, Trajectory) == 2
    # a resend after the commit: the same answer (removed 1, not 0), nothing more deleted
    assert store.prepare_withdrawal(engine, _withdrawal(pseudonyms=person), NOW).recordIds == ["R-0"]
    assert store.commit_withdrawal(engine, AGB, prepared.withdrawalId, NOW).removed == 1
    assert _count(engine, Trajectory) == 2
    with pytest.raises(store.WithdrawalNotFound):
        store.commit_withdrawal(engine, "98000002", prepared.withdrawalId, NOW)  # another provider's id


def test_a_re_delivery_withdraws_named_records_through_the_same_two_phases(db_url: str) -> None:
    engine = store_engine(db_url)
    rows = [_row(i) for i in range(3)]
    _prepare(engine, "b1", rows)
    _commit(engine, "b1", rows)
    prepared = store.prepare_withdrawal(engine, _withdrawal(recordIds=["R-2", "R-1", "R-9"]), NOW)
    assert prepared.recordIds == ["R-1", "R-2"] and _count(engine, Trajectory) == 3  # R-9 was never stored
    assert store.commit_withdrawal(engine, AGB, prepared.withdrawalId, NOW).removed == 2
    assert _count(engine, Trajectory) == 1
    with pytest.raises(ValueError):
        _withdrawal(recordIds=["R-0"], pseudonyms=rows[0]["pseudonyms"])  # one selection, not both


def test_a_committed_batch_waits_in_the_outbox_until_its_batch_committed_entry_is_logged(db_url: str) -> None:
    engine = store_engine(db_url)
    rows = [_row(i) for i in range(2)]
    _prepare(engine, "b1", rows)
    assert store.unlogged_commits(engine) == []  # prepared only: nothing to announce
    _commit(engine, "b1", rows)
    [pending] = store.unlogged_commits(engine)
    assert (pending.provider, pending.batch_id) == (AGB, "b1")
    # the digest ingest's batch-received entry carries, so the two entries match
    assert pending.records_digest == records_digest((r["recordId"], r["contentHashes"][0]["value"]) for r in rows)
    store.mark_commits_logged(engine, [pending], NOW)
    assert store.unlogged_commits(engine) == []
