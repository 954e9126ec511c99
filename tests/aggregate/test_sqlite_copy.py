"""Copying from SQLite in two child processes: used only when both saw the same store state."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from services.aggregate import sqlite_copy

STATE = "SELECT v FROM state"
QUERIES = ["SELECT x FROM big ORDER BY x", "SELECT y FROM small ORDER BY y", "SELECT count(*) AS n FROM big"]


@pytest.fixture
def store(tmp_path: Path) -> str:
    path = tmp_path / "store.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = wal")
        db.execute("CREATE TABLE state (v INTEGER)")
        db.execute("INSERT INTO state VALUES (1)")
        db.execute("CREATE TABLE big (x INTEGER)")
        db.executemany("INSERT INTO big VALUES (?)", [(i,) for i in range(5000)])
        db.execute("CREATE TABLE small (y TEXT)")
        db.executemany("INSERT INTO small VALUES (?)", [("a",), ("b",)])
    return str(path)


def test_two_children_copy_what_one_copies(store: str) -> None:
    one = sqlite_copy.copy(store, QUERIES)
    two = sqlite_copy.copy(store, QUERIES, same_state=STATE)
    assert [t.to_pylist() for t in two] == [t.to_pylist() for t in one]
    assert two[0].num_rows == 5000 and two[2].to_pylist() == [{"n": 5000}]


def test_a_commit_between_the_two_snapshots_means_copying_again(store: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer commits after the first child read and before the second: the pair is not used."""
    real_run = sqlite_copy._run
    calls: list[list[str]] = []
    lock = threading.Lock()

    def run(path: str, queries: list[str]) -> list[Any]:
        with lock:  # one child after the other, a commit between them on the first round
            calls.append(queries)
            tables = real_run(path, queries)
            if len(calls) == 1:
                with sqlite3.connect(path) as db:
                    db.execute("UPDATE state SET v = v + 1")
                    db.execute("INSERT INTO big VALUES (-1)")
            return tables

    monkeypatch.setattr(sqlite_copy, "_run", run)
    tables = sqlite_copy.copy(store, QUERIES, same_state=STATE)
    assert len(calls) == 4  # two children, then two again
    assert tables[0].num_rows == 5001 and tables[2].to_pylist() == [{"n": 5001}]  # consistent


def test_a_busy_writer_makes_one_child_copy_everything(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real_run = sqlite_copy._run
    seen = iter(range(100))
    calls: list[list[str]] = []

    def run(path: str, queries: list[str]) -> list[Any]:
        calls.append(queries)
        tables = real_run(path, queries)
        if queries[0] == STATE:  # every child sees another state
            tables[0] = pa.table({"v": [next(seen)]})
        return tables

    monkeypatch.setattr(sqlite_copy, "_run", run)
    tables = sqlite_copy.copy(store, QUERIES, same_state=STATE, attempts=2)
    assert len(calls) == 5 and calls[-1] == QUERIES
    assert tables[0].num_rows == 5000
