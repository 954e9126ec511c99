"""The operator commands: ``ttp purge``, ``ttp disclosure check``, ``ttp bench recompute``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, func, select
from typer.testing import CliRunner

from services.aggregate.aggregate_models import OutcomeCell
from services.aggregate.cell_key import CellKeyMethod
from services.aggregate.disclosure import Protection
from services.aggregate.models import Trajectory
from services.aggregate.recompute import recompute
from tests.aggregate.conftest import PC4S, RecordingSink
from tests.aggregate.factory import Row, dense_rows, insert_rows, store_engine
from ttp.audit_events import AuditEvent
from ttp.cli.main import app
from ttp.cli.purge_cmd import run_purge
from ttp.settings import Settings, get_settings

T: Table = Trajectory.__table__  # type: ignore[assignment]
OC: Table = OutcomeCell.__table__  # type: ignore[assignment]
PERIOD = "2026-H1"


@pytest.fixture
def env(db_url: str, dev_pki: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("TTP_HOME", str(tmp_path))
    monkeypatch.setenv("TTP_PKI_DIR", str(dev_pki))
    monkeypatch.setenv("TTP_AGGREGATE_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def rows_of(engine: Engine, period: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(T).where(T.c.period == period)).scalar() or 0)


class FailingSink(RecordingSink):
    async def append(self, events: list[AuditEvent], *, proofs: str = "all") -> dict[str, Any]:
        raise ConnectionError("audit log down")


def test_purge_is_logged_before_anything_is_deleted(env: Settings) -> None:
    engine = store_engine(env.database_url("aggregate"))
    insert_rows(engine, [Row(f"o{i}", i, dt.date(2025, 2, 1)) for i in range(15)]
                + [Row(f"n{i}", 100 + i, dt.date(2026, 2, 1)) for i in range(15)])
    with pytest.raises(ConnectionError):
        run_purge(env, dt.date(2026, 8, 1), sink=FailingSink(), actor="0" * 20)
    assert rows_of(engine, "2025-H1") == 15  # not logged, not purged
    assert run_purge(env, dt.date(2026, 8, 1), dry_run=True) == 0
    sink = RecordingSink()
    assert run_purge(env, dt.date(2026, 8, 1), sink=sink) == 15
    (event,) = sink.of("purge")
    assert event.subject["periods"] == ["2025-H1"] and event.subject["trajectories"] == 15
    assert event.actorOin != "0" * 20  # the aggregate service's own OIN, from the registry
    assert rows_of(engine, "2025-H1") == 0 and rows_of(engine, "2026-H1") == 15
    engine.dispose()


def test_disclosure_check_passes_ours_and_fails_exact_counts(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = store_engine(env.database_url("aggregate"))
    insert_rows(engine, dense_rows(1500, seed=3, period=PERIOD, pc4s=PC4S))
    recompute(engine, PERIOD, Protection(), force=True)
    runner = CliRunner()
    args = ["disclosure", "check", "--period", PERIOD, "--recipient", "rijk",
            "--recipient", "gemeente:GM0363", "--recipient", "all", "--as-of", "2027-09-01"]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert "No count from 1 to the threshold is shown, and no hidden cell can be pinned" in ok.output
    # Negative control: a perturbation table that shows every count as it is.
    monkeypatch.setattr(CellKeyMethod, "perturb", lambda _self, count, _u: count if count else None)
    naive = runner.invoke(app, args)
    assert naive.exit_code == 1
    assert "shows gemeente:GM0363" in naive.output
    engine.dispose()


def test_bench_recompute_prints_its_time_beside_duckdb(env: Settings) -> None:
    result = CliRunner().invoke(app, ["bench", "recompute", "-n", "3000", "--gemeenten", "12",
                                      "--providers", "15"])
    assert result.exit_code == 0, result.output
    for text in ("copy rows to DuckDB", "count in DuckDB", "suppression", "total recompute",
                 "DuckDB, rows in memory", "in sqlite itself", "times as long"):
        assert text in result.output


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands' consoles were made at import, with whatever width the worker's terminal had:
    give them one wide enough that no heading is wrapped."""
    from rich.console import Console

    from ttp.cli import bench_disclosure_cmd, disclosure_cmd

    for module in (bench_disclosure_cmd, disclosure_cmd):
        monkeypatch.setattr(module, "console", Console(width=200))


def test_bench_disclosure_prints_ours_beside_tau_argus(env: Settings, wide_console: None) -> None:
    engine = store_engine(env.database_url("aggregate"))
    insert_rows(engine, dense_rows(1500, seed=3, period=PERIOD, pc4s=PC4S))
    recompute(engine, PERIOD, Protection(), force=True)
    engine.dispose()
    result = CliRunner().invoke(app, ["bench", "disclosure", "--period", PERIOD, "--gemeente", "GM0363",
                                      "--as-of", "2027-09-01"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("ours: cell-key", "tau-ARGUS MOD", "earlier: suppression", "cells hidden",
                 "trajectories in published cells", "mean relative error of published n"):
        assert text in result.output
    small = next(line for line in result.output.splitlines() if "a reader has in published cells" in line)
    values = [int(v) for v in re.findall(r"\b\d+\b", small.split("value x n")[-1])]
    assert values[0] == 0 and values[1] > 0, small  # ours shows none; tau-ARGUS leaves categories exact


def test_disclosure_loss_prints_each_size_class(env: Settings, wide_console: None) -> None:
    engine = store_engine(env.database_url("aggregate"))
    insert_rows(engine, dense_rows(1500, seed=3, period=PERIOD, pc4s=PC4S))
    recompute(engine, PERIOD, Protection(), force=True)
    engine.dispose()
    result = CliRunner().invoke(app, ["disclosure", "loss", "--period", PERIOD, "--as-of", "2027-09-01"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("size class", "cells published", "trajectories in published cells", "mean relative error",
                 "100-499", "all"):
        assert text in result.output
