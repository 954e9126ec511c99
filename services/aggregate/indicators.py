"""The basisset indicators of one period, counted in SQL.

One statement (SQLAlchemy Core; it runs in DuckDB on a copy of the period's
rows, see ``columnar.py``, and as well on SQLite and PostgreSQL) reads every
trajectory that ended in the period once, joins its (at most two)
measurements and its goal scores, turns each row into its counts once
(packed three to an integer), and sums them per *grain*: the few groupings
the outputs need (PC4 x access type; gemeente x care type x age band;
provider x care type; provider x age band; provider x gemeente). Every
published cell is a sum of the cells of one grain (``rollup.py``), and every
indicator value is a ratio of two of these counts, so nothing is computed per
row in Python.

Indicator 3.2 ("geen nieuwe start") links pseudonyms across all providers: for
each trajectory the query finds the earliest start of another *jeugdhulp*
trajectory of the same person *strictly after* its end date, at any provider
and in any period still in the store (seed 001: "geen nieuwe start
jeugdhulp"). A new jeugdbescherming or jeugdreclassering trajectory is not a
new start of jeugdhulp; it is counted apart (``gnsJbJr``), never mixed in. A trajectory counts as "no new start within a
window" when there is no such start or it falls after the window's last day
(inclusive window). The windows, per CBS:

* ``volgendHalfjaar``: up to the last day of the half year after the period;
* ``6m`` and ``12m``: six and twelve calendar months after the end date (a
  month end is clamped, 31 August + 6 months = 28 February, on both engines);

and the same three for the trajectories ended volgens plan (reden 01). A new
start can only be seen once that trajectory has been delivered, i.e. once it
has ended; outputs say so.
"""

from __future__ import annotations

import calendar
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from sqlalchemy import (
    BigInteger,
    Connection,
    Date,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import CompoundSelect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from services.aggregate.models import GoalScore, Measurement, Trajectory
from ttp.periods import next_period, period_bounds

INFORMANTS: Final = ("jeugdige", "ouder")
TERMINATION_REASONS: Final = ("01", "02", "03", "04", "05")
SATISFACTION: Final = tuple(range(1, 11))
WITHOUT_HELP: Final = (1, 2, 3, 4)
PROBLEM_CHANGE: Final = (
    "sterke-verbetering", "matige-verbetering", "stabilisatie",
    "matige-verslechtering", "sterke-verslechtering",
)
GOAL_SCORES: Final = (-1, 0, 1, 2)
#: 3.2 follow-up windows: name -> months after the end date (None: end of the next half year).
WINDOWS: Final[dict[str, int | None]] = {"volgendHalfjaar": None, "6m": 6, "12m": 12}

#: Microcell dimensions, in the column order of :class:`Facts.keys`.
MICRO_DIMS: Final = ("gemeente", "pc4", "provider", "access", "sector", "hulpvorm", "band")


#: Age bands in which a jeugdige answers (12 and over, seed 001): the denominator of the
#: jeugdige's response rate.
JEUGDIGE_BANDS: Final = ("12-15", "16-17", "18-23")


def _layout() -> tuple[str, ...]:
    names = ["n", "bsnUnknown"] + [f"reason.{r}" for r in TERMINATION_REASONS]
    names += [f"gns.{w}" for w in WINDOWS] + [f"gnsPlan.{w}" for w in WINDOWS]
    names += [f"gnsJbJr.{w}" for w in WINDOWS]
    names.append("jeugdigeAnswers")
    names.append("unborn")
    for i in INFORMANTS:
        names += [f"{i}.sat.{k}" for k in SATISFACTION]
        names += [f"{i}.wh.{k}" for k in WITHOUT_HELP]
        names += [f"{i}.pc.{k}" for k in PROBLEM_CHANGE]
        names += [f"{i}.goal.{k}" for k in GOAL_SCORES]
        names += [f"{i}.goals.{k}" for k in GOAL_SCORES]
        names.append(f"{i}.goalsResp")
    return tuple(names)


#: Every count kept per cell, in storage order. Bump LAYOUT_VERSION when it changes.
LAYOUT: Final[tuple[str, ...]] = _layout()
LAYOUT_VERSION: Final = 2
IDX: Final[dict[str, int]] = {name: i for i, name in enumerate(LAYOUT)}


def add_months_py(day: dt.date, months: int) -> dt.date:
    """The same calendar arithmetic as the SQL ``add_months`` below, in Python."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class add_months(FunctionElement[dt.date]):  # noqa: N801 - reads like the SQL function it renders
    """``date + N calendar months``, clamped to the month's last day on every engine."""

    type = Date()
    inherit_cache = True
    name = "add_months"

    def __init__(self, date: ColumnElement[Any], months: int) -> None:
        self.months = int(months)
        super().__init__(date)


@compiles(add_months, "sqlite")
def _add_months_sqlite(element: add_months, compiler: SQLCompiler, **kw: Any) -> str:
    arg = compiler.process(next(iter(element.clauses)), **kw)
    m = element.months
    # SQLite rolls 31 Aug + 6 months over into March; the second form is the last day
    # of the target month, and the smaller of the two is PostgreSQL's answer.
    return f"min(date({arg}, '+{m} months'), date({arg}, 'start of month', '+{m + 1} months', '-1 day'))"


@compiles(add_months)
def _add_months_default(element: add_months, compiler: SQLCompiler, **kw: Any) -> str:
    arg = compiler.process(next(iter(element.clauses)), **kw)
    return f"CAST(({arg} + INTERVAL '{element.months} months') AS DATE)"


@dataclass
class Facts:
    """Counts of one period per grain cell: ``keys[i]`` (MICRO_DIMS) has ``counts[i]`` (LAYOUT)."""

    period: str
    keys: np.ndarray  # (m, 7) object array of strings, None where the grain does not split
    counts: np.ndarray  # (m, len(LAYOUT)) int64
    grain: np.ndarray  # (m,) the GRAINS name each row belongs to

    @classmethod
    def empty(cls, period: str) -> Facts:
        return cls(period, np.empty((0, len(MICRO_DIMS)), dtype=object),
                   np.zeros((0, len(LAYOUT)), dtype=np.int64), np.empty(0, dtype=object))

    def of_grain(self, grain: str) -> tuple[np.ndarray, np.ndarray]:
        """Keys and counts of one grain's rows."""
        mask = self.grain == grain
        return self.keys[mask], self.counts[mask]


def _count(cond: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((cond, 1), else_=0))


def facts_query(period: str, *, packed: bool = True) -> CompoundSelect[Any]:
    """The one SELECT that counts everything for ``period`` (see module docstring)."""
    t = Trajectory.__table__
    later = t.alias("later")
    own = t.alias("own")
    # The earliest later start of the same person, for the trajectories of the period that
    # have one: a join on the person and a group, computed once (a correlated subquery would
    # be evaluated again for every count that uses it).
    jeugdhulp = later.c.sector == "jeugdhulp"
    following = (
        select(
            own.c.provider_agb, own.c.record_id,
            func.min(case((jeugdhulp, later.c.start_date))).label("next_start"),
            func.min(case((~jeugdhulp, later.c.start_date))).label("next_jbjr"),
        )
        .join(later, and_(later.c.person_id == own.c.person_id, later.c.start_date > own.c.end_date))
        .where(own.c.period == period)
        .group_by(own.c.provider_agb, own.c.record_id)
        .subquery("ns")
    )
    m = {i: Measurement.__table__.alias(f"m_{i}") for i in INFORMANTS}
    g_all = GoalScore.__table__
    goals = {
        i: select(
            g_all.c.provider_agb, g_all.c.record_id,
            *[_count(g_all.c.score == s).label(f"s{k}") for k, s in enumerate(GOAL_SCORES)],
        )
        .where(g_all.c.informant == i)
        .group_by(g_all.c.provider_agb, g_all.c.record_id)
        .subquery(f"g_{i}")
        for i in INFORMANTS
    }
    base = t.outerjoin(following, and_(
        following.c.provider_agb == t.c.provider_agb, following.c.record_id == t.c.record_id,
    ))
    for i in INFORMANTS:
        base = base.outerjoin(m[i], and_(
            m[i].c.provider_agb == t.c.provider_agb, m[i].c.record_id == t.c.record_id,
            m[i].c.informant == i,
        ))
        base = base.outerjoin(goals[i], and_(
            goals[i].c.provider_agb == t.c.provider_agb, goals[i].c.record_id == t.c.record_id,
        ))

    end = t.c.end_date
    vh_end = period_bounds(next_period(period))[1]

    def none_within(start: ColumnElement[Any]) -> dict[str, ColumnElement[bool]]:
        return {
            "volgendHalfjaar": or_(start.is_(None), start > literal(vh_end, Date())),
            "6m": or_(start.is_(None), start > add_months(end, 6)),
            "12m": or_(start.is_(None), start > add_months(end, 12)),
        }

    no_start = none_within(following.c.next_start)
    no_jbjr = none_within(following.c.next_jbjr)
    plan = t.c.termination_reason == "01"
    # Without a BSN: the protocol's 000000000 (no or unknown BSN); an unborn child (999999999)
    # is counted apart.
    terms: list[Term] = [("cond", and_(t.c.bsn_known.is_(false()), t.c.unborn.is_(false())), None)]
    terms += [("eq", t.c.termination_reason, code) for code in TERMINATION_REASONS]
    terms += [("cond", no_start[w], None) for w in WINDOWS]
    terms += [("cond", and_(plan, no_start[w]), None) for w in WINDOWS]
    terms += [("cond", no_jbjr[w], None) for w in WINDOWS]
    terms.append(("cond", t.c.age_band.in_(JEUGDIGE_BANDS), None))
    terms.append(("cond", t.c.unborn.is_(true()), None))
    for i in INFORMANTS:
        answers, scores = m[i].c, goals[i].c
        terms += [("eq", answers.satisfaction, k) for k in SATISFACTION]
        terms += [("eq", answers.without_help, k) for k in WITHOUT_HELP]
        terms += [("eq", answers.problem_change, k) for k in PROBLEM_CHANGE]
        terms += [("eq", answers.goal_overall, k) for k in GOAL_SCORES]
        terms += [("num", scores[f"s{k}"], None) for k in range(len(GOAL_SCORES))]
        terms.append(("cond", scores.s0.is_not(None), None))
    assert len(terms) + 1 == len(LAYOUT)
    dims = [t.c.gemeente, t.c.pc4, t.c.provider_agb, t.c.freely_accessible, t.c.sector, t.c.hulpvorm,
            t.c.age_band]
    n_packs = -(-len(terms) // SLOTS) if packed else len(terms)
    per_row = [_packed(terms[j * SLOTS : (j + 1) * SLOTS]) if packed else _term(terms[j])
               for j in range(n_packs)]
    # Every row's counts once, then summed per grain: without materialising, each grain
    # below would evaluate the CASEs again.
    counted = (
        select(*dims, *[v.label(f"c{j}") for j, v in enumerate(per_row)])
        .select_from(base).where(t.c.period == period)
        .cte("p").prefix_with("MATERIALIZED")
    )
    c = counted.c
    branches = []
    for grain, names in GRAINS.items():
        grouped = [c[DIM_COLUMN[d]] for d in names]
        branches.append(
            select(
                literal(grain).label("grain"),
                *[c[DIM_COLUMN[d]] if d in names else null().label(DIM_COLUMN[d]) for d in MICRO_DIMS],
                func.count().label("n"),
                *[cast(func.sum(c[f"c{j}"]), BigInteger) for j in range(n_packs)],
            ).group_by(*grouped)
        )
    return union_all(*branches)


#: What the counts are summed by: just the groupings the outputs' views need (``rollup.py``),
#: never the cross of PC4 and provider, which would be nearly a row per trajectory.
GRAINS: Final[dict[str, tuple[str, ...]]] = {
    "pc4": ("gemeente", "pc4", "access"),
    "gemeente": ("gemeente", "access", "sector", "hulpvorm", "band"),
    "provider": ("provider", "access", "sector", "hulpvorm"),
    "providerBand": ("provider", "band"),
    "providerGemeente": ("provider", "gemeente"),
}
DIM_COLUMN: Final[dict[str, str]] = {
    "gemeente": "gemeente", "pc4": "pc4", "provider": "provider_agb", "access": "freely_accessible",
    "sector": "sector", "hulpvorm": "hulpvorm", "band": "age_band",
}


#: A per-row count: ("eq", column, value), ("cond", condition, None) or ("num", column, None).
Term = tuple[str, Any, Any]
#: Counts packed three to a 64-bit integer, 21 bits each: a third of the columns to sum and to
#: fetch; unpacked in numpy.
SLOTS: Final = 3
SLOT_BITS: Final = 21
#: Packing is exact while no cell count reaches 2**21; goal counts run to 4 per trajectory.
PACK_LIMIT: Final = 2**SLOT_BITS // 4


def _term(term: Term) -> ColumnElement[Any]:
    kind, expr, value = term
    if kind == "eq":
        return case((expr == value, 1), else_=0)
    if kind == "cond":
        return case((expr, 1), else_=0)
    return func.coalesce(expr, 0)


def _packed(terms: list[Term]) -> ColumnElement[Any]:
    """One integer per row holding up to three counts, 21 bits apart."""
    weights = [literal(1 << (SLOT_BITS * slot), BigInteger()) for slot in range(len(terms))]
    column = terms[0][1]
    if all(t[0] == "eq" and t[1] is column for t in terms):
        # Categories of one answer are exclusive: one CASE instead of three.
        return case(*[(column == t[2], w) for t, w in zip(terms, weights, strict=True)],
                    else_=literal(0, BigInteger()))
    total: ColumnElement[Any] = _term(terms[0]) * weights[0]
    for t, w in zip(terms[1:], weights[1:], strict=True):
        total = total + _term(t) * w
    return total


def compute_facts(conn: Connection, period: str, *, columnar: bool = True,
                  timings: dict[str, float] | None = None) -> Facts:
    """The period's grain cells as arrays.

    Counted by DuckDB on a copy of the period's rows where the store can be copied
    from (``columnar.py``: several times faster), else by the store's own engine.
    Both run :func:`facts_query` and give the same facts. ``timings`` receives the
    seconds of each step.
    """
    from services.aggregate import columnar as col  # imports this module

    if columnar and col.available(conn):
        return col.compute_facts_columnar(conn, period, timings)
    started = time.perf_counter()
    if conn.dialect.name == "postgresql":
        # One big aggregate: JIT compilation costs more than it saves, and the sort of
        # half a million rows should stay in memory.
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
    result = conn.execute(facts_query(period)).all()
    facts = unpack_facts(period, result) if result else Facts.empty(period)
    if facts is None:
        facts = unpack_facts(period, conn.execute(facts_query(period, packed=False)).all(), packed=False)
    assert facts is not None
    if timings is not None:
        timings[f"count in {conn.dialect.name}"] = time.perf_counter() - started
    return facts


def unpack_facts(period: str, result: Sequence[Sequence[Any]], *, packed: bool = True) -> Facts | None:
    """Rows of :func:`facts_query` as :class:`Facts`; None when a packed count may have
    overflowed its slot (then run the query again unpacked)."""
    width = 1 + len(MICRO_DIMS)
    grain = np.array([row[0] for row in result], dtype=object)
    keys = np.array([tuple(row[1:width]) for row in result], dtype=object).reshape(len(result), len(MICRO_DIMS))
    raw = np.array([row[width:] for row in result], dtype=np.int64).reshape(len(result), -1)
    return facts_from_arrays(period, grain, keys, raw, packed=packed)


def facts_from_arrays(period: str, grain: np.ndarray, keys: np.ndarray, raw: np.ndarray, *,
                      packed: bool = True) -> Facts | None:
    """:class:`Facts` from the query's columns: ``grain``, the ``MICRO_DIMS`` keys (access
    type as a boolean) and the counts, packed or not; None as for :func:`unpack_facts`."""
    keys = keys.copy()
    access = keys[:, 3]
    named = np.where(access == True, "true", "false").astype(object)  # noqa: E712 - 1/0 on SQLite
    named[access == None] = None  # noqa: E711 - elementwise
    keys[:, 3] = named
    if not packed:
        return Facts(period, keys, raw, grain)
    if raw.size and int(raw[:, 0].max()) >= PACK_LIMIT:
        return None
    counts = np.zeros((raw.shape[0], len(LAYOUT)), dtype=np.int64)
    counts[:, 0] = raw[:, 0]
    for j in range(len(LAYOUT) - 1):
        pack, slot = divmod(j, SLOTS)
        counts[:, 1 + j] = (raw[:, 1 + pack] >> (SLOT_BITS * slot)) & ((1 << SLOT_BITS) - 1)
    return Facts(period, keys, counts, grain)
