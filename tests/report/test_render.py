"""The four formats of a report: the PDF's text and pages, the HTML's structure and
charts, the CSV's rows. Built from hand-made tables, no database or network."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
from html.parser import HTMLParser
from typing import ClassVar, Literal

import pypdf
import pytest

from services.report import labels
from services.report.charts import indicator_chart, inline_svg
from services.report.document import build_report, cell_key
from services.report.figures import FigureCache
from services.report.render_csv import FIXED, render_csv
from services.report.render_html import render_html
from services.report.render_pdf import render_pdf
from services.report.schemas import AnnotationOut, ReportDocument
from services.report.view import build_view
from tests.report.factory import standard_figures
from ttp.outcomes import INDICATORS

AGB, PERIOD = "98000001", "2026-H1"
NAME = "Jeugdzorg De Horizon"
STORY = "Na de invoering van de digitale vragenlijst steeg de respons bij ouders."
NEEDED = "Een vaste contactpersoon per gezin & minder wisselingen <in het team>."


def annotation(**texts: str) -> AnnotationOut:
    return AnnotationOut(indicator="tevredenheid", updatedAt=dt.datetime(2026, 7, 25, 10, tzinfo=dt.UTC),
                         **texts)


@pytest.fixture(scope="module")
def docs() -> dict[str, ReportDocument]:
    fake = standard_figures(AGB, PERIOD)
    cache = FigureCache(fake, ttl=60)
    out: dict[str, ReportDocument] = {}
    variants: tuple[Literal["intern", "deelbaar"], ...] = ("intern", "deelbaar")
    for variant in variants:
        inputs = asyncio.run(cache.inputs(AGB, PERIOD, variant))
        out[variant] = build_report(
            provider_agb=AGB, provider_name=NAME, period=PERIOD, variant=variant,
            inputs=inputs, annotations=[annotation(story=STORY, needs=NEEDED)], threshold=10)
    return out


def _pages(pdf: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [re.sub(r"\s+", " ", page.extract_text()) for page in reader.pages]


@pytest.fixture(scope="module")
def pdf_pages(docs: dict[str, ReportDocument]) -> dict[str, list[str]]:
    return {v: _pages(render_pdf(d)) for v, d in docs.items()}


@pytest.mark.parametrize("variant", ["intern", "deelbaar"])
def test_pdf_has_one_page_per_section(pdf_pages: dict[str, list[str]], variant: str) -> None:
    pages = pdf_pages[variant]
    assert len(pages) == 1 + len(INDICATORS) + 1
    assert "Kerncijfers" in pages[0]
    for i, indicator in enumerate(INDICATORS, start=1):
        spec = labels.SPECS[indicator]
        heading = f"{spec.number} {spec.title}"
        holding = [j for j, text in enumerate(pages) if spec.definition[:60] in text]
        assert holding == [i], (indicator, holding)
        assert heading in pages[i] or f"{spec.number}  {spec.title}" in pages[i]
    assert "Toelichting" in pages[-1]
    assert f"pagina {len(pages)} van {len(pages)}" in pages[-1]
    badge = labels.VARIANT_BADGES[variant]
    assert all(badge in p for p in pages)


@pytest.mark.parametrize("variant", ["intern", "deelbaar"])
def test_pdf_text_holds_the_figures_with_n_and_response(
    docs: dict[str, ReportDocument], pdf_pages: dict[str, list[str]], variant: str
) -> None:
    doc, pages = docs[variant], pdf_pages[variant]
    view = build_view(doc)
    assert NAME in pages[0] and labels.count(doc.trajectories) in pages[0]
    checked = 0
    for i, ind in enumerate(view.indicators, start=1):
        for s in ind.series:
            own = s.own
            if own.is_figure:
                assert own.short in pages[i], (ind.spec.key, s.label)
                if s in ind.summary_series:
                    assert own.short in pages[0]
                assert f"n {labels.count(own.n)}" in pages[i]
                # Over the trajectories where the informant answers (a jeugdige from 12, seed
                # 001), no longer over every trajectory.
                assert labels.response_short(own.n, own.responses, own.eligible) in pages[i]
                checked += 1
            if s.national.is_figure:
                assert s.national.short in pages[i]
        for row in ind.splits:
            if any(o.is_figure for o, _ in row.cells):
                assert row.label in pages[i]
    assert checked >= 8
    tevredenheid = 1 + INDICATORS.index("tevredenheid")
    assert STORY in pages[tevredenheid]
    assert NEEDED in pages[tevredenheid]
    assert labels.NO_ANNOTATION in pages[1 + INDICATORS.index("uitval")]


def test_deelbaar_pdf_says_what_is_hidden(pdf_pages: dict[str, list[str]]) -> None:
    assert any("afgeschermd" in p for p in pdf_pages["deelbaar"][1:-1])
    assert any("te weinig metingen" in p for p in pdf_pages["deelbaar"][1:-1])
    assert not any("afgeschermd" in p for p in pdf_pages["intern"][1:-1])


def test_pdf_keeps_one_page_per_section_with_the_longest_annotations(
    docs: dict[str, ReportDocument]
) -> None:
    long = ("Een lang verhaal over wat we zien en wat we eraan doen. " * 80)[:3990] + " EINDE."
    doc = docs["intern"].model_copy(update={"annotations": [annotation(
        story=long, recognition=long, explanation=long, appraisal=long, needs=long)]})
    pages = _pages(render_pdf(doc))
    assert len(pages) == 2 + len(INDICATORS)
    assert "EINDE." in pages[1 + INDICATORS.index("tevredenheid")]


class StrictHTML(HTMLParser):
    """Well-formedness on top of html.parser: every element closed in order, ids unique."""

    VOID: ClassVar[set[str]] = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.doctype = False
        self.text: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        ident = found.get("id")
        if ident is not None:
            if ident in self.ids:
                self.errors.append(f"duplicate id {ident}")
            self.ids.add(ident)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            self.errors.append(f"end tag for void element {tag}")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: bytes) -> StrictHTML:
    parser = StrictHTML()
    parser.feed(html.decode("utf-8"))
    parser.close()
    return parser


@pytest.mark.parametrize("variant", ["intern", "deelbaar"])
def test_html_is_well_formed_and_holds_every_chart(docs: dict[str, ReportDocument], variant: str) -> None:
    html = render_html(docs[variant])
    parsed = parse(html)
    assert parsed.doctype
    assert parsed.errors == []
    assert parsed.stack == []
    names = [t for t, _ in parsed.tags]
    assert names.count("html") == names.count("head") == names.count("body") == names.count("main") == 1
    assert dict(parsed.tags[0][1]).get("lang") == "nl"
    # one inline SVG chart per indicator, each with an accessible title naming it
    charts = [a for t, a in parsed.tags if t == "svg" and a.get("class") == "chart"]
    assert len(charts) == len(INDICATORS)
    for indicator in INDICATORS:
        assert f"chart-{indicator}" in parsed.ids
        title = f"chart-{indicator}-title"
        assert title in parsed.ids
    # self-contained: no scripts, no external resources
    assert "script" not in names and "link" not in names and "img" not in names
    assert not re.search(rb'(src|href)="(https?:)?//', html)
    # every section is there
    for anchor in ["samenvatting", "toelichting", *(f"indicator-{i}" for i in INDICATORS)]:
        assert anchor in parsed.ids


def test_html_text_holds_figures_and_escapes_annotations(docs: dict[str, ReportDocument]) -> None:
    html = render_html(docs["intern"])
    text = " ".join(parse(html).text)
    assert STORY in text and NEEDED in text  # the parser un-escapes: the text is intact
    assert b"&lt;in het team&gt;" in html and b"<in het team>" not in html
    view = build_view(docs["intern"])
    for ind in view.indicators:
        assert ind.spec.title in text
        for s in ind.series:
            if s.own.is_figure:
                assert s.own.short in text
                assert f"n {labels.count(s.own.n)}" in text


def test_csv_has_every_cell_with_the_national_reference(docs: dict[str, ReportDocument]) -> None:
    doc = docs["deelbaar"]
    raw = render_csv(doc)
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == len(doc.cells)
    assert list(rows[0])[: len(FIXED)] == FIXED
    national = {cell_key(c): c for c in doc.national.cells} if doc.national else {}
    for row, cell in zip(rows, doc.cells, strict=True):
        assert row["indicator"] == cell.indicator and row["status"] == cell.status
        assert row["n"] == ("" if cell.n is None else str(cell.n))
        if cell.value is not None:
            assert float(row["value"]) == pytest.approx(cell.value, rel=1e-5)
        for category, count in (cell.distribution or {}).items():
            assert row[f"count_{category}"] == str(count)
        nat = national.get(cell_key(cell))
        if nat is not None and nat.value is not None:
            assert float(row["nationalValue"]) == pytest.approx(nat.value, rel=1e-5)


def test_charts_render_both_formats_with_unique_ids(docs: dict[str, ReportDocument]) -> None:
    view = build_view(docs["intern"])
    ind = view.indicators[INDICATORS.index("tevredenheid")]
    png = indicator_chart(ind, view.trend_periods, "png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    svg = inline_svg(indicator_chart(ind, view.trend_periods, "svg"), "c1", "Grafiek <2>")
    assert svg.startswith("<svg") and "<?xml" not in svg
    assert "<title id=\"c1-title\">Grafiek &lt;2&gt;</title>" in svg
    ids = re.findall(r'\bid="([^"]+)"', svg)
    assert ids and all(i == "c1" or i.startswith("c1-") for i in ids)
    refs = re.findall(r'url\(#([^)]+)\)', svg)
    assert all(r.startswith("c1-") for r in refs)
