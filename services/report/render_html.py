"""The HTML mirror report: one self-contained page, readable on screen and printable.

Everything is inline (CSS in a style element, charts as inline SVG) so the file
can be saved, mailed inside the organisation or opened offline, and so the
response can carry a Content-Security-Policy that forbids loading anything.
Jinja2 autoescapes every value; the only markup not escaped is the SVG
matplotlib produced from our own labels.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from services.report import labels
from services.report.charts import indicator_chart, inline_svg
from services.report.schemas import ReportDocument
from services.report.view import IndicatorView, ReportView, Shown, build_view
from ttp.periods import period_bounds
from ttp.timestamps import as_utc, rfc3339

TEMPLATES = Path(__file__).resolve().parent / "templates"
MONTHS = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
          "september", "oktober", "november", "december")


def _zone() -> dt.tzinfo:
    try:
        return ZoneInfo("Europe/Amsterdam")
    except ZoneInfoNotFoundError:  # pragma: no cover - minimal containers without tzdata
        return dt.UTC


def dutch_datetime(value: dt.datetime) -> str:
    """``20 juli 2026, 13:30 (UTC+02:00)``: Dutch local time with its offset, so no reader has to guess."""
    local = as_utc(value).astimezone(_zone())
    offset = local.strftime("%z") or "+0000"
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}, {local:%H:%M} (UTC{offset[:3]}:{offset[3:]})"


def time_element(value: dt.datetime) -> Markup:
    """The Dutch text of ``value`` in a ``<time>`` element whose ``datetime`` is RFC 3339 in UTC."""
    return Markup('<time datetime="{}">{}</time>').format(rfc3339(value), dutch_datetime(value))


def period_months(period: str) -> str:
    start, end = period_bounds(period)
    return f"{MONTHS[start.month - 1]} t/m {MONTHS[end.month - 1]} {end.year}"


def response(shown: Shown) -> str:
    """``80 van 120 (67%)``, the response coverage beside a figure."""
    return labels.coverage(shown.n, shown.responses, shown.eligible).removeprefix("respons ")


def response_short(shown: Shown) -> str:
    return labels.response_short(shown.n, shown.responses, shown.eligible)


def rate(shown: Shown) -> str:
    r = shown.response_rate
    return labels.percent(r) if r is not None else "–"


def paragraphs(text: str) -> Markup:
    """Provider text as escaped paragraphs; blank lines separate them, newlines break lines."""
    parts = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return Markup("").join(
        Markup("<p>") + Markup("<br>").join(escape(line) for line in p.split("\n")) + Markup("</p>")
        for p in parts
    )


def chart_caption(view: IndicatorView, periods: list[str]) -> str:
    """What the chart shows, in words: the caption and the SVG's accessible title."""
    span = f"{labels.period_short(periods[0])} tot en met {labels.period_short(periods[-1])}"
    if view.distribution_series:
        left = (f"Links: {view.spec.distribution_title.lower()}, eigen cijfers (blauw) en landelijk "
                "(grijs), als aandeel van de metingen.")
    elif any(s.own.is_figure for s in view.series):
        left = (f"Links: {view.spec.value_label.lower()} per reeks, eigen cijfers (blauw) en "
                "landelijk (grijs).")
    elif view.series:
        left = f"Links: in dit halfjaar nog geen cijfer ({view.series[0].own.short})."
    else:
        left = "Geen cijfers in deze periode."
    right = f"Rechts: ontwikkeling over {span}; doorgetrokken lijn eigen cijfers, stippellijn landelijk."
    note = f" {view.spec.chart_note}" if view.spec.chart_note and view.distribution_series else ""
    return f"{left}{note} {right}"


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["paragraphs"] = paragraphs
    return env


@functools.cache
def _css() -> str:
    return (TEMPLATES / "report.css").read_text(encoding="utf-8")


FORMATTERS = SimpleNamespace(
    count=labels.count, response=response, response_short=response_short, rate=rate, period_short=labels.period_short,
    datetime=time_element,
)


def render_html(doc: ReportDocument, view: ReportView | None = None) -> bytes:
    """The complete HTML document of a report."""
    view = view or build_view(doc)
    periods = view.trend_periods
    charts: dict[str, Markup] = {}
    captions: dict[str, str] = {}
    for ind in view.indicators:
        captions[ind.spec.key] = chart_caption(ind, periods)
        svg = indicator_chart(ind, periods, "svg")
        title = f"Grafiek {ind.spec.number} {ind.spec.title}. {captions[ind.spec.key]}"
        charts[ind.spec.key] = Markup(inline_svg(svg, f"chart-{ind.spec.key}", title))
    html = _environment().get_template("report.html.j2").render(
        doc=doc,
        view=view,
        labels=labels,
        fmt=FORMATTERS,
        css=Markup(_css()),
        charts=charts,
        chart_captions=captions,
        variant_badge=labels.VARIANT_BADGES[doc.variant],
        variant_statement=labels.VARIANT_STATEMENTS[doc.variant].format(threshold=doc.threshold),
        generated=time_element(doc.generatedAt),
        period_months=period_months(doc.period),
        low_response_pct=int(labels.LOW_RESPONSE * 100),
        splits_pending=labels.SPLITS_PENDING,
    )
    return html.encode("utf-8")
