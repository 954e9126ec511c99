"""The PDF mirror report, laid out with reportlab's platypus: one page per section.

Sections are a summary page, one page per indicator of the basisset and a
reading guide. Each section is kept on exactly one A4 page (``KeepInFrame``
shrinks a section that would overflow, rather than letting a table spill onto
a page of its own), so the page numbers a quality officer refers to in a
meeting are the same for every provider and period.

Fonts are the DejaVu faces matplotlib ships, so the PDF embeds the same
typeface as its charts and needs no system fonts.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    Image,
    KeepInFrame,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as _Table

from services.report import labels
from services.report.charts import indicator_chart
from services.report.render_html import chart_caption, dutch_datetime, period_months
from services.report.schemas import ReportDocument
from services.report.view import IndicatorView, ReportView, Shown, build_view

BLUE = colors.HexColor("#01689B")
VIOLET = colors.HexColor("#42145F")
LIGHT = colors.HexColor("#E6F1F6")
GREY = colors.HexColor("#6B6B6B")
LINE = colors.HexColor("#D5D5D5")
WARN = colors.HexColor("#FFF4E0")

PAGE_W, PAGE_H = A4
MARGIN = 16 * mm
FRAME_W = PAGE_W - 2 * MARGIN
FRAME_H = PAGE_H - 2 * MARGIN - 14 * mm  # room for the running header and footer


@functools.cache
def _fonts() -> tuple[str, str, str]:
    """Register DejaVu Sans (regular, bold, oblique) from matplotlib's data directory."""
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    names = ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique")
    for name in names:
        pdfmetrics.registerFont(TTFont(name, str(ttf / f"{name}.ttf")))
    pdfmetrics.registerFontFamily("DejaVuSans", normal=names[0], bold=names[1], italic=names[2],
                                  boldItalic=names[1])
    return names


@functools.cache
def _styles() -> dict[str, ParagraphStyle]:
    regular, bold, _italic = _fonts()
    base = ParagraphStyle("base", fontName=regular, fontSize=9, leading=12.5)
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5, textColor=GREY),
        "title": ParagraphStyle("title", parent=base, fontName=bold, fontSize=18, leading=22,
                                textColor=BLUE, spaceAfter=2),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=11.5, leading=15, spaceAfter=6),
        "h1": ParagraphStyle("h1", parent=base, fontName=bold, fontSize=16, leading=20,
                             textColor=BLUE, spaceBefore=2, spaceAfter=4),
        "h2": ParagraphStyle("h2", parent=base, fontName=bold, fontSize=11.5, leading=15,
                             textColor=BLUE, spaceBefore=8, spaceAfter=3),
        "h3": ParagraphStyle("h3", parent=base, fontName=bold, fontSize=9.5, leading=12,
                             spaceBefore=3, spaceAfter=1),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9.2),
        "cellnum": ParagraphStyle("cellnum", parent=base, fontSize=7.5, leading=9.2,
                                  alignment=TA_RIGHT),
        "head": ParagraphStyle("head", parent=base, fontSize=7, leading=8.5, textColor=GREY),
        "headnum": ParagraphStyle("headnum", parent=base, fontSize=7, leading=8.5, textColor=GREY,
                                  alignment=TA_RIGHT),
    }


@functools.cache
def _indented(level: int) -> ParagraphStyle:
    """Split-table labels: sector under access, hulpvorm under sector."""
    return ParagraphStyle(f"cell-{level}", parent=_styles()["cell"], leftIndent=9 * level)


def _p(text: str, style: str = "base") -> Paragraph:
    return Paragraph(text, _styles()[style])


def _e(text: str) -> str:
    """Escape text for reportlab's paragraph markup; keeps line breaks as <br/>."""
    return escape(text).replace("\n", "<br/>")


def _figure_cell(shown: Shown, *, national: bool = False) -> Paragraph:
    """A figure with n and response coverage under it, as in the HTML's key tables."""
    if shown.is_figure and shown.few_responses:
        # Too few answers for a headline: greyed, with its count.
        head = (f'<font size="9" color="#8A8A8A">{_e(shown.short)}</font>'
                f'<font size="6.5" color="#8A8A8A"> ({labels.count(shown.responses)} metingen)</font>')
    elif shown.is_figure:
        colour = "#6B6B6B" if national else "#1B1B1B"
        head = f'<font name="DejaVuSans-Bold" size="9" color="{colour}">{_e(shown.short)}</font>'
    else:
        head = f'<font name="DejaVuSans-Oblique" color="#6B6B6B">{_e(shown.short)}</font>'
    lines = [head]
    if shown.n is not None:
        lines.append(f'<font size="6.5" color="#6B6B6B">n {labels.count(shown.n)}</font>')
    if shown.responses is not None:
        resp = labels.response_short(shown.n, shown.responses, shown.eligible)
        lines.append(f'<font size="6.5" color="#6B6B6B">{_e(resp)}</font>')
    if shown.low_response and not national:
        lines.append('<font size="6.5" color="#A05A00">lage respons</font>')
    return _p("<br/>".join(lines), "cellnum")


class Table(_Table):  # type: ignore[misc]
    """A table whose percentage column widths follow the width it is laid out at.

    reportlab resolves percentages once and keeps them; ``KeepInFrame`` lays a section
    out at several widths while finding its scale, and stale column widths would then
    disagree with the row heights.
    """

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803
        for cached in ("_width_calculated_once", "_spanRects"):
            self.__dict__.pop(cached, None)
        width, height = super().wrap(availWidth, availHeight)
        return width, height


def _widths(fractions: list[float]) -> list[str]:
    """Column widths as percentages of the width available when the table is laid out.

    Absolute widths would go wrong inside a section that ``KeepInFrame`` shrinks: it lays
    the content out wider than the frame and scales it down, so fixed-width tables end up
    narrower than the text and off-centre.
    """
    return [f"{f * 100:.4f}%" for f in fractions]


def _table_style(extra: list[tuple[Any, ...]] | None = None) -> TableStyle:
    return TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, 0), 1.2, BLUE),
        ("LINEBELOW", (0, 1), (-1, -1), 0.4, LINE),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        *(extra or []),
    ])


def _key_table(view: ReportView, rows: list[tuple[str, IndicatorView | None, Any]],
               first_col: str) -> Table:
    """Per series: the figure of each trend period and the national one, with n and response."""
    periods = view.trend_periods
    header = [_p(first_col, "head")]
    header += [_p(labels.period_short(p), "headnum") for p in periods]
    header.append(_p(f"Landelijk {labels.period_short(view.doc.period)}", "headnum"))
    data: list[list[Any]] = [header]
    extra: list[tuple[Any, ...]] = [("BACKGROUND", (len(periods), 1), (len(periods), -1), LIGHT)]
    for i, (label, _ind, s) in enumerate(rows, start=1):
        if s is None:
            data.append([_p(label, "cell"), _p("Geen cijfers in dit halfjaar", "small")]
                        + [""] * len(periods))
            extra.append(("SPAN", (1, i), (-1, i)))
            continue
        data.append([_p(label, "cell")] + [_figure_cell(p.own) for p in s.trend]
                    + [_figure_cell(s.national, national=True)])
    table = Table(data, colWidths=_widths([0.26] + [0.74 / (len(periods) + 1)] * (len(periods) + 1)),
                  repeatRows=1, hAlign="LEFT")
    table.setStyle(_table_style(extra))
    return table


def _summary(view: ReportView) -> list[Flowable]:
    doc = view.doc
    badge_colour = VIOLET if doc.variant == "intern" else BLUE
    badge_text = labels.VARIANT_BADGES[doc.variant]
    badge_width = pdfmetrics.stringWidth(badge_text, _fonts()[1], 7.5) + 12
    badge = Table([[_p(f'<font color="white"><b>{_e(badge_text)}</b></font>', "small")]],
                  colWidths=[badge_width], hAlign="LEFT")
    badge.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), badge_colour),
                               ("LEFTPADDING", (0, 0), (-1, -1), 5),
                               ("RIGHTPADDING", (0, 0), (-1, -1), 5)]))
    statement = labels.VARIANT_STATEMENTS[doc.variant].format(threshold=doc.threshold)
    status_text = _e(labels.PERIOD_STATUS_LABELS[doc.periodStatus])
    if doc.periodStatus == "voorlopig":
        status_text = f"<b>{status_text}</b>"
    box = Table([[_p(status_text)], [_p(_e(statement))]], colWidths=["100%"], hAlign="LEFT")
    box.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), LIGHT),
                             ("LINEBEFORE", (0, 0), (0, -1), 3, badge_colour),
                             ("LEFTPADDING", (0, 0), (-1, -1), 7)]))
    facts = [
        ("Periode", f"{view.period_label}<br/><font size='7' color='#6B6B6B'>beëindigd "
                    f"{period_months(doc.period)}</font>"),
        ("Beëindigde trajecten", labels.count(doc.trajectories)),
        ("Waarvan zonder BSN gekoppeld", labels.count(doc.withoutBsn)
         + (f" (en {labels.count(doc.unborn)} ongeboren)" if doc.unborn else "")),
        ("Cijfers berekend op", dutch_datetime(doc.generatedAt)),
    ]
    fact_table = Table(
        [[_p(f"<font size='7' color='#6B6B6B'>{k}</font><br/><b>{v}</b>", "base") for k, v in facts]],
        colWidths=_widths([0.25] * 4), hAlign="LEFT",
    )
    fact_table.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), LIGHT),
                                    ("LINEAFTER", (0, 0), (-2, -1), 3, colors.white),
                                    ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    rows: list[tuple[str, IndicatorView | None, Any]] = []
    for ind in view.indicators:
        title = f"<b>{ind.spec.number} {_e(ind.spec.title)}</b>"
        if not ind.series:
            rows.append((title, ind, None))
        for j, s in enumerate(ind.summary_series):
            sub = "" if s.label == "Alle trajecten" else f"<br/><font color='#6B6B6B'>{_e(s.label)}</font>"
            rows.append(((title if j == 0 else "") + sub, ind, s))
    questions = "<br/>".join(f"{i}. {_e(q)}" for i, (_, q) in enumerate(labels.QUESTIONS, 1))
    out: list[Flowable] = [
        badge, Spacer(1, 4),
        _p(labels.TITLE, "title"),
        _p(f"{_e(doc.providerName)} <font color='#6B6B6B'>(AGB {doc.providerId})</font> · "
           f"{view.period_label}", "subtitle"),
        box, Spacer(1, 5),
        _p(_e(labels.INTRO)), Spacer(1, 5),
        fact_table,
        _p("Kerncijfers", "h2"),
        _key_table(view, rows, "Indicator"),
        _p("Respons", "h2"), _p(_e(labels.RESPONSE_NOTE)),
        _p("Het kwaliteitsgesprek", "h2"), _p(_e(labels.CONVERSATION_INTRO)), _p(questions),
    ]
    if doc.notes:
        out += [_p("Opmerkingen bij de cijfers", "h2")] + [_p("• " + _e(labels.readable_note(n))) for n in doc.notes]
    return out


def _splits_table(ind: IndicatorView) -> Table:
    cols = ind.split_columns
    head1: list[Any] = [_p("Groep", "head")]
    head2: list[Any] = [""]
    for col in cols:
        head1 += [_p(f"<b>{_e(col)}</b>", "head"), "", "", ""]
        head2 += [_p(h, "headnum") for h in ("Cijfer", "n", "Respons", "Landelijk")]
    data: list[list[Any]] = [head1, head2]
    style: list[tuple[Any, ...]] = [("SPAN", (0, 0), (0, 1))]
    for c in range(len(cols)):
        style.append(("SPAN", (1 + 4 * c, 0), (4 + 4 * c, 0)))
        style.append(("LINEBELOW", (1 + 4 * c, 0), (4 + 4 * c, 0), 0.4, LINE))
    previous = None
    for row in ind.splits:
        if row.dimension != previous:
            data.append([_p(f"<font color='#6B6B6B'><b>{_e(row.dimension.upper())}</b></font>", "head")]
                        + [""] * (4 * len(cols)))
            style += [("SPAN", (0, len(data) - 1), (-1, len(data) - 1)),
                      ("BACKGROUND", (0, len(data) - 1), (-1, len(data) - 1), colors.HexColor("#F4F4F4"))]
            previous = row.dimension
        label = _e(row.label) if row.level < 2 else f"<font color='#444444'>{_e(row.label)}</font>"
        line: list[Any] = [Paragraph(label, _indented(row.level))]
        for own, nat in row.cells:
            figure = f"<b>{_e(own.short)}</b>" if own.is_figure else \
                f"<font name='DejaVuSans-Oblique' color='#6B6B6B'>{_e(own.short)}</font>"
            rate = own.response_rate
            resp = labels.percent(rate) if rate is not None else "–"
            if own.low_response:
                resp += "<font color='#A05A00'>*</font>"
            line += [_p(figure, "cellnum"), _p(labels.count(own.n), "cellnum"), _p(resp, "cellnum"),
                     _p(f"<font color='#6B6B6B'>{_e(nat.short)}</font>", "cellnum")]
        data.append(line)
    # Figures and their status words ("afgeschermd") need more room than n and response.
    weights = (1.45, 0.75, 0.85, 1.45)
    group = [w / sum(weights) * 0.72 / len(cols) for w in weights]
    table = Table(data, colWidths=_widths([0.28] + group * len(cols)), repeatRows=2, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 1), (-1, 1), 1.2, BLUE),
        ("LINEBELOW", (0, 2), (-1, -1), 0.3, LINE),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 1.2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.6),
        *style,
    ]))
    return table


def _annotation(ind: IndicatorView, provider: str) -> Table:
    content: list[Flowable] = [_p("Het verhaal achter de cijfers", "h3")]
    a = ind.annotation
    if a is None:
        content.append(_p(_e(labels.NO_ANNOTATION), "small"))
    else:
        if a.story:
            content.append(_p(_e(a.story)))
        cells: list[Paragraph] = []
        for field, question in labels.QUESTIONS:
            answer = getattr(a, field)
            text = _e(answer) if answer else "<font color='#6B6B6B'>Niet ingevuld.</font>"
            cells.append(_p(f"<b>{_e(question)}</b><br/>{text}", "cell"))
        grid = Table([cells[:2], cells[2:]], colWidths=["50%", "50%"], hAlign="LEFT")
        grid.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                  ("LEFTPADDING", (0, 0), (-1, -1), 0),
                                  ("TOPPADDING", (0, 0), (-1, -1), 3)]))
        content += [Spacer(1, 2), grid, _p(f"Toelichting van {_e(provider)}, bijgewerkt "
                                          f"{dutch_datetime(a.updatedAt)}.", "small")]
    box = Table([[content]], colWidths=["100%"], hAlign="LEFT")
    box.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 0.5, LINE),
                             ("LINEBEFORE", (0, 0), (0, -1), 3, BLUE),
                             ("LEFTPADDING", (0, 0), (-1, -1), 8),
                             ("RIGHTPADDING", (0, 0), (-1, -1), 8)]))
    return box


def _indicator(view: ReportView, ind: IndicatorView) -> list[Flowable]:
    periods = view.trend_periods
    definition = _e(ind.spec.definition + (" " + ind.spec.caveat if ind.spec.caveat else ""))
    out: list[Flowable] = [
        _p(f"{ind.spec.number}&nbsp;&nbsp;{_e(ind.spec.title)}", "h1"),
        _p(definition), Spacer(1, 4),
    ]
    if ind.series:
        out += [_p(f"{_e(ind.spec.value_label)} per halfjaar, met n en respons", "h3"),
                _key_table(view, [(_e(s.label), ind, s) for s in ind.series], "Reeks")]
    png = indicator_chart(ind, periods, "png")
    out += [Image(io.BytesIO(png), width=FRAME_W, height=FRAME_W * 2.9 / 7.4),
            _p(_e(chart_caption(ind, periods)), "small")]
    if ind.splits and not ind.splits_have_figures:
        out += [_p("Naar soort hulp en leeftijd", "h3"),
                _p(_e(labels.SPLITS_PENDING.format(status=ind.series[0].own.short if ind.series else "–")),
                   "small")]
    elif ind.splits:
        out += [_p("Naar soort hulp en leeftijd", "h3"), _splits_table(ind),
                _p(f"Respons als percentage van n; * respons onder {int(labels.LOW_RESPONSE * 100)}%. "
                   "Landelijk: hetzelfde cijfer over alle aanbieders."
                   + (" " + labels.HIDDEN_GROUPS if ind.hidden_groups else "")
                   + (" " + labels.HULPVORM_DROPPED if ind.hulpvorm_dropped else ""), "small")]
    out += [Spacer(1, 5), _annotation(ind, view.doc.providerName)]
    return out


def _guide(view: ReportView) -> list[Flowable]:
    doc = view.doc
    rows = [[_p(f"<b>{_e(term)}</b>", "cell"), _p(_e(text.format(threshold=doc.threshold)), "cell")]
            for term, text in labels.READING_GUIDE]
    table = Table(rows, colWidths=_widths([0.28, 0.72]), hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("LINEBELOW", (0, 0), (-1, -1), 0.4, LINE),
                               ("TOPPADDING", (0, 0), (-1, -1), 4),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 4)]))
    periods = ", ".join(labels.period_short(p) for p in view.trend_periods)
    return [
        _p("Toelichting", "h1"), table,
        _p("Bron en verantwoording", "h2"),
        _p("De cijfers zijn berekend door de Trusted Third Party outcome jeugd uit de "
           "gepseudonimiseerde trajectgegevens die aanbieders aanleveren. De TTP bewaart geen BSN, "
           "geboortedatum of volledige postcode. Elke inzage in deze rapportage wordt vastgelegd in "
           "het auditlog."),
        Spacer(1, 4),
        _p(f"Gegevensversie {doc.dataVersion[:16]} · drempel kleine aantallen {doc.threshold} · "
           f"halfjaren in de trend: {periods}.", "small"),
    ]


class _Document(BaseDocTemplate):  # type: ignore[misc]
    def __init__(self, buf: io.BytesIO, view: ReportView, pages: int) -> None:
        doc = view.doc
        super().__init__(
            buf, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN + 8 * mm,
            bottomMargin=MARGIN + 6 * mm,
            title=f"{labels.TITLE} – {doc.providerName} – {view.period_label} – "
                  f"{labels.VARIANT_BADGES[doc.variant]}",
            author="Outcome TTP jeugd", subject=f"Spiegelrapportage {doc.period} {doc.variant}",
            creator="Outcome TTP report service", lang="nl-NL",
        )
        self.view = view
        self.pages = pages
        frame = Frame(MARGIN, MARGIN + 6 * mm, FRAME_W, FRAME_H, id="body",
                      leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
        self.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=self._decorate)])

    def _decorate(self, canvas: Canvas, _doc: BaseDocTemplate) -> None:
        doc = self.view.doc
        regular, bold, _ = _fonts()
        canvas.saveState()
        canvas.setFont(regular, 7.5)
        canvas.setFillColor(GREY)
        top = PAGE_H - MARGIN + 2 * mm
        canvas.drawString(MARGIN, top, f"{doc.providerName} · AGB {doc.providerId} · {self.view.period_label}")
        canvas.setFont(bold, 7.5)
        canvas.setFillColor(VIOLET if doc.variant == "intern" else BLUE)
        canvas.drawRightString(PAGE_W - MARGIN, top, labels.VARIANT_BADGES[doc.variant])
        canvas.setStrokeColor(LINE)
        canvas.line(MARGIN, top - 2 * mm, PAGE_W - MARGIN, top - 2 * mm)
        canvas.setFont(regular, 7)
        canvas.setFillColor(GREY)
        canvas.drawString(MARGIN, MARGIN, f"{labels.TITLE} · geen normen, geen rangorde")
        canvas.drawRightString(PAGE_W - MARGIN, MARGIN, f"pagina {canvas.getPageNumber()} van {self.pages}")
        canvas.restoreState()


def render_pdf(doc: ReportDocument, view: ReportView | None = None) -> bytes:
    """The PDF of a report: summary, one page per indicator, reading guide."""
    view = view or build_view(doc)
    sections: list[list[Flowable]] = [_summary(view)]
    sections += [_indicator(view, ind) for ind in view.indicators]
    sections.append(_guide(view))
    story: list[Flowable] = []
    for i, section in enumerate(sections):
        story.append(KeepInFrame(FRAME_W - 1, FRAME_H - 2, section, mode="shrink"))
        if i < len(sections) - 1:
            story.append(PageBreak())
    buf = io.BytesIO()
    _Document(buf, view, len(sections)).build(story)
    return buf.getvalue()
