"""Statuses and labels a researcher or quality officer would check (issue 18): the period's
voorlopig / definitief banner, n.v.t. for a jeugdige under 12, figures over too few answers
greyed and off the trend line, and explanations that say what is actually computed."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Literal

import pypdf
import pytest

from services.report import labels
from services.report.document import build_report
from services.report.figures import FigureCache
from services.report.render_csv import render_csv
from services.report.render_html import render_html
from services.report.render_pdf import render_pdf
from services.report.schemas import ReportDocument
from services.report.view import Shown, build_view
from tests.report.factory import standard_figures
from ttp.outcomes import Cell

AGB, PERIOD = "98000001", "2026-H1"


def report(variant: Literal["intern", "deelbaar"] = "intern") -> ReportDocument:
    fake = standard_figures(AGB, PERIOD)
    inputs = asyncio.run(FigureCache(fake, ttl=60).inputs(AGB, PERIOD, variant))
    return build_report(provider_agb=AGB, provider_name="Jeugdzorg De Horizon", period=PERIOD,
                        variant=variant, inputs=inputs, annotations=[], threshold=10)


@pytest.fixture(scope="module")
def doc() -> ReportDocument:
    return report()


def _pdf_text(pdf: bytes) -> str:
    return " ".join(" ".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)


@pytest.mark.parametrize("status", ["voorlopig", "definitief"])
def test_the_report_says_voorlopig_or_definitief_in_html_pdf_and_csv(
    doc: ReportDocument, status: Literal["voorlopig", "definitief"]
) -> None:
    """SPEC: "A half year that is still running, or whose delivery term has not passed, is
    'voorlopig' in every output (as CBS's voorlopig / definitief)"."""
    shown = doc.model_copy(update={"periodStatus": status})
    banner = labels.PERIOD_STATUS_LABELS[status]
    assert banner.encode() in render_html(shown)
    assert " ".join(banner.split()) in _pdf_text(render_pdf(shown))
    rows = list(csv.DictReader(io.StringIO(render_csv(shown).decode("utf-8-sig"))))
    assert {r["periodStatus"] for r in rows} == {status}
    other = "definitief" if status == "voorlopig" else "voorlopig"
    assert labels.PERIOD_STATUS_LABELS[other].encode() not in render_html(shown)


def _shown(responses: int | None, eligible: int | None, n: int = 40, value: float | None = 0.5,
           status: str = "ok") -> Shown:
    cell = Cell(indicator="zonderHulpVerder", breakdown={"informant": "jeugdige"}, n=n,
                responses=responses, eligible=eligible, value=value, status=status)  # type: ignore[arg-type]
    return Shown(cell, "zonderHulpVerder")


def test_the_jeugdige_response_is_over_those_aged_12_and_over_and_nvt_under_12() -> None:
    """Seed 001: "<12 jaar: ouders vullen in". 12 answers of 20 young people aged 12+ among 40
    trajectories is 60%, not 30%; with nobody of 12+ the response is "n.v.t.", not "0%"."""
    assert _shown(12, 20).coverage == "respons 12 van 20 (60%)"
    assert _shown(12, 20).response_rate == pytest.approx(0.6)
    nvt = _shown(0, 0, value=None, status="not-applicable")
    assert nvt.coverage == "respons n.v.t."
    assert nvt.short == "n.v.t."
    assert labels.response_short(40, 0, 0) == "respons n.v.t."


def test_uitval_and_3_2_show_no_response(doc: ReportDocument) -> None:
    """SPEC: "uitval and 3.2 have no response rate": they are registered for every trajectory."""
    view = build_view(doc)
    for ind in view.indicators:
        if ind.spec.key in ("uitval", "geenNieuweStart"):
            for s in ind.series:
                assert s.own.coverage == "" and s.own.response_rate is None, s.label


def test_a_figure_over_fewer_than_10_answers_is_greyed_with_its_count_and_off_the_trend() -> None:
    """Issue 18: "A percentage over fewer than 10 responses is not a headline in the intern
    report either: shown greyed with its count, not drawn as a trend point like the others"."""
    few, enough = _shown(9, 30), _shown(10, 30)
    assert few.few_responses and few.value == 0.5 and few.trend_value is None
    assert not enough.few_responses and enough.trend_value == 0.5
    doc = report()

    def few_answers(cells: list[Cell]) -> list[Cell]:
        return [c.model_copy(update={"responses": 7, "eligible": 20})
                if c.indicator == "zonderHulpVerder" and c.breakdown == {"informant": "jeugdige"}
                else c for c in cells]

    trend = [t.model_copy(update={"cells": few_answers(t.cells)}) if t.period == PERIOD else t
             for t in doc.trend]
    changed = doc.model_copy(update={"cells": few_answers(doc.cells), "trend": trend})
    series = next(s for ind in build_view(changed).indicators if ind.spec.key == "zonderHulpVerder"
                  for s in ind.series if s.own.cell and s.own.cell.breakdown == {"informant": "jeugdige"})
    assert series.own.few_responses and series.trend[-1].own.trend_value is None
    html = render_html(changed).decode()
    assert 'class="fig few"' in html and '<span class="cov few">7 metingen</span>' in html
    assert "(7 metingen)" in _pdf_text(render_pdf(changed))


def test_the_uitval_distribution_is_a_share_of_trajectories_and_3_4_states_its_headline() -> None:
    assert labels.SPECS["uitval"].distribution_axis == "Aandeel van de trajecten"
    assert labels.SPECS["tevredenheid"].distribution_axis == "Aandeel van de metingen"
    assert "aandeel met score 1 of 2" in labels.SPECS["doelrealisatie"].definition
    assert "elk doel weegt even zwaar" in labels.SPECS["doelrealisatie"].definition
    assert "aandeel met een sterke of matige verbetering" in labels.SPECS["afnameProblematiek"].definition
    assert labels.SPECS["doelrealisatie"].population == {"freelyAccessible": "false"}


def test_the_fallback_link_names_the_fields_actually_used() -> None:
    """The fallback key is gender + birth date + postcode (services/ingest/minimise.py); the
    guide used to add startdatum and hulpvorm, which are not in the key."""
    text = dict(labels.READING_GUIDE)["Zonder BSN"]
    assert "geslacht, geboortedatum en postcode" in text
    assert "startdatum" not in text and "hulpvorm" not in text
