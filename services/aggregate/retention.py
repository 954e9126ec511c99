"""Retention: no trajectory row is kept longer than a figure needs it.

A trajectory ending in period P is needed until P's indicator 3.2 can no
longer change: its longest follow-up window (12 months after the end of the
period) has passed, plus the three weeks in which providers deliver the
trajectories that ended within it. Then the period is recomputed one last
time if anything changed, its aggregates (``outcome_cells``) are frozen
(``closed_at``), and its trajectory, measurement and goal rows are deleted.
Persons and pseudonyms that no kept trajectory or consent withdrawal refers to
go too. This is the seed's "in de routeervoorziening worden geen data
opgeslagen": only the published aggregates stay.

Rows for a closed period that arrive late are deleted by the next purge
without touching the frozen figures.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Final, cast

from sqlalchemy import Engine, Table, and_, delete, exists, func, select, update

from services.aggregate.aggregate_models import AggregatePeriod, ReleasedCell
from services.aggregate.disclosure import Protection
from services.aggregate.indicators import add_months_py
from services.aggregate.models import GoalScore, Measurement, Person, PersonPseudonym, Trajectory, Withdrawal
from services.aggregate.recompute import period_state, recompute
from ttp.periods import period_bounds

log = logging.getLogger("ttp.aggregate.retention")

#: Providers deliver within three weeks after a period (CBS Informatieprotocol).
DELIVERY_GRACE: Final = dt.timedelta(days=21)
#: The longest follow-up of indicator 3.2, in months after the end of the period.
FOLLOW_UP_MONTHS: Final = 12

T = cast(Table, Trajectory.__table__)
M = cast(Table, Measurement.__table__)
G = cast(Table, GoalScore.__table__)
P = cast(Table, Person.__table__)
PP = cast(Table, PersonPseudonym.__table__)
W = cast(Table, Withdrawal.__table__)
AP = cast(Table, AggregatePeriod.__table__)
RC = cast(Table, ReleasedCell.__table__)


def retention_end(period: str) -> dt.date:
    """The last day the rows of ``period`` are kept."""
    return add_months_py(period_bounds(period)[1], FOLLOW_UP_MONTHS) + DELIVERY_GRACE


@dataclass
class PurgeReport:
    """What a purge did, for the command line and the audit log."""

    closed: list[str] = field(default_factory=list)
    trajectories: int = 0
    measurements: int = 0
    goal_scores: int = 0
    persons: int = 0


def periods_due(engine: Engine, today: dt.date) -> dict[str, int]:
    """Periods with rows whose retention has ended, and how many trajectory rows each has."""
    with engine.connect() as conn:
        rows = conn.execute(select(T.c.period, func.count()).group_by(T.c.period)).all()
    return {period: int(n) for period, n in sorted(rows) if retention_end(period) < today}


def purge(engine: Engine, protection: Protection, today: dt.date | None = None) -> PurgeReport:
    """Freeze and empty every period whose retention has ended on ``today``."""
    today = today or dt.date.today()
    report = PurgeReport()
    for period in periods_due(engine, today):
        with engine.connect() as conn:
            state = period_state(conn, period)
        if state is None or state.stale:
            # The last recompute: every 3.2 window has passed, these figures are final.
            recompute(engine, period, protection, force=state is None)
        with engine.begin() as conn:
            for table, counter in ((G, "goal_scores"), (M, "measurements")):
                gone = conn.execute(delete(table).where(table.c.period == period)).rowcount
                setattr(report, counter, getattr(report, counter) + gone)
            report.trajectories += conn.execute(delete(T).where(T.c.period == period)).rowcount
            conn.execute(delete(RC).where(RC.c.period == period))  # no recompute will need it
            conn.execute(update(AP).where(and_(AP.c.period == period, AP.c.closed_at.is_(None)))
                         .values(closed_at=dt.datetime.now(dt.UTC)))
        report.closed.append(period)
        log.info("purged", extra={"period": period})
    if report.closed:
        report.persons = _forget_persons(engine)
    return report


def _forget_persons(engine: Engine) -> int:
    """Delete persons (and their pseudonyms) no kept trajectory or withdrawal refers to."""
    with engine.begin() as conn:
        orphan = and_(
            ~exists(select(T.c.person_id).where(T.c.person_id == P.c.id)),
            ~exists(select(W.c.person_id).where(W.c.person_id == P.c.id)),
        )
        ids = select(P.c.id).where(orphan)
        conn.execute(delete(PP).where(PP.c.person_id.in_(ids)))
        return int(conn.execute(delete(P).where(orphan)).rowcount or 0)


def kept_rows(engine: Engine, period: str) -> int:
    """Trajectory rows still stored for a period (0 once purged)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(T).where(T.c.period == period)).scalar() or 0)
