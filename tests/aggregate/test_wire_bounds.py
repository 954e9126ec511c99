"""Integers in the trajectory wire format are bounded to what the domain and the store's columns hold.

A goal score beyond a 64-bit integer used to pass the wire model and fail in
the database driver (500); a goal score of 7 was stored although the scale is
-1..2; a key version beyond SMALLINT failed on PostgreSQL. The wire model now
refuses them, with the field named, before anything reaches the store.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import orjson
import psycopg
import pytest
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from services.aggregate import store
from services.aggregate.wire import EXAMPLE_KEY, EXAMPLE_TRAJECTORY, CommitRequest, PrepareRequest
from tests.aggregate.factory import store_engine

NOW = dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC)
AGB = "98000001"


def _commit_body(goals: list[int]) -> bytes:
    row = copy.deepcopy(EXAMPLE_TRAJECTORY)
    row["measurements"][0]["goals"] = goals
    return orjson.dumps({"trajectories": [row]})


@pytest.mark.parametrize("goals", [[2**63], [7], [-2]])
def test_a_goal_score_off_the_scale_is_refused_with_its_location(goals: list[int]) -> None:
    with pytest.raises(ValidationError) as err:
        CommitRequest.model_validate_json(_commit_body(goals))
    assert [e["loc"] for e in err.value.errors()] == [("trajectories", 0, "measurements", 0, "goals", 0)]


@pytest.mark.parametrize("version", [2**63, 32768])
def test_a_key_version_beyond_the_column_is_refused(version: int) -> None:
    key = copy.deepcopy(EXAMPLE_KEY)
    key["pseudonyms"][0]["keyVersion"] = version
    with pytest.raises(ValidationError) as err:
        PrepareRequest.model_validate_json(orjson.dumps({"batchId": "b", "providerAgb": AGB, "trajectories": [key]}))
    assert err.value.errors()[0]["loc"] == ("trajectories", 0, "pseudonyms", 0, "keyVersion")


def test_every_score_on_the_scale_is_still_accepted() -> None:
    req = CommitRequest.model_validate_json(_commit_body([-1, 0, 1, 2]))
    assert req.trajectories[0].measurements[0].goals == [-1, 0, 1, 2]


def test_control_without_the_bound_the_store_fails_in_the_driver(db_url: str) -> None:
    """What the bound keeps out: the same row, past the model, makes the database call itself fail (a 500)."""
    engine = store_engine(db_url)
    key = {k: EXAMPLE_TRAJECTORY[k] for k in EXAMPLE_KEY}
    store.prepare(engine, PrepareRequest.model_validate_json(
        orjson.dumps({"batchId": "b1", "providerAgb": AGB, "trajectories": [key]})), NOW)
    req: Any = CommitRequest.model_validate_json(_commit_body([1]))
    req.trajectories[0].measurements[0].goals = [2**63]  # what the unbounded model let through
    with pytest.raises((OverflowError, DBAPIError, psycopg.Error)):  # SQLite; PostgreSQL (COPY)
        store.commit(engine, AGB, "b1", req, NOW)
