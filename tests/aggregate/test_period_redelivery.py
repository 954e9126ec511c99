"""Period re-delivery at the store: the absent records are named at prepare and removed at commit.

What a data officer relies on: a re-delivery of a half year withdraws exactly
the stored records of that half year it leaves out, never those of another
period or another provider, never a record it carries but ingest rejected,
and nothing before the commit (which comes after the audit entries).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from services.aggregate import store
from services.aggregate.models import Trajectory
from services.aggregate.wire import EXAMPLE_TRAJECTORY, CommitRequest, PrepareRequest, WireKey
from tests.aggregate.factory import store_engine

NOW = dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC)


def _row(i: int, period: str = "2026-H1", end: str = "2026-03-20") -> dict[str, Any]:
    row = copy.deepcopy(EXAMPLE_TRAJECTORY)
    row.update(recordId=f"R-{i}", contentHashes=[{"keyVersion": 1, "value": f"{i:064x}"}], trajectoryRef=f"TR-{i}",
               period=period, endDate=end,
               pseudonyms=[{"keyVersion": 1, "value": f"{i + 10**6:064x}"}])
    return row


def _deliver(engine: Any, agb: str, batch: str, rows: list[dict[str, Any]], **replace: Any) -> store.BatchOutcome:
    keys = [{k: r[k] for k in WireKey.model_fields} for r in rows]
    req = PrepareRequest.model_validate_json(
        orjson.dumps({"batchId": batch, "providerAgb": agb, "trajectories": keys, **replace}))
    outcome = store.prepare(engine, req, NOW)
    store.commit(engine, agb, batch, CommitRequest.model_validate_json(orjson.dumps({"trajectories": rows})), NOW)
    return outcome


def _stored(engine: Any, agb: str) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(Trajectory.record_id).where(Trajectory.provider_agb == agb)).scalars())


def test_a_redelivery_withdraws_exactly_the_stored_records_of_the_period_it_leaves_out(db_url: str) -> None:
    engine = store_engine(db_url)
    h1 = [_row(i) for i in range(5)]
    h2 = _row(9, period="2025-H2", end="2025-11-20")
    _deliver(engine, "98000001", "first", [*h1, h2])
    _deliver(engine, "98000002", "other-provider", [_row(i) for i in range(5)])

    again = [h1[0], h1[1], h1[3]]  # left out; R-4 is in the file but was rejected by ingest
    keys = [{k: r[k] for k in WireKey.model_fields} for r in again]
    req = PrepareRequest.model_validate_json(orjson.dumps(
        {"batchId": "again", "providerAgb": "98000001", "trajectories": keys, "replacePeriod": "2026-H1",
         "keepRecordIds": ["R-4"]}))
    outcome = store.prepare(engine, req, NOW)
    assert outcome.withdrawn == ["R-2"] and outcome.duplicates == ["R-0", "R-1", "R-3"]
    assert "R-2" in _stored(engine, "98000001")  # nothing goes before the commit
    store.commit(engine, "98000001", "again", CommitRequest.model_validate_json(
        orjson.dumps({"trajectories": again})), NOW)
    assert _stored(engine, "98000001") == {"R-0", "R-1", "R-3", "R-4", "R-9"}
    assert _stored(engine, "98000002") == {f"R-{i}" for i in range(5)}

    # resent: the same outcome, nothing more removed
    assert store.prepare(engine, req, NOW).withdrawn == ["R-2"]
    # the same batchId as another kind of delivery is a conflict, not a silent no-op
    plain = PrepareRequest.model_validate_json(orjson.dumps(
        {"batchId": "again", "providerAgb": "98000001", "trajectories": keys}))
    with pytest.raises(store.BatchConflict):
        store.prepare(engine, plain, NOW)


def test_an_ordinary_delivery_withdraws_nothing(db_url: str) -> None:
    """Negative control: the same batch without replacePeriod leaves the absent records stored."""
    engine = store_engine(db_url)
    _deliver(engine, "98000001", "first", [_row(i) for i in range(3)])
    assert _deliver(engine, "98000001", "second", [_row(0)]).withdrawn == []
    assert _stored(engine, "98000001") == {"R-0", "R-1", "R-2"}
