"""The basisset indicators of one period, counted in SQL per *microcell*.

One query (SQLAlchemy Core, the same on SQLite and PostgreSQL) reads every
trajectory that ended in the period once, joins its (at most two)
measurements and its goal scores, and sums every count any figure needs per
microcell: gemeente x PC4 x provider x care type x age band. Every published
cell is a sum of microcells (``rollup.py``), and every indicator value is a
ratio of two of these counts, so nothing is computed per row in Python.

Indicator 3.2 ("geen nieuwe start") links pseudonyms across all providers: for
each trajectory the query finds the earliest start of another trajectory of
the same person *strictly after* its end date, at any provider and in any
period still in the store. A trajectory counts as "no new start within a
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
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from sqlalchemy import Connection, Date, and_, case, false, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
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


def _layout() -> tuple[str, ...]:
    names = ["n", "bsnUnknown"] + [f"reason.{r}" for r in TERMINATION_REASONS]
    names += [f"gns.{w}" for w in WINDOWS] + [f"gnsPlan.{w}" for w in WINDOWS]
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
LAYOUT_VERSION: Final = 1
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
    """Counts per microcell of one period: ``keys[i]`` (MICRO_DIMS) has ``counts[i]`` (LAYOUT)."""

    period: str
    keys: np.ndarray  # (m, 7) object array of strings
    counts: np.ndarray  # (m, len(LAYOUT)) int64

    @classmethod
    def empty(cls, period: str) -> Facts:
        return cls(period, np.empty((0, len(MICRO_DIMS)), dtype=object),
                   np.zeros((0, len(LAYOUT)), dtype=np.int64))


def _count(cond: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((cond, 1), else_=0))


def facts_query(period: str) -> Any:
    """The one SELECT that counts everything for ``period`` (see module docstring)."""
    t = Trajectory.__table__
    later = t.alias("later")
    next_start = (
        select(func.min(later.c.start_date))
        .where(later.c.person_id == t.c.person_id, later.c.start_date > t.c.end_date)
        .scalar_subquery()
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
    base = t
    for i in INFORMANTS:
        base = base.outerjoin(m[i], and_(
            m[i].c.provider_agb == t.c.provider_agb, m[i].c.record_id == t.c.record_id,
            m[i].c.informant == i,
        ))
        base = base.outerjoin(goals[i], and_(
            goals[i].c.provider_agb == t.c.provider_agb, goals[i].c.record_id == t.c.record_id,
        ))
    cols: list[ColumnElement[Any]] = [
        t.c.gemeente, t.c.pc4, t.c.provider_agb, t.c.freely_accessible, t.c.sector,
        t.c.hulpvorm, t.c.age_band,
        t.c.termination_reason.label("reason"), t.c.bsn_known.label("bsn_known"),
        t.c.end_date.label("end_date"), next_start.label("next_start"),
    ]
    for i in INFORMANTS:
        cols += [m[i].c.satisfaction.label(f"{i}_sat"), m[i].c.without_help.label(f"{i}_wh"),
                 m[i].c.problem_change.label(f"{i}_pc"), m[i].c.goal_overall.label(f"{i}_goal")]
        cols += [goals[i].c[f"s{k}"].label(f"{i}_s{k}") for k in range(len(GOAL_SCORES))]
    rows = select(*cols).select_from(base).where(t.c.period == period).subquery("r")

    vh_end = period_bounds(next_period(period))[1]
    r = rows.c
    no_start = {
        "volgendHalfjaar": or_(r.next_start.is_(None), r.next_start > literal(vh_end, Date())),
        "6m": or_(r.next_start.is_(None), r.next_start > add_months(r.end_date, 6)),
        "12m": or_(r.next_start.is_(None), r.next_start > add_months(r.end_date, 12)),
    }
    plan = r.reason == "01"
    agg: list[ColumnElement[Any]] = [func.count().label("n"), _count(r.bsn_known.is_(false()))]
    agg += [_count(r.reason == code) for code in TERMINATION_REASONS]
    agg += [_count(no_start[w]) for w in WINDOWS]
    agg += [_count(and_(plan, no_start[w])) for w in WINDOWS]
    for i in INFORMANTS:
        sat, wh, pc, goal = r[f"{i}_sat"], r[f"{i}_wh"], r[f"{i}_pc"], r[f"{i}_goal"]
        agg += [_count(sat == k) for k in SATISFACTION]
        agg += [_count(wh == k) for k in WITHOUT_HELP]
        agg += [_count(pc == k) for k in PROBLEM_CHANGE]
        agg += [_count(goal == k) for k in GOAL_SCORES]
        agg += [func.coalesce(func.sum(r[f"{i}_s{k}"]), 0) for k in range(len(GOAL_SCORES))]
        agg.append(_count(r[f"{i}_s0"].is_not(None)))
    dims = [r.gemeente, r.pc4, r.provider_agb, r.freely_accessible, r.sector, r.hulpvorm, r.age_band]
    assert len(agg) == len(LAYOUT)
    return select(*dims, *agg).group_by(*dims)


def compute_facts(conn: Connection, period: str) -> Facts:
    """Run :func:`facts_query` and hand back its microcells as arrays."""
    result = conn.execute(facts_query(period)).all()
    if not result:
        return Facts.empty(period)
    width = len(MICRO_DIMS)
    keys = np.array([row[:width] for row in result], dtype=object)
    keys[:, 3] = np.where(keys[:, 3].astype(bool), "true", "false")
    counts = np.array([row[width:] for row in result], dtype=np.int64)
    return Facts(period, keys, counts)
