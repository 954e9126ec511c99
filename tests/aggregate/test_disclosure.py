"""Disclosure control, checked by the LP audit: what each recipient can work out of hidden cells."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import Connection, Engine, Table, func, select, update

from services.aggregate.aggregate_models import OutcomeCell
from services.aggregate.cell_key import CellKeyMethod
from services.aggregate.cells import CellKey, key_from_breakdown
from services.aggregate.disclosure import Protection
from services.aggregate.feeds import (
    Output,
    build_table,
    gemeente_output,
    national_output,
    provider_output,
    rijk_output,
)
from services.aggregate.lp_audit import Recipient, audit, audit_recipient, recipient_outputs, true_counts
from services.aggregate.recompute import load_domains, mark_dirty, recompute, release
from tests.aggregate.factory import Row, insert_rows, store_engine, synthetic_rows
from tests.helpers.disclosure_attacks import legacy_table
from ttp.outcomes import Cell, OutcomeTable, Scope

PERIOD = "2026-H1"
AS_OF = dt.date(2027, 9, 1)
PROTECTION = Protection(threshold=10, ratio=0.5)
METHOD = CellKeyMethod(b"disclosure test secret.........." * 2, 10)
OC: Table = OutcomeCell.__table__  # type: ignore[assignment]


@pytest.fixture
def realistic(db_url: str) -> Engine:
    """8,000 synthetic trajectories: 55 gemeenten (three tiny ones), PC4 areas across
    municipal borders, four providers of different kinds, restarts across providers."""
    engine = store_engine(db_url)
    insert_rows(engine, synthetic_rows(8000, seed=7, period=PERIOD, today=dt.date(2027, 3, 1)))
    recompute(engine, PERIOD, PROTECTION, force=True)
    return engine


def test_lp_audit_passes_for_every_gemeente_and_for_the_rijk(realistic: Engine) -> None:
    with realistic.connect() as conn:
        gemeenten = load_domains(conn, PERIOD).gemeenten
        assert len(gemeenten) >= 50
        recipients = [Recipient("rijk")] + [Recipient("gemeente", g) for g in gemeenten]
        sensitive = 0
        for recipient in recipients:
            report = audit_recipient(conn, PERIOD, recipient, PROTECTION, method=METHOD, as_of=AS_OF)
            assert report.ok, (str(recipient), [f.describe() for f in report.failures[:3]],
                               report.small_published[:3], report.small_counts[:3])
            sensitive += report.sensitive
        assert sensitive > 1000  # the check had plenty to check


def test_naive_primary_only_suppression_fails_the_same_audit(realistic: Engine) -> None:
    """Hide only the cells below the threshold and show the rest exactly (what a naive
    implementation does): the audit recovers hidden cells from totals and margins, for the Rijk
    and for gemeenten, and lists the small counts inside the cells shown."""
    with realistic.begin() as conn:
        conn.execute(update(OC).where(OC.c.period == PERIOD).values(
            suppressed=OC.c.n < PROTECTION.threshold, withheld=0))
    with realistic.connect() as conn:
        rijk = audit(*_legacy_outputs(conn, Recipient("rijk")))
        amsterdam = audit(*_legacy_outputs(conn, Recipient("gemeente", "GM0363")))
    assert not rijk.ok and not amsterdam.ok
    exact = [f for f in rijk.failures + amsterdam.failures if f.low == f.high == f.true_value]
    assert exact, "some hidden cells are recovered exactly"
    assert not rijk.small_published  # every small cell itself is hidden: the leak is secondary
    assert amsterdam.small_counts  # but the categories inside the published cells are not


def _legacy_outputs(conn: Connection, recipient: Recipient) -> tuple[list[OutcomeTable], Callable[[CellKey], int],
                                                                     Protection]:
    tables, _ = recipient_outputs(conn, PERIOD, recipient, threshold=10, as_of=AS_OF, method=METHOD)
    outputs = [
        legacy_table(conn, PERIOD, _output_of(t), threshold=10, as_of=AS_OF) for t in tables
    ]
    counts = true_counts(conn, PERIOD)
    return outputs, lambda k: counts.get(k, 0), PROTECTION


def _output_of(table: OutcomeTable) -> Output:
    code = table.scope.code
    if table.scope.kind == "gemeente":
        return gemeente_output(code or "")
    if table.scope.kind == "provider":
        return provider_output(code or "", "deelbaar")
    return rijk_output() if table.scope.kind == "rijk" else national_output()


def test_a_cell_has_the_same_status_in_every_output_that_contains_it(realistic: Engine) -> None:
    with realistic.connect() as conn:
        tables, _ = recipient_outputs(conn, PERIOD, Recipient("all"), threshold=10, as_of=AS_OF, method=METHOD)
    status: dict[tuple[object, ...], set[str]] = {}
    for table in tables:
        g = table.scope.code if table.scope.kind == "gemeente" else None
        v = table.scope.code if table.scope.kind == "provider" else None
        for cell in table.cells:
            if cell.indicator == "uitval":
                key = key_from_breakdown(cell.breakdown, gemeente=g, provider=v)
                status.setdefault(key, set()).add(cell.status)
    shared = [k for k, s in status.items() if len(s) > 1]
    assert not shared
    # Gemeente totals are in the gemeente feed and the Rijk feed: linked, and consistent.
    assert (("GM0363",), (), (), ()) in status


def test_pc4_across_a_municipal_border_is_split_by_gemeente(db_url: str) -> None:
    engine = store_engine(db_url)
    rows = [Row(f"a{i}", i, dt.date(2026, 3, 1), gemeente="GM0363", pc4=("1111" if i < 40 else "1012"))
            for i in range(80)]
    rows += [Row(f"d{i}", 1000 + i, dt.date(2026, 3, 1), gemeente="GM0384", pc4=("1111" if i < 3 else "1112"))
             for i in range(60)]
    insert_rows(engine, rows)
    recompute(engine, PERIOD, PROTECTION, force=True)
    now = dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        diemen = build_table(conn, PERIOD, gemeente_output("GM0384"), threshold=10, as_of=AS_OF, generated_at=now,
                             method=METHOD)
        amsterdam = build_table(conn, PERIOD, gemeente_output("GM0363"), threshold=10, as_of=AS_OF,
                                generated_at=now, method=METHOD)
        rijk = build_table(conn, PERIOD, rijk_output(), threshold=10, as_of=AS_OF, generated_at=now, method=METHOD)

    def pc4(t: OutcomeTable, code: str) -> Cell:
        return next(c for c in t.cells if c.indicator == "uitval" and c.breakdown == {"pc4": code})

    assert pc4(diemen, "1111").status == "suppressed"  # three Diemen residents
    shown = pc4(amsterdam, "1111").n
    assert shown is not None and abs(shown - 40) <= 3  # Amsterdam's own residents of 1111 only (perturbed)
    assert not any("pc4" in c.breakdown for c in rijk.cells)  # no PC4 total across the border
    with engine.connect() as conn:
        for code in ("GM0384", "GM0363"):
            assert audit_recipient(conn, PERIOD, Recipient("gemeente", code), PROTECTION, method=METHOD,
                                   as_of=AS_OF).ok


def test_a_hidden_cell_stays_hidden_in_later_versions_of_the_same_period(db_url: str) -> None:
    """Figures seen by a third party fix the pattern: a late delivery that lifts a cell over
    the threshold must not reveal it, or the two versions give the old value away."""
    engine = store_engine(db_url)
    rows = [Row(f"r{i}", i, dt.date(2026, 4, 1), pc4="1011" if i < 6 else "1012") for i in range(60)]
    insert_rows(engine, rows)
    recompute(engine, PERIOD, PROTECTION, force=True)
    with engine.begin() as conn:
        release(conn, PERIOD)
    key = "g=GM0363;p=1011"
    with engine.connect() as conn:
        assert conn.execute(select(OC.c.suppressed).where(OC.c.period == PERIOD, OC.c.cell_key == key)).scalar()
    insert_rows(engine, [Row(f"late{i}", 500 + i, dt.date(2026, 4, 2), pc4="1011") for i in range(20)])
    with engine.begin() as conn:
        mark_dirty(conn, {PERIOD})
    recompute(engine, PERIOD, PROTECTION)
    with engine.connect() as conn:
        n, hidden = conn.execute(
            select(OC.c.n, OC.c.suppressed).where(OC.c.period == PERIOD, OC.c.cell_key == key)).one()
        assert n == 26 and hidden
        total = conn.execute(select(func.count()).select_from(OC).where(OC.c.period == PERIOD)).scalar()
        assert total


def _rijk_table(cells: list[tuple[str | None, int | None]], rounding: int | None = None) -> OutcomeTable:
    return OutcomeTable(
        period=PERIOD, scope=Scope(kind="rijk"), variant="feed", threshold=10,
        generatedAt=dt.datetime.now(dt.UTC), trajectories=None, withoutBsn=None, rounding=rounding,
        cells=[Cell(indicator="uitval", breakdown={"gemeente": g} if g else {}, n=n, responses=n, value=None,
                    status="ok" if n is not None else "suppressed") for g, n in cells],
    )


def test_audit_finds_differencing_and_treats_rounded_counts_as_ranges_with_integrality() -> None:
    truth: dict[CellKey, int] = {(("GM0002",), (), (), ()): 3}

    def lookup(key: CellKey) -> int:
        return truth.get(key, 0)

    exact = audit([_rijk_table([(None, 53), ("GM0001", 50), ("GM0002", None)])], lookup, PROTECTION,
                  all_gemeenten=True)
    assert [(f.low, f.high) for f in exact.failures] == [(3, 3)]  # 53 - 50
    # Rounded to fives, 53 shows as 55 and 50 as 50: the relaxation allows 0 to 10 ...
    relaxed = audit([_rijk_table([(None, 55), ("GM0001", 50), ("GM0002", None)], rounding=5)], lookup,
                    PROTECTION, all_gemeenten=True, integer=False)
    assert relaxed.ok and (relaxed.bounds[0].low, relaxed.bounds[0].high) == (0, 10)
    # ... but whole numbers give 53..57 minus 48..52: 1 to 9, short of the threshold.
    whole = audit([_rijk_table([(None, 55), ("GM0001", 50), ("GM0002", None)], rounding=5)], lookup,
                  PROTECTION, all_gemeenten=True)
    assert (whole.bounds[0].low, whole.bounds[0].high) == (1, 9) and not whole.ok


def test_audit_flags_a_small_number_shown() -> None:
    report = audit([_rijk_table([(None, 60), ("GM0001", 56), ("GM0002", 4)])], lambda _k: 0, PROTECTION,
                   all_gemeenten=True)
    assert not report.ok and report.small_published == [(("GM0002",), (), (), ())]
