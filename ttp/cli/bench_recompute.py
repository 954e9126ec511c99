"""``ttp bench recompute``: recompute a national half year, beside DuckDB on the same rows.

Generates a national half year (by default 500,000 ended trajectories: 342
gemeenten with about 4,000 PC4 areas, 1,000 providers from national to
one-team local ones, people starting again later at any provider, half without
a measurement), loads it into a fresh aggregate store (SQLite by default, or
``--database-url``), then times one full recompute of the period: the
indicator SQL, the roll-up to every published cell, disclosure control of
every third-party output, withheld values and storing the cells. The
recompute copies the period's rows out of the store and counts them in DuckDB
(``services/aggregate/columnar.py``). In the same run DuckDB executes the very
same indicator query (compiled from the same SQLAlchemy statement) on the same
rows already held in memory, so the cost of the copy shows; and the store's own
engine runs it too, the path used before (``--no-compare-row-engine`` skips
it). Loading the rows is not part of any time.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import typer
from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy import Engine, Table, insert

from services.aggregate.models import GoalScore, Measurement, Trajectory
from ttp.periods import AGE_BANDS, period_bounds

console = Console(stderr=True)

#: (sector, freelyAccessible, hulpvorm, weight): a national mix of care types.
CARE: tuple[tuple[str, bool, str, float], ...] = (
    ("jeugdhulp", True, "01", 16), ("jeugdhulp", True, "02", 11), ("jeugdhulp", True, "04", 6),
    ("jeugdhulp", False, "02", 26), ("jeugdhulp", False, "03", 5), ("jeugdhulp", False, "04", 12),
    ("jeugdhulp", False, "11", 4), ("jeugdhulp", False, "12", 3), ("jeugdhulp", False, "13", 0.7),
    ("jeugdhulp", False, "14", 3), ("jeugdbescherming", False, "04", 6), ("jeugdbescherming", False, "02", 2),
    ("jeugdbescherming", False, "11", 2), ("jeugdreclassering", False, "04", 2.5),
    ("jeugdreclassering", False, "02", 0.8),
)
AGE_WEIGHTS = (2, 3, 3, 4, 5, 6, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9, 8, 7, 3, 2, 1.5, 1, 0.7, 0.5)
REASONS = ("01", "02", "03", "04", "05")
REASON_WEIGHTS = (64, 14, 9, 4, 9)
PROBLEM_CHANGE = ("sterke-verbetering", "matige-verbetering", "stabilisatie",
                  "matige-verslechtering", "sterke-verslechtering")


@dataclass
class NationalData:
    """Column arrays of the three stored tables."""

    trajectories: dict[str, np.ndarray]
    measurements: dict[str, np.ndarray]
    goals: dict[str, np.ndarray]
    period: str
    ended_in_period: int


def _probabilities(weights: Any) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    result: np.ndarray = w / w.sum()
    return result


def _or_none(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` where ``mask``, else None (an unanswered question)."""
    out = np.full(mask.size, None, dtype=object)
    out[mask] = values[mask]
    return out


def national(records: int, period: str, seed: int = 1, *, gemeenten: int = 342,
             providers: int = 1000) -> NationalData:
    """A national half year, vectorised (a few seconds for half a million trajectories)."""
    rng = np.random.default_rng(seed)
    # 342 gemeenten: a few large, many small (log-normal population), about 4,000 PC4s.
    n_gem = gemeenten
    pop = np.exp(rng.normal(3.2, 0.9, n_gem))
    pop[: max(1, n_gem // 80)] *= 12  # the big cities
    pc4_count = np.clip((pop / pop.sum() * 12 * n_gem).astype(int), 1, 120)
    gem_codes = np.array([f"GM{1000 + i:04d}" for i in range(n_gem)])
    starts = np.concatenate([[0], np.cumsum(pc4_count)[:-1]])
    # 1,000 providers: Zipf sizes; the large ones work nationally, small ones locally.
    n_prov = providers
    prov_codes = np.array([f"9{i:07d}" for i in range(n_prov)])
    prov_weight = 1.0 / np.arange(1, n_prov + 1) ** 1.1
    local_of = rng.integers(0, n_gem, n_prov)

    n = records
    gem = rng.choice(n_gem, n, p=_probabilities(pop))
    pc4_index = starts[gem] + (rng.random(n) * pc4_count[gem]).astype(int)
    pc4 = np.char.mod("%04d", 1011 + pc4_index % 8900)
    national_prov = rng.choice(n_prov, n, p=_probabilities(prov_weight))
    local = rng.random(n) < 0.45
    by_gem: dict[int, np.ndarray] = {}
    for p, g in enumerate(local_of):
        by_gem.setdefault(int(g), np.empty(0, dtype=int))
        by_gem[int(g)] = np.append(by_gem[int(g)], p)
    provider = national_prov.copy()
    for g, provs in by_gem.items():
        mask = local & (gem == g)
        provider[mask] = rng.choice(provs, int(mask.sum()))
    care = rng.choice(len(CARE), n, p=_probabilities([c[3] for c in CARE]))
    sector = np.array([c[0] for c in CARE])[care]
    free = np.array([c[1] for c in CARE])[care]
    hulpvorm = np.array([c[2] for c in CARE])[care]
    age = rng.choice(len(AGE_WEIGHTS), n, p=_probabilities(AGE_WEIGHTS))
    band_of = np.array([label for label, low, high in AGE_BANDS for _ in range(low, high + 1)])
    first, last = period_bounds(period)
    end = np.datetime64(first) + rng.integers(0, (last - first).days + 1, n).astype("timedelta64[D]")
    duration = np.where(free, rng.integers(14, 200, n), rng.integers(45, 700, n)).astype("timedelta64[D]")
    start = end - duration
    reason = np.array(REASONS)[rng.choice(5, n, p=_probabilities(REASON_WEIGHTS))]
    person = np.arange(n, dtype=np.int64) + 1
    # About one in six starts again later (at any provider): the new starts of 3.2.
    again = np.nonzero(rng.random(n) < 0.17)[0]
    gap = rng.integers(1, 420, again.size).astype("timedelta64[D]")
    again_start = end[again] + gap
    again_end = again_start + rng.integers(30, 300, again.size).astype("timedelta64[D]")
    all_person = np.concatenate([person, person[again]])
    record = np.char.add("R", np.arange(all_person.size).astype(str))
    again_provider = rng.choice(n_prov, again.size, p=_probabilities(prov_weight))
    cols: dict[str, np.ndarray] = {
        "provider_agb": prov_codes[np.concatenate([provider, again_provider])],
        "record_id": record,
        "person_id": all_person,
        "pc4": np.concatenate([pc4, pc4[again]]),
        "gemeente": gem_codes[np.concatenate([gem, gem[again]])],
        "age_at_end": np.concatenate([age, np.minimum(age[again] + 1, 23)]),
        "sector": np.concatenate([sector, sector[again]]),
        "freely_accessible": np.concatenate([free, free[again]]),
        "hulpvorm": np.concatenate([hulpvorm, hulpvorm[again]]),
        "start_date": np.concatenate([start, again_start]),
        "end_date": np.concatenate([end, again_end]),
        "termination_reason": np.concatenate([reason, np.full(again.size, "01")]),
        "bsn_known": rng.random(all_person.size) > 0.03,
        "unborn": np.zeros(all_person.size, dtype=bool),
    }
    cols["age_band"] = band_of[cols["age_at_end"]]
    ends = cols["end_date"].astype(object)
    cols["period"] = np.array([f"{d.year}-H{1 if d.month <= 6 else 2}" for d in ends])
    # Half answer; informants follow the age rules; 3.3 and 3.4 only without free access.
    measured = np.nonzero(rng.random(n) < 0.5)[0]
    young = age[measured] >= 12
    old_enough = age[measured] >= 16
    m_rows = [(i, "jeugdige") for i, y in zip(measured, young, strict=True) if y]
    m_rows += [(i, "ouder") for i, o in zip(measured, old_enough, strict=True) if not o]
    m_index = np.array([i for i, _ in m_rows], dtype=np.int64)
    m_informant = np.array([who for _, who in m_rows])
    k = m_index.size
    individual = ~free[m_index]
    meas = {
        "provider_agb": cols["provider_agb"][m_index], "record_id": record[m_index],
        "informant": m_informant,
        "satisfaction": rng.choice(10, k, p=_probabilities((1, 1, 2, 3, 5, 10, 20, 28, 20, 10))) + 1,
        "without_help": rng.choice(4, k, p=_probabilities((10, 25, 40, 25))) + 1,
        "problem_change": _or_none(individual & (rng.random(k) < 0.75),
                                   np.array(PROBLEM_CHANGE)[rng.choice(5, k, p=_probabilities((18, 36, 30, 11, 5)))]),
        "goal_overall": _or_none(individual & (rng.random(k) < 0.3),
                                 rng.choice(4, k, p=_probabilities((5, 15, 40, 40))) - 1),
        "period": cols["period"][m_index],
    }
    per_goal = np.nonzero(individual & (rng.random(k) < 0.3))[0]
    goals_each = rng.integers(1, 5, per_goal.size)
    g_index = np.repeat(per_goal, goals_each)
    g_number = np.concatenate([np.arange(1, c + 1) for c in goals_each]) if goals_each.size else np.zeros(0, int)
    goals = {
        "provider_agb": meas["provider_agb"][g_index], "record_id": meas["record_id"][g_index],
        "informant": m_informant[g_index], "goal_index": g_number,
        "score": rng.choice(4, g_index.size, p=_probabilities((5, 15, 40, 40))) - 1,
        "period": meas["period"][g_index],
    }
    return NationalData(cols, meas, goals, period, n)


def load(engine: Engine, data: NationalData) -> None:
    """Bulk-load the rows (COPY on PostgreSQL, executemany on SQLite)."""
    t = data.trajectories
    now = dt.datetime.now(dt.UTC)
    size = t["record_id"].size
    traj = {
        **t,
        "content_hash": np.full(size, "0" * 64), "key_version": np.ones(size, dtype=int),
        "trajectory_ref": t["record_id"], "referrer": np.full(size, "01"),
        "started_in_crisis": np.zeros(size, dtype=bool), "legal_basis": np.full(size, "wettelijke-verplichting"),
        "consent_by": np.full(size, None), "batch_id": np.full(size, "bench"), "received_at": np.full(size, now),
    }
    for model, columns in ((Trajectory, traj), (Measurement, data.measurements), (GoalScore, data.goals)):
        table = cast(Table, model.__table__)
        names = [c.name for c in table.columns]
        values = [columns[name].tolist() if name not in ("start_date", "end_date")
                  else columns[name].astype(object).tolist() for name in names]
        rows = list(zip(*values, strict=True))
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                raw = cast(Any, conn.connection.driver_connection)
                with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                for i in range(0, len(rows), 50_000):
                    conn.execute(insert(table), [dict(zip(names, r, strict=True)) for r in rows[i : i + 50_000]])


def duckdb_time(data: NationalData) -> float:
    """Seconds the recompute's DuckDB step takes on the same rows already held in memory
    (``columnar.count_in_duckdb`` without the copy out of the store)."""
    import pyarrow as pa

    from services.aggregate import columnar

    tables = {
        name: pa.table({k: pa.array(v) for k, v in columns.items()})
        for name, columns in (("trajectories", data.trajectories), ("measurements", data.measurements),
                              ("goal_scores", data.goals))
    }
    started = time.perf_counter()
    facts = columnar.count_in_duckdb(tables, data.period)
    seconds = time.perf_counter() - started
    if facts is None or not facts.counts.shape[0]:
        raise RuntimeError("DuckDB returned no microcells")
    return seconds


def recompute(
    records: int = typer.Option(500_000, "--records", "-n", min=1000, help="Trajectories ending in the half year."),
    period: str = typer.Option("2026-H1", help="The half year to generate and recompute."),
    database_url: str = typer.Option("", help="Aggregate store to use (default: a fresh SQLite file)."),
    seed: int = typer.Option(1, help="Random seed of the generated data."),
    gemeenten: int = typer.Option(342, min=2, help="Number of gemeenten."),
    providers: int = typer.Option(1000, min=2, help="Number of providers."),
    compare_row_engine: bool = typer.Option(
        True, help="Also time the indicator query in the store's own engine (the path before DuckDB)."),
) -> None:
    """Recompute every indicator and protected output of a national half year; compare with DuckDB."""
    from services.aggregate import recompute as rc
    from services.aggregate.disclosure import Protection
    from ttp.db import make_engine, migrate
    from ttp.settings import get_settings

    settings = get_settings()
    protection = Protection(settings.suppression_threshold, settings.protection_ratio)
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        migrate("aggregate", url)
        engine = make_engine(url)
        mark = time.perf_counter()
        data = national(records, period, seed, gemeenten=gemeenten, providers=providers)
        console.print(f"generated {data.trajectories['record_id'].size:,} trajectories "
                      f"({records:,} ending in {period}), {data.measurements['record_id'].size:,} measurements "
                      f"in {time.perf_counter() - mark:.1f} s")
        mark = time.perf_counter()
        load(engine, data)
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:  # what autovacuum does for a store in use
                conn.exec_driver_sql("ANALYZE")
        console.print(f"loaded into {engine.dialect.name} in {time.perf_counter() - mark:.1f} s")
        started = time.perf_counter()
        computed = rc.recompute(engine, period, protection, force=True)
        total = time.perf_counter() - started
        assert computed is not None
        duck = duckdb_time(data)
        row_engine: dict[str, float] = {}
        if compare_row_engine:
            from services.aggregate.indicators import compute_facts

            with engine.connect() as conn:
                compute_facts(conn, period, columnar=False, timings=row_engine)
        engine.dispose()
    out = RichTable(title=f"Recompute of {period}: {records:,} trajectories")
    out.add_column("step")
    out.add_column("seconds", justify="right")
    labels = {"rollup": "roll-up to every published cell",
              "suppression": "suppression (certificates)", "withheld": "values over few responses"}
    for step, seconds in computed.timings.items():
        out.add_row(labels.get(step, step), f"{seconds:.2f}")
    out.add_row("store cells", f"{total - sum(computed.timings.values()):.2f}")
    out.add_row("[b]total recompute[/]", f"[b]{total:.2f}[/]")
    out.add_row("same query, DuckDB, rows in memory", f"{duck:.2f}")
    for step, seconds in row_engine.items():
        out.add_row(f"same query in {step.removeprefix('count in ')} itself", f"{seconds:.2f}")
    Console().print(out)
    counted = sum(v for k, v in computed.timings.items() if k.startswith(("copy", "count")))
    ratio = "".join(f"; the store's own engine took {s / counted:.1f} times as long" for s in row_engine.values())
    Console().print(f"Counting (copy and DuckDB) took {counted:.2f} s, {counted / duck:.1f} times "
                    f"DuckDB on rows already in memory{ratio}.")
    o = computed.outcome
    Console().print(
        f"{len(computed.cells.keys):,} cells; {o.sensitive:,} sensitive cells protected "
        f"({o.by_rectangle:,} by rectangle, {o.by_program:,} by integer program); "
        f"{len(o.suppressed):,} third-party cells hidden. Target: total within 10 s."
    )
