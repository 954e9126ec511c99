"""Keeping the materialised aggregates fresh: dirty marking and (lazy) recompute.

Ingest commits tens of thousands of records a second, so it never waits for
figures: its commit transaction only calls :func:`mark_dirty`, one upsert per
period. Figures are recomputed later, per period and in one go, when someone
reads a stale period, by the service's background loop, or by ``ttp purge``.

A recompute counts everything with one query (``indicators.py``), run by DuckDB
on a copy of the period's rows (``columnar.py``), rolls the counts up
to every published cell (``rollup.py``), runs disclosure control
(``disclosure.py``) over the third-party cells, and replaces the period's rows
in ``outcome_cells`` in one transaction. Staleness is a pair of counters, so a
batch committed while a recompute runs leaves the period stale (see
``aggregate_models``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Engine, Table, and_, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.aggregate.aggregate_models import AggregatePeriod, OutcomeCell, PeriodDomain, ReleasedCell
from services.aggregate.cells import (
    ALL_VIEWS,
    BANDS,
    THIRD_PARTY_VIEWS,
    VIEW_NAMES,
    CellKey,
    key_string,
    parse_key,
    view_of,
)
from services.aggregate.disclosure import Outcome, Protection, Suppressor, withhold_values
from services.aggregate.indicators import LAYOUT_VERSION, Facts, compute_facts
from services.aggregate.models import parties
from services.aggregate.rollup import CellCounts, roll_up
from services.aggregate.tables import build_tables
from ttp.bulk_write import insert_rows

log = logging.getLogger("ttp.aggregate.recompute")

AP = cast(Table, AggregatePeriod.__table__)
OC = cast(Table, OutcomeCell.__table__)
PD = cast(Table, PeriodDomain.__table__)
RC = cast(Table, ReleasedCell.__table__)
CHUNK = 5000
#: ``released_seq`` of a period whose figures no third party has seen yet.
NEVER = -1

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _period_lock(period: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(period, threading.Lock())


def _upsert(conn: Connection) -> Any:
    """The dialect's INSERT with ``on_conflict_do_update`` (same API on both engines)."""
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def mark_dirty(conn: Connection, periods: Iterable[str]) -> None:
    """Mark periods stale, inside the caller's transaction (ingest commit, withdrawal).

    Pass the periods (endDate half years) of every row inserted, corrected or
    removed. Earlier periods whose rows are still kept are marked too: a new
    trajectory may be the "new start" (indicator 3.2) that follows one of theirs.
    """
    wanted = sorted(set(periods))
    if not wanted:
        return
    upsert = _upsert(conn)
    for period in wanted:
        stmt = upsert(AP).values(period=period, dirty_seq=1, computed_seq=0, released_seq=NEVER)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["period"], set_={"dirty_seq": AP.c.dirty_seq + 1},
        ))
    conn.execute(
        update(AP)
        .where(and_(AP.c.period < wanted[-1], AP.c.closed_at.is_(None), AP.c.period.not_in(wanted)))
        .values(dirty_seq=AP.c.dirty_seq + 1)
    )


@dataclass
class PeriodState:
    period: str
    dirty_seq: int
    computed_seq: int
    released_seq: int
    computed_at: dt.datetime | None
    closed_at: dt.datetime | None

    @property
    def stale(self) -> bool:
        return self.closed_at is None and (self.computed_at is None or self.dirty_seq > self.computed_seq)


def period_state(conn: Connection, period: str) -> PeriodState | None:
    row = conn.execute(select(AP).where(AP.c.period == period)).mappings().first()
    if row is None:
        return None
    return PeriodState(row["period"], row["dirty_seq"], row["computed_seq"], row["released_seq"],
                       row["computed_at"], row["closed_at"])


def stale_periods(conn: Connection) -> list[str]:
    rows = conn.execute(
        select(AP.c.period).where(and_(
            AP.c.closed_at.is_(None),
            (AP.c.computed_at.is_(None)) | (AP.c.dirty_seq > AP.c.computed_seq),
        )).order_by(AP.c.period)
    ).scalars()
    return list(rows)


@dataclass
class Domains:
    """What each dimension ranges over in a period's outputs (rows of the grids)."""

    gemeenten: list[str] = field(default_factory=list)
    pc4s: dict[str, list[str]] = field(default_factory=dict)
    providers: list[str] = field(default_factory=list)

    def rows(self, period: str) -> list[dict[str, str]]:
        out = [{"period": period, "dim": "gemeente", "value": g} for g in self.gemeenten]
        out += [{"period": period, "dim": "pc4", "value": f"{g}:{p}"} for g, ps in self.pc4s.items() for p in ps]
        out += [{"period": period, "dim": "provider", "value": v} for v in self.providers]
        return out


def load_domains(conn: Connection, period: str) -> Domains:
    rows = conn.execute(select(PD.c.dim, PD.c.value).where(PD.c.period == period)).all()
    d = Domains()
    pc4s: dict[str, list[str]] = {}
    for dim, value in rows:
        if dim == "gemeente":
            d.gemeenten.append(value)
        elif dim == "provider":
            d.providers.append(value)
        else:
            g, p = value.split(":", 1)
            pc4s.setdefault(g, []).append(p)
    d.gemeenten.sort()
    d.providers.sort()
    d.pc4s = {g: sorted(ps) for g, ps in pc4s.items()}
    return d


def _domains(conn: Connection, facts: Facts) -> Domains:
    """This period's values, the registry's parties and every value of other kept periods.

    Taking the union means a row of a grid does not reveal that it is non-empty
    in this period.
    """
    gemeenten = {str(g) for g in facts.keys[:, 0] if g is not None}
    providers = {str(v) for v in facts.keys[:, 2] if v is not None}
    pairs = {(str(g), str(p)) for g, p in facts.keys[:, :2] if p is not None}
    for role, agb, code in conn.execute(select(parties.c.role, parties.c.agb, parties.c.gemeente_code)):
        if role == "gemeente" and code:
            gemeenten.add(code)
        elif role == "provider" and agb:
            providers.add(agb)
    for dim, value in conn.execute(select(PD.c.dim, PD.c.value).distinct()):
        if dim == "gemeente":
            gemeenten.add(value)
        elif dim == "provider":
            providers.add(value)
        else:
            g, p = value.split(":", 1)
            pairs.add((g, p))
    pc4s: dict[str, list[str]] = {}
    for g, p in sorted(pairs):
        pc4s.setdefault(g, []).append(p)
        gemeenten.add(g)
    return Domains(sorted(gemeenten), pc4s, sorted(providers))


@dataclass
class Computed:
    """Everything a recompute produced for one period (kept for the benchmark and tests)."""

    period: str
    cells: CellCounts
    domains: Domains
    outcome: Outcome
    withheld: dict[CellKey, int]
    timings: dict[str, float]


def compute(conn: Connection, period: str, protection: Protection,
            released: tuple[set[CellKey], dict[CellKey, int]] | None = None) -> Computed:
    """Count, roll up and protect one period (reads only)."""
    timings: dict[str, float] = {}
    facts = compute_facts(conn, period, timings=timings)
    mark = time.perf_counter()
    cells = roll_up(facts, ALL_VIEWS)
    domains = _domains(conn, facts)
    timings["rollup"] = time.perf_counter() - mark
    mark = time.perf_counter()
    already_supp, already_withheld = released or (set(), {})
    tables = build_tables(domains.gemeenten, domains.pc4s, domains.providers, BANDS, cells.n)
    outcome = Suppressor(tables, protection, already_supp).run()
    timings["suppression"] = time.perf_counter() - mark
    mark = time.perf_counter()
    third_party = {k: cells.counts[i] for k, i in cells.index.items() if view_of(k) in THIRD_PARTY_VIEWS}
    withheld = withhold_values(tables, third_party, outcome.suppressed, protection, already_withheld)
    timings["withheld"] = time.perf_counter() - mark
    return Computed(period, cells, domains, outcome, withheld, timings)


def load_released(conn: Connection, period: str) -> tuple[set[CellKey], dict[CellKey, int]]:
    supp: set[CellKey] = set()
    withheld: dict[CellKey, int] = {}
    for key, s, w in conn.execute(
        select(RC.c.cell_key, RC.c.suppressed, RC.c.withheld).where(RC.c.period == period)
    ):
        parsed = parse_key(key)
        if s:
            supp.add(parsed)
        if w:
            withheld[parsed] = int(w)
    return supp, withheld


def _key_strings(keys: list[CellKey]) -> list[str]:
    """:func:`cells.key_string` of many keys: one format string per view, not a join per key."""
    formats: dict[tuple[int, int, int, int], str] = {}
    out = []
    for k in keys:
        view = view_of(k)
        fmt = formats.get(view)
        if fmt is None:
            fmt = formats[view] = key_string(tuple(tuple("%s" for _ in part) for part in k))  # type: ignore[arg-type]
        out.append(fmt % (*k[0], *k[1], *k[2], *k[3]))
    return out


def _cell_rows(period: str, computed: Computed) -> tuple[list[str], list[tuple[object, ...]]]:
    """The period's ``outcome_cells`` rows, built column by column (120,000 cells nationally)."""
    keys = computed.cells.keys
    supp = computed.outcome.suppressed
    withheld = computed.withheld
    counts = computed.cells.counts
    geo = [k[0] for k in keys]
    care = [k[1] for k in keys]
    columns: dict[str, list[Any]] = {
        "period": [period] * len(keys),
        "cell_key": _key_strings(keys),
        "view": [VIEW_NAMES[view_of(k)] for k in keys],
        "gemeente": [g[0] if g else None for g in geo],
        "pc4": [g[1] if len(g) > 1 else None for g in geo],
        "provider_agb": [k[3][0] if k[3] else None for k in keys],
        "freely_accessible": [c[0] if c else None for c in care],
        "sector": [c[1] if len(c) > 1 else None for c in care],
        "hulpvorm": [c[2] if len(c) > 2 else None for c in care],
        "age_band": [k[2][0] if k[2] else None for k in keys],
        "n": counts[:, 0].tolist() if len(keys) else [],
        "counts": [orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY).decode() for row in counts],
        "layout": [LAYOUT_VERSION] * len(keys),
        "suppressed": [k in supp for k in keys],
        "withheld": [withheld.get(k, 0) for k in keys],
    }
    names = [c.name for c in OC.columns]
    assert set(names) == set(columns), "outcome_cells columns changed"
    return names, list(zip(*(columns[n] for n in names), strict=True))


def store(conn: Connection, computed: Computed, dirty_seq: int, now: dt.datetime) -> None:
    """Replace the period's cells and domains (inside the caller's transaction)."""
    period = computed.period
    conn.execute(delete(OC).where(OC.c.period == period))
    conn.execute(delete(PD).where(PD.c.period == period))
    names, rows = _cell_rows(period, computed)
    insert_rows(conn, OC, names, rows)
    domain_rows = computed.domains.rows(period)
    for start in range(0, len(domain_rows), CHUNK):
        conn.execute(insert(PD), domain_rows[start : start + CHUNK])
    upsert = _upsert(conn)
    stmt = upsert(AP).values(period=period, dirty_seq=dirty_seq, computed_seq=dirty_seq,
                             computed_at=now, observed_on=now.date(), released_seq=NEVER)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["period"],
        set_={"computed_seq": dirty_seq, "computed_at": now, "observed_on": now.date()},
    ))


def recompute(engine: Engine, period: str, protection: Protection, *, force: bool = False) -> Computed | None:
    """Recompute one period if it is stale (or ``force``); None when there was nothing to do."""
    with _period_lock(period):
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                state = period_state(conn, period)
                if state is not None and state.closed_at is not None:
                    return None  # rows purged: the stored aggregates are final
                if state is not None and not state.stale and not force:
                    return None
                dirty_seq = state.dirty_seq if state else 0
                computed = compute(conn, period, protection, load_released(conn, period))
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"recompute:{period}",))
            store(conn, computed, dirty_seq, dt.datetime.now(dt.UTC))
        seconds = {f"seconds_{k}": round(v, 3) for k, v in computed.timings.items()}
        log.info("recomputed", extra={"period": period, **seconds})
        return computed


def recompute_stale(engine: Engine, protection: Protection) -> list[str]:
    """Recompute every stale period; returns the periods done."""
    with engine.connect() as conn:
        periods = stale_periods(conn)
    done = []
    for period in periods:
        if recompute(engine, period, protection) is not None:
            done.append(period)
    return done


def release(conn: Connection, period: str) -> None:
    """Record the current disclosure pattern as seen by a third party (kept on later recomputes).

    Call it in the transaction that reads the figures served, so the pattern
    recorded is the one shown.
    """
    state = period_state(conn, period)
    if state is None or state.released_seq >= state.computed_seq:
        return
    rows = conn.execute(
        select(OC.c.cell_key, OC.c.suppressed, OC.c.withheld).where(and_(
            OC.c.period == period, (OC.c.suppressed.is_(True)) | (OC.c.withheld != 0),
        ))
    ).all()
    merged: dict[str, tuple[bool, int]] = {
        k: (bool(s), int(w)) for k, s, w in conn.execute(
            select(RC.c.cell_key, RC.c.suppressed, RC.c.withheld).where(RC.c.period == period))
    }
    for key, s, w in rows:
        old_s, old_w = merged.get(key, (False, 0))
        merged[key] = (bool(old_s or s), old_w | int(w))
    conn.execute(delete(RC).where(RC.c.period == period))
    values = [{"period": period, "cell_key": k, "suppressed": s, "withheld": w} for k, (s, w) in merged.items()]
    for start in range(0, len(values), CHUNK):
        conn.execute(insert(RC), values[start : start + CHUNK])
    conn.execute(update(AP).where(AP.c.period == period).values(released_seq=state.computed_seq))


async def keep_fresh(engine: Engine, protection: Protection, *, interval: float = 15.0) -> None:
    """Recompute stale periods in the background until cancelled.

    Started by the aggregate service next to its routes, so figures are fresh
    before anyone asks; a read of a period still stale recomputes it itself.
    """
    while True:
        try:
            done = await asyncio.to_thread(recompute_stale, engine, protection)
            if done:
                log.info("background recompute", extra={"periods": done})
        except Exception:  # keep going: the next read recomputes, and the next round retries
            log.exception("background recompute failed")
        await asyncio.sleep(interval)
