"""The report document: the intern variant is the indicator computation, the shareable
variant shows no small number, and the added context (trend, national reference) never
gives away what suppression protects."""

from __future__ import annotations

import asyncio

import pytest

from services.report.document import (
    DisclosureViolationError,
    ReportNotFoundError,
    build_report,
    cell_key,
    reference_allowed,
    shareable_problems,
)
from services.report.figures import FigureCache, trend_periods
from services.report.schemas import ReportDocument
from tests.report.factory import FakeFigures, standard_figures
from ttp.outcomes import Cell

AGB, PERIOD, THRESHOLD = "98000001", "2026-H1", 10


def build(fake: FakeFigures, variant: str, period: str = PERIOD) -> ReportDocument:
    inputs = asyncio.run(FigureCache(fake, ttl=0).inputs(AGB, period, variant))
    return build_report(provider_agb=AGB, provider_name="Jeugdzorg De Horizon", period=period,
                        variant=variant, inputs=inputs, annotations=[],  # type: ignore[arg-type]
                        threshold=THRESHOLD)


def test_intern_variant_equals_the_indicator_computation() -> None:
    fake = standard_figures(AGB, PERIOD)
    doc = build(fake, "intern")
    table = fake.provider[(AGB, PERIOD, "intern")]
    assert [c.model_dump() for c in doc.cells] == [c.model_dump() for c in table.cells]
    assert (doc.trajectories, doc.withoutBsn, doc.generatedAt) == (
        table.trajectories, table.withoutBsn, table.generatedAt)
    # and it survives the wire unchanged
    again = ReportDocument.model_validate_json(doc.model_dump_json())
    assert again.cells == table.cells
    # small numbers are really there in the intern variant (else the next test proves nothing)
    assert any(c.n is not None and 0 < c.n < THRESHOLD and c.status == "ok" for c in doc.cells)


def test_deelbaar_variant_has_no_cell_under_the_threshold() -> None:
    fake = standard_figures(AGB, PERIOD)
    doc = build(fake, "deelbaar")
    shown = list(doc.cells)
    for t in doc.trend:
        shown += t.cells + (t.national.cells if t.national else [])
    shown += doc.national.cells if doc.national else []
    assert shown
    for cell in shown:
        assert cell.n is None or cell.n == 0 or cell.n >= THRESHOLD, cell
        if cell.status.startswith("suppressed"):
            assert (cell.n, cell.responses, cell.value, cell.distribution) == (None,) * 4
        if cell.status == "too-few-responses":
            assert cell.value is None and cell.distribution is None
    statuses = {c.status for c in doc.cells}
    assert {"suppressed", "too-few-responses", "ok"} <= statuses
    # every cell small in the intern table is hidden in the shareable one
    intern = {cell_key(c): c for c in fake.provider[(AGB, PERIOD, "intern")].cells}
    for cell in doc.cells:
        small = intern[cell_key(cell)].n
        if small is not None and 0 < small < THRESHOLD:
            if (cell.variant or "").startswith("volgensPlan"):
                # Its n is its own (the trajectories ended volgens plan, not a "response"):
                # a small one is withheld with the value, the population may still show.
                assert cell.status in ("suppressed", "too-few-responses") and cell.n is None
            else:
                assert cell.status == "suppressed"


def test_deelbaar_never_says_which_hidden_cells_are_the_small_ones() -> None:
    fake = standard_figures(AGB, PERIOD)
    table = fake.provider[(AGB, PERIOD, "deelbaar")]
    hidden = [c for c in table.cells if c.status == "suppressed"]
    hidden[0].status = "suppressed-primary"
    hidden[1].status = "suppressed-secondary"
    doc = build(fake, "deelbaar")
    assert not {"suppressed-primary", "suppressed-secondary"} & {c.status for c in doc.cells}


def test_a_shareable_table_with_a_small_cell_is_refused_not_patched() -> None:
    fake = standard_figures(AGB, PERIOD)
    table = fake.provider[(AGB, PERIOD, "deelbaar")]
    hidden = next(c for c in table.cells if c.status == "suppressed")
    hidden.status, hidden.n, hidden.responses, hidden.value = "ok", 4, 3, 7.0
    with pytest.raises(DisclosureViolationError):
        build(fake, "deelbaar")
    # the intern variant of the same provider is unaffected
    assert build(fake, "intern").variant == "intern"


def test_a_suppressed_cell_carrying_its_value_is_refused() -> None:
    fake = standard_figures(AGB, PERIOD)
    previous = trend_periods(PERIOD)[0]
    table = fake.provider[(AGB, previous, "deelbaar")]
    hidden = next(c for c in table.cells if c.status == "suppressed")
    hidden.value = 0.5
    with pytest.raises(DisclosureViolationError):
        build(fake, "deelbaar")
    hidden.value = None
    withheld = next(c for c in table.cells if c.status == "too-few-responses")
    withheld.value = 6.5
    with pytest.raises(DisclosureViolationError):
        build(fake, "deelbaar")


def test_shareable_problems_accepts_zero_and_threshold() -> None:
    fake = standard_figures(AGB, PERIOD)
    table = fake.provider[(AGB, PERIOD, "deelbaar")].model_copy(deep=True)
    ok = next(c for c in table.cells if c.status == "ok")
    ok.n = 0
    assert shareable_problems(table, THRESHOLD) == []
    ok.n = THRESHOLD
    assert shareable_problems(table, THRESHOLD) == []
    ok.n = THRESHOLD - 1
    assert shareable_problems(table, THRESHOLD)
    # a stricter configured threshold than the table's own wins
    ok.n = THRESHOLD
    assert shareable_problems(table, THRESHOLD + 5)


def _cell(n: int | None, responses: int | None, status: str = "ok") -> Cell:
    return Cell(indicator="tevredenheid", breakdown={"hulpvorm": "13"}, n=n, responses=responses,
                value=7.0 if status == "ok" else None, status=status)


def test_national_reference_is_shown_when_the_national_table_shows_it_whatever_the_own_counts() -> None:
    """A rule on the provider's own counts (national minus own below the threshold) would tell a
    reader of the shared report something about the provider's hidden counts (issue 16)."""
    for own in (_cell(12, 8), _cell(3, 1), _cell(None, None, "suppressed"), None):
        assert reference_allowed(_cell(20, 30), own, THRESHOLD)
        assert not reference_allowed(_cell(None, None, "suppressed"), own, THRESHOLD)


def test_national_cell_close_to_the_providers_own_is_shown_in_both_variants() -> None:
    fake = standard_figures(AGB, PERIOD)
    intern = fake.provider[(AGB, PERIOD, "intern")]
    mine = next(c for c in intern.cells if c.breakdown == {"freelyAccessible": "true"}
                and c.indicator == "uitval")
    national = fake.national[PERIOD]
    nat = next(c for c in national.cells if cell_key(c) == cell_key(mine))
    nat.n = (mine.n or 0) + 3
    for variant in ("intern", "deelbaar"):
        doc = build(fake, variant)
        assert doc.national is not None
        assert cell_key(mine) in {cell_key(c) for c in doc.national.cells}
        assert cell_key(mine) not in {cell_key(c) for c in doc.national.withheld}


def test_broken_national_table_drops_the_reference_not_the_report() -> None:
    fake = standard_figures(AGB, PERIOD)
    bad = next(c for c in fake.national[PERIOD].cells if c.status == "ok")
    bad.n = 2
    doc = build(fake, "deelbaar")
    assert doc.national is None
    assert any("landelijke referentie" in n for n in doc.notes)


def test_missing_period_and_missing_trend_periods() -> None:
    fake = standard_figures(AGB, PERIOD)
    with pytest.raises(ReportNotFoundError):
        build(fake, "intern", period="2030-H1")
    middle = trend_periods(PERIOD)[1]
    del fake.provider[(AGB, middle, "intern")]
    doc = build(fake, "intern")
    assert [t.period for t in doc.trend] == list(trend_periods(PERIOD))
    assert [t.available for t in doc.trend] == [True, False, True, True]
    assert all(set(c.breakdown) - {"informant"} in (set(), {"freelyAccessible"})
               for t in doc.trend for c in t.cells)
    # 3.3 is defined for niet-vrij-toegankelijke hulp only: that group is its headline
    afname = [c for c in doc.trend[-1].cells if c.indicator == "afnameProblematiek"]
    assert [c.breakdown for c in afname] == [
        {"freelyAccessible": "false", "informant": "jeugdige"},
        {"freelyAccessible": "false", "informant": "ouder"},
    ]
