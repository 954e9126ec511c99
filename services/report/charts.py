"""Charts of a mirror report, drawn with matplotlib: SVG for HTML, PNG for the PDF.

One chart per indicator, with two kinds of panel side by side:

* the distribution of answers of the provider beside the national one (as a
  share of responses, so a large and a small population compare), or, for an
  indicator without answer categories, the figure per series;
* the trend over the last periods, provider solid, national dashed.

Colours are neutral blues and greys: no red or green that would turn a figure
into a verdict, because there are no norms. Only the object-oriented API is
used (no pyplot state), and rendering is serialised by one lock because
matplotlib's font cache and rc parameters are process-global.
"""

from __future__ import annotations

import io
import re
import textwrap
import threading
from typing import Any, Literal

import matplotlib
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from services.report.labels import SPECS, count, number, percent, period_short
from services.report.view import IndicatorView, Series

ChartFormat = Literal["svg", "png"]

OWN = "#01689B"  # Rijkshuisstijl donkerblauw
NATIONAL = "#9A9A9A"
SERIES_COLOURS = ("#01689B", "#8FCAE7", "#42145F")
TEXT = "#222222"

_LOCK = threading.Lock()
_RC: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8,
    "axes.edgecolor": "#777777",
    "axes.labelcolor": TEXT,
    "xtick.color": TEXT,
    "ytick.color": TEXT,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",
    "svg.hashsalt": "ttp-report",
    "legend.frameon": False,
}

#: Tick labels that fit under a bar; the full labels are in the table and the legend text.
SHORT_TICKS: dict[str, dict[str, str]] = {
    "afnameProblematiek": {
        "sterke-verbetering": "sterk\n+",
        "matige-verbetering": "matig\n+",
        "stabilisatie": "stabiel",
        "matige-verslechtering": "matig\n−",
        "sterke-verslechtering": "sterk\n−",
    },
    "doelrealisatie": {"-1": "−1"},
}


def _share_axis(ax: Axes, axis: Literal["x", "y"] = "y") -> None:
    fmt = FuncFormatter(lambda v, _pos: percent(v))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _value_axis(ax: Axes, indicator: str) -> None:
    spec = SPECS[indicator]
    low, high = spec.scale
    if spec.value_kind == "share":
        ax.set_ylim(0, 1)
        _share_axis(ax)
    else:
        pad = (high - low) * 0.05
        ax.set_ylim(low - pad, high + pad)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: number(v, 0)))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _shares(distribution: dict[str, int] | None, categories: list[str]) -> list[float] | None:
    if not distribution:
        return None
    total = sum(distribution.values())
    if total == 0:
        return None
    return [distribution.get(c, 0) / total for c in categories]


def _categories(indicator: str, series: list[Series]) -> list[str]:
    known = [c for c, _ in SPECS[indicator].categories]
    seen = {c for s in series for c in (s.distribution or {})}
    return known + sorted(seen - set(known))


def _distribution_panel(
    ax: Axes, view: IndicatorView, s: Series, categories: list[str], *, first: bool
) -> None:
    indicator = view.spec.key
    own = _shares(s.distribution, categories) or [0.0] * len(categories)
    nat_cell = s.national.cell
    nat = _shares(nat_cell.distribution if nat_cell and nat_cell.status == "ok" else None, categories)
    x = list(range(len(categories)))
    width = 0.4 if nat else 0.6
    ax.bar([i - (width / 2 if nat else 0) for i in x], own, width, color=OWN)
    if nat:
        ax.bar([i + width / 2 for i in x], nat, width, color=NATIONAL)
    ticks = SHORT_TICKS.get(indicator, {})
    ax.set_xticks(x, [ticks.get(c, c) for c in categories],
                  fontsize=6.5 if any("\n" in t for t in ticks.values()) else None)
    ax.set_ylim(0, max([*own, *(nat or []), 0.05]) * 1.15)
    _share_axis(ax)
    if first:
        ax.set_ylabel(view.spec.distribution_axis)
    ax.set_title(f"{s.label}\nn {count(s.own.n)} · {s.own.coverage}", fontsize=8, loc="left",
                 color=TEXT)


def _figure_panel(ax: Axes, view: IndicatorView) -> None:
    """Without answer categories: one bar pair (own, national) per series."""
    indicator = view.spec.key
    labels = [textwrap.fill(s.label, 24) for s in view.series]
    y = list(range(len(view.series)))
    own = [s.own.value for s in view.series]
    nat = [s.national.value for s in view.series]
    height = 0.38
    ax.barh([i - height / 2 for i in y], [v or 0 for v in own], height, color=OWN)
    ax.barh([i + height / 2 for i in y], [v or 0 for v in nat], height, color=NATIONAL)
    for i, s in enumerate(view.series):
        if s.own.value is None:
            ax.text(0.01, i - height / 2, s.own.text, va="center", fontsize=7, color=TEXT,
                    transform=ax.get_yaxis_transform())
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    spec = SPECS[indicator]
    if spec.value_kind == "share":
        ax.set_xlim(0, 1)
        _share_axis(ax, "x")
    else:
        ax.set_xlim(*spec.scale)
    ax.set_title(view.spec.value_label, fontsize=8, loc="left", color=TEXT)


def _trend_panel(ax: Axes, view: IndicatorView, periods: list[str]) -> list[tuple[Artist, str]]:
    """Provider solid, national dashed in the same colour; returns the legend entries."""
    x = list(range(len(periods)))
    several = len(view.trend_series) > 1
    legend: list[tuple[Artist, str]] = []
    any_national = False
    for colour, s in zip(SERIES_COLOURS, view.trend_series, strict=False):
        own = [p.own.trend_value for p in s.trend]
        nat = [p.national.trend_value for p in s.trend]
        (line,) = ax.plot(x, [v if v is not None else float("nan") for v in own], marker="o",
                          color=colour, linewidth=1.8, markersize=4)
        # A figure over too few answers is no trend point: a grey open marker, off the line.
        few = [(i, p.own.value) for i, p in enumerate(s.trend)
               if p.own.few_responses and p.own.value is not None]
        if few:
            ax.plot([i for i, _ in few], [float(v or 0) for _, v in few], linestyle="none", marker="o",
                    markerfacecolor="none", markeredgecolor="#8A8A8A", markersize=4)
        legend.append((line, textwrap.fill(s.label if several else "Eigen cijfers (lijn)", 28)))
        if any(v is not None for v in nat):
            any_national = True
            ax.plot(x, [v if v is not None else float("nan") for v in nat], linestyle="--",
                    marker=".", color=colour if several else NATIONAL, alpha=0.85, linewidth=1.2)
    if any_national:
        key = Line2D([], [], linestyle="--", marker=".", color=NATIONAL if not several else TEXT,
                     linewidth=1.2)
        legend.append((key, "Landelijk (stippellijn)"))
    ax.set_xticks(x, [period_short(p) for p in periods])
    ax.set_xlim(-0.3, len(periods) - 0.7)
    _value_axis(ax, view.spec.key)
    ax.set_title("Ontwikkeling over de halfjaren", fontsize=8, loc="left", color=TEXT)
    ax.grid(axis="y", color="#E5E5E5", linewidth=0.6)
    ax.set_axisbelow(True)
    return legend


def _message_panel(ax: Axes, message: str) -> None:
    ax.axis("off")
    ax.text(0.5, 0.5, textwrap.fill(message, 38), ha="center", va="center", color=TEXT,
            fontsize=8, transform=ax.transAxes)


def indicator_chart(view: IndicatorView, periods: list[str], fmt: ChartFormat) -> bytes:
    """The chart of one indicator section as SVG (for HTML) or PNG (for the PDF)."""
    with _LOCK, matplotlib.rc_context(_RC):  # type: ignore[arg-type]
        panels = view.distribution_series
        categories = _categories(view.spec.key, panels)
        fig = Figure(figsize=(7.4, 2.9), dpi=100, layout="constrained")
        ncols = max(1, len(panels)) + 1
        ratios = [1.0] * (ncols - 1) + [1.15]
        axes = fig.subplots(1, ncols, width_ratios=ratios)
        bars = False
        if panels:
            for i, (ax, s) in enumerate(zip(axes[:-1], panels, strict=True)):
                _distribution_panel(ax, view, s, categories, first=i == 0)
            bars = True
        elif any(s.own.value is not None for s in view.series):
            _figure_panel(axes[0], view)
            bars = True
        elif view.series:
            status = view.series[0].own.text
            _message_panel(axes[0], f"{status.capitalize()} in dit halfjaar. "
                           "De ontwikkeling over eerdere halfjaren staat rechts.")
        else:
            _message_panel(axes[0], "Geen cijfers in dit halfjaar.")
        legend = _trend_panel(axes[-1], view, periods)
        if bars:
            legend += [(Patch(color=OWN), "Eigen cijfers (staaf)"),
                       (Patch(color=NATIONAL), "Landelijk (staaf)")]
        if legend:
            fig.legend([h for h, _ in legend], [lab for _, lab in legend],
                       loc="outside lower center", ncols=min(3, len(legend)), fontsize=7)
        buf = io.BytesIO()
        if fmt == "svg":
            FigureCanvasSVG(fig)
            fig.savefig(buf, format="svg", metadata={"Date": None})
        else:
            FigureCanvasAgg(fig)
            fig.savefig(buf, format="png", dpi=200, metadata={"Software": None})
        return buf.getvalue()


_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|xlink:href="#|href="#)([^)"]+)')


def inline_svg(svg: bytes, prefix: str, title: str) -> str:
    """An SVG document made fit to sit inside HTML: no prolog, unique ids, a title for screen readers."""
    text = svg.decode("utf-8")
    text = text[text.index("<svg"):]
    text = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text)
    text = re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r'<svg\1', text, count=1)
    head_end = text.index(">") + 1
    escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        text[: head_end - 1]
        + f' id="{prefix}" class="chart" role="img" aria-labelledby="{prefix}-title">'
        + f'<title id="{prefix}-title">{escaped}</title>'
        + text[head_end:]
    )
