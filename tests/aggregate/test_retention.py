"""Retention and consent withdrawal: rows go, the right aggregates stay."""

from __future__ import annotations

import datetime as dt
import hashlib

import orjson
from sqlalchemy import Engine, Table, func, select

from services.aggregate.aggregate_models import AggregatePeriod, OutcomeCell
from services.aggregate.disclosure import Protection
from services.aggregate.indicators import IDX
from services.aggregate.models import GoalScore, Measurement, Person, PersonPseudonym, Trajectory
from services.aggregate.recompute import mark_dirty, period_state, recompute
from services.aggregate.retention import purge, retention_end
from services.aggregate.store import commit_withdrawal, prepare_withdrawal
from services.aggregate.wire import WirePseudonym, WithdrawalRequest
from tests.aggregate.factory import M, Row, insert_rows, store_engine

D = dt.date
P = Protection()
T: Table = Trajectory.__table__  # type: ignore[assignment]
MT: Table = Measurement.__table__  # type: ignore[assignment]
GT: Table = GoalScore.__table__  # type: ignore[assignment]
PT: Table = Person.__table__  # type: ignore[assignment]
PPT: Table = PersonPseudonym.__table__  # type: ignore[assignment]
OC: Table = OutcomeCell.__table__  # type: ignore[assignment]
AP: Table = AggregatePeriod.__table__  # type: ignore[assignment]


def count(engine: Engine, table: Table, *where: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar() or 0)  # type: ignore[arg-type]


def cells(engine: Engine, period: str) -> dict[str, tuple[int, str]]:
    with engine.connect() as conn:
        return {k: (n, c) for k, n, c in conn.execute(
            select(OC.c.cell_key, OC.c.n, OC.c.counts).where(OC.c.period == period))}


def answered(record: str, person: int, end: dt.date, **kw: object) -> Row:
    return Row(record, person, end, measurements=[M("jeugdige", satisfaction=7, goals=(1, 2))], **kw)  # type: ignore[arg-type]


def test_retention_ends_a_year_and_three_weeks_after_the_period() -> None:
    assert retention_end("2026-H1") == D(2027, 7, 21)
    assert retention_end("2025-H2") == D(2027, 1, 21)


def test_purge_deletes_expired_rows_and_keeps_the_final_aggregates(db_url: str) -> None:
    engine = store_engine(db_url)
    old = [answered(f"o{i}", i, D(2025, 3, 1)) for i in range(30)]
    new = [answered(f"n{i}", 100 + i, D(2026, 3, 1)) for i in range(30)]
    both = [answered("b-old", 500, D(2025, 4, 1)), answered("b-new", 500, D(2026, 4, 1))]
    insert_rows(engine, old + new + both)
    for period in ("2025-H1", "2026-H1"):
        recompute(engine, period, P, force=True)
    # A late correction for 2025-H1 arrives before the purge: the purge recomputes first.
    insert_rows(engine, [answered("late", 600, D(2025, 5, 5))])
    with engine.begin() as conn:
        mark_dirty(conn, {"2025-H1"})
    before_new = cells(engine, "2026-H1")

    assert purge(engine, P, today=D(2026, 7, 21)).closed == []  # the last day of retention
    report = purge(engine, P, today=D(2026, 7, 22))
    assert report.closed == ["2025-H1"]
    assert (report.trajectories, report.measurements, report.goal_scores) == (32, 32, 64)
    assert count(engine, T, T.c.period == "2025-H1") == 0
    assert count(engine, MT) == count(engine, T) == 31  # only 2026-H1 rows and their answers
    assert count(engine, GT) == 62
    # People seen only in 2025-H1 are forgotten; person 500 still has a 2026 trajectory.
    assert count(engine, PT) == 31 and count(engine, PT, PT.c.id == 500) == 1
    kept = cells(engine, "2025-H1")
    assert kept["g=GM0363"][0] == 32  # the figures include the late row, and stay
    assert cells(engine, "2026-H1") == before_new
    with engine.connect() as conn:
        state = period_state(conn, "2025-H1")
        assert state is not None and state.closed_at is not None

    # Rows for a closed period arriving later do not change its frozen figures, and go.
    insert_rows(engine, [answered("very-late", 700, D(2025, 6, 1))])
    with engine.begin() as conn:
        mark_dirty(conn, {"2025-H1"})
    assert recompute(engine, "2025-H1", P) is None
    assert cells(engine, "2025-H1") == kept
    assert purge(engine, P, today=D(2026, 7, 23)).trajectories == 1
    assert count(engine, T, T.c.period == "2025-H1") == 0


def test_withdrawal_removes_the_persons_rows_and_recomputes_every_affected_period(db_url: str) -> None:
    engine = store_engine(db_url)
    person = 42
    pseudonym = hashlib.sha256(b"person 42").hexdigest()
    rows = [answered(f"x{i}", 1000 + i, D(2026, 2, 1)) for i in range(25)]
    rows += [
        # Person 42: at provider B in 2025-H2, then twice at A in 2026-H1; the first of those
        # starts within 6 months of the B trajectory's end, a new start for 2025-H2's 3.2.
        Row("b1", person, D(2025, 10, 1), provider="98000002"),
        answered("a1", person, D(2026, 3, 1), start=D(2026, 1, 10), provider="98000001"),
        answered("a2", person, D(2026, 5, 1), start=D(2026, 3, 15), provider="98000001"),
    ]
    rows += [Row(f"y{i}", 2000 + i, D(2025, 9, 1), provider="98000002") for i in range(20)]
    insert_rows(engine, rows)
    with engine.begin() as conn:
        conn.execute(PPT.insert().values(key_version=1, pseudonym=pseudonym, person_id=person))
    for period in ("2025-H2", "2026-H1"):
        recompute(engine, period, P, force=True)
    h1 = cells(engine, "2026-H1")["g=GM0363"]
    assert h1[0] == 27
    assert orjson.loads(cells(engine, "2025-H2")["g=GM0363"][1])[IDX["gns.6m"]] == 20  # b1 restarts

    prepared = prepare_withdrawal(engine, WithdrawalRequest(
        providerAgb="98000001", pseudonyms=[WirePseudonym(keyVersion=1, value=pseudonym)],
        withdrawnOn=D(2026, 6, 1)), dt.datetime.now(dt.UTC))
    assert prepared.removed == 2 and count(engine, T, T.c.record_id.in_(["a1", "a2"])) == 2  # nothing gone yet
    outcome = commit_withdrawal(engine, "98000001", prepared.withdrawalId, dt.datetime.now(dt.UTC))
    assert outcome.removed == 2 and outcome.recordIds == ["a1", "a2"]
    for table in (T, MT, GT):
        assert count(engine, table, table.c.provider_agb == "98000001",
                     table.c.record_id.in_(["a1", "a2"])) == 0
    assert count(engine, T, T.c.record_id == "b1") == 1  # consent was withdrawn at A only
    with engine.connect() as conn:
        for period in ("2026-H1", "2025-H2"):  # 2025-H2: its 3.2 followed person 42 into A
            state = period_state(conn, period)
            assert state is not None and state.stale, period
    recompute(engine, "2026-H1", P)
    recompute(engine, "2025-H2", P)
    after = cells(engine, "2026-H1")["g=GM0363"]
    assert after[0] == 25
    h2 = orjson.loads(cells(engine, "2025-H2")["g=GM0363"][1])
    assert h2[IDX["gns.6m"]] == 21  # 20 never restart, and b1 no longer does
