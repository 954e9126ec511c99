"""What a reader sees of a report document, shared by the HTML and PDF renderers.

A document holds every cell aggregate computed; a page in a meeting cannot.
This module decides, once for both formats, what each indicator section shows:

* the headline series (whole provider, per informant or sub-figure), each with
  n, response coverage and the national reference beside it;
* splits by care type (access, within it sector, within that hulpvorm) and age
  band, one column group per informant; gemeente splits stay in the JSON and
  CSV, which hold everything;
* the trend of each series over the last periods;
* the provider's annotation.

Order is always the order of the code lists, never by value: the report must
not read as a ranking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.report.document import CellKey, cell_key, is_headline
from services.report.labels import (
    AGE_HEADING,
    CARE_DIMENSIONS,
    CARE_HEADING,
    CODE_LABELS,
    INFORMANT_ORDER,
    LOW_RESPONSE,
    MIN_HEADLINE_RESPONSES,
    SPECS,
    STATUS_SHORT,
    IndicatorSpec,
    code_label,
    coverage,
    figure,
    period_label,
    variant_label,
)
from services.report.schemas import AnnotationOut, NationalReference, ReportDocument
from ttp.outcomes import INDICATORS, Cell
from ttp.periods import AGE_BANDS

#: At most this many series get a line in the trend chart / a distribution panel.
MAX_TREND_SERIES = 3
MAX_DISTRIBUTION_PANELS = 2
#: Beyond this many split rows the hulpvorm level is left to the CSV.
MAX_SPLIT_ROWS = 32


@dataclass(frozen=True)
class Shown:
    """One figure as printed: the value (or why there is none), n and response coverage."""

    cell: Cell | None
    indicator: str
    withheld: bool = False

    @property
    def text(self) -> str:
        if self.withheld:
            return "niet getoond"
        if self.cell is None:
            return "–"
        return figure(self.indicator, self.cell.value, self.cell.status)

    @property
    def short(self) -> str:
        """The figure, or a status word short enough for a table cell."""
        if self.withheld:
            return "niet getoond"
        if self.cell is None:
            return "–"
        if self.cell.status != "ok" or self.cell.value is None:
            return STATUS_SHORT.get(self.cell.status) or "–"
        return self.text

    @property
    def is_figure(self) -> bool:
        return self.value is not None

    @property
    def few_responses(self) -> bool:
        """A figure over fewer than ``MIN_HEADLINE_RESPONSES`` answers: no headline, shown greyed
        with its count and left out of the trend line."""
        r = self.responses
        return self.value is not None and r is not None and r < MIN_HEADLINE_RESPONSES

    @property
    def trend_value(self) -> float | None:
        """The value as a point of the trend line: none when it rests on too few answers."""
        return None if self.few_responses else self.value

    @property
    def value(self) -> float | None:
        if self.cell is None or self.cell.status != "ok" or self.withheld:
            return None
        return self.cell.value

    @property
    def n(self) -> int | None:
        return self.cell.n if self.cell is not None and not self.withheld else None

    @property
    def responses(self) -> int | None:
        return self.cell.responses if self.cell is not None and not self.withheld else None

    @property
    def eligible(self) -> int | None:
        """Trajectories where this informant answers (the rate's denominator), when known."""
        return self.cell.eligible if self.cell is not None and not self.withheld else None

    @property
    def coverage(self) -> str:
        return coverage(self.n, self.responses, self.eligible)

    @property
    def response_rate(self) -> float | None:
        base = self.n if self.eligible is None else self.eligible
        if base and self.responses is not None:
            return self.responses / base
        return None

    @property
    def low_response(self) -> bool:
        rate = self.response_rate
        return rate is not None and rate < LOW_RESPONSE


@dataclass(frozen=True)
class TrendPoint:
    period: str
    own: Shown
    national: Shown


@dataclass
class Series:
    """One headline figure of an indicator (e.g. tevredenheid of the jeugdige)."""

    key: CellKey
    label: str
    own: Shown
    national: Shown
    trend: list[TrendPoint] = field(default_factory=list)

    @property
    def distribution(self) -> dict[str, int] | None:
        cell = self.own.cell
        return cell.distribution if cell is not None and cell.status == "ok" else None


@dataclass(frozen=True)
class SplitRow:
    """One group of a split table; ``level`` indents sector under access, hulpvorm under sector."""

    dimension: str
    label: str
    level: int
    cells: list[tuple[Shown, Shown]]


@dataclass
class IndicatorView:
    spec: IndicatorSpec
    series: list[Series]
    split_columns: list[str]
    splits: list[SplitRow]
    annotation: AnnotationOut | None
    anchor: str
    #: Groups left out of the split table because they are suppressed (shareable variant).
    hidden_groups: int = 0
    #: True when the hulpvorm level was left out to keep the section on one page.
    hulpvorm_dropped: bool = False

    @property
    def low_response(self) -> bool:
        return any(s.own.low_response for s in self.series)

    @property
    def splits_have_figures(self) -> bool:
        """False when no split shows a figure (e.g. 3.2 before its follow-up has passed)."""
        return any(own.is_figure for row in self.splits for own, _ in row.cells)

    @property
    def summary_series(self) -> list[Series]:
        """The series of the main sub-figure (3.2: CBS window; 3.4: overall), per informant."""
        if not self.series:
            return []
        main = self.series[0].key[1]
        return [s for s in self.series if s.key[1] == main]

    @property
    def trend_series(self) -> list[Series]:
        """Per informant where the indicator has informants; else the first sub-figures."""
        main = self.summary_series
        return (main if len(main) > 1 else self.series)[:MAX_TREND_SERIES]

    @property
    def distribution_series(self) -> list[Series]:
        if not self.spec.show_distribution:
            return []
        return [s for s in self.series if s.distribution][:MAX_DISTRIBUTION_PANELS]


@dataclass
class ReportView:
    doc: ReportDocument
    indicators: list[IndicatorView]

    @property
    def period_label(self) -> str:
        return period_label(self.doc.period)

    @property
    def trend_periods(self) -> list[str]:
        return [t.period for t in self.doc.trend]


def series_label(indicator: str, variant: str | None, informant: str | None) -> str:
    parts = [
        variant_label(indicator, variant),
        code_label("informant", informant) if informant else "",
    ]
    return " · ".join(p for p in parts if p) or "Alle trajecten"


def _series_order(indicator: str, cell: Cell) -> tuple[int, int, str]:
    variants = [v for v, _ in SPECS[indicator].variants]
    v_rank = (
        variants.index(cell.variant)
        if cell.variant in variants
        else (-1 if cell.variant is None else len(variants))
    )
    informant = cell.breakdown.get("informant")
    return v_rank, _informant_rank(informant), f"{cell.variant}|{informant}"


def _informant_rank(informant: str | None) -> int:
    if informant is None:
        return -1
    return (
        INFORMANT_ORDER.index(informant) if informant in INFORMANT_ORDER else len(INFORMANT_ORDER)
    )


Path = tuple[tuple[str, str], ...]


def _splits(
    cells: list[Cell], spec: IndicatorSpec, national: _Reference
) -> tuple[list[SplitRow], list[str | None], int, bool]:
    """The split table of one indicator: care-type tree and age bands.

    A group is listed when it has trajectories (intern) or shows figures (deelbaar),
    and so is every group above it in the tree; suppressed groups with nothing shown
    below them are counted instead of listed. Deep trees lose their hulpvorm level
    (the CSV keeps it) so a section still fits one page.
    """
    by_path: dict[tuple[str, Path], dict[str | None, Cell]] = {}
    base = set(spec.population)
    for cell in cells:
        rest = {k: v for k, v in cell.breakdown.items()
                if k not in ("informant", "provider") and k not in base}
        if not rest:
            continue
        path: Path
        if set(rest) == {"ageBand"}:
            heading, path = AGE_HEADING, (("ageBand", rest["ageBand"]),)
        elif set(rest) <= set(CARE_DIMENSIONS):
            heading = CARE_HEADING
            path = tuple((d, cell.breakdown[d]) for d in CARE_DIMENSIONS if d in rest)
        else:
            continue  # gemeente, PC4 and other cross-tabulations: CSV and JSON only
        by_path.setdefault((heading, path), {})[cell.breakdown.get("informant")] = cell

    def informative(group: dict[str | None, Cell]) -> bool:
        return any(c.n not in (None, 0) for c in group.values())

    shown = {key for key, group in by_path.items() if informative(group)}
    for heading, leaf in list(shown):
        shown.update((heading, leaf[:i]) for i in range(1, len(leaf)) if (heading, leaf[:i]) in by_path)
    hidden = sum(1 for key, group in by_path.items() if key not in shown and any(
        c.status.startswith("suppressed") for c in group.values()))
    dropped = len(shown) > MAX_SPLIT_ROWS and any(len(p) >= 3 for _, p in shown)
    if dropped:
        shown = {(h, p) for h, p in shown if len(p) < 3}

    informants = sorted({i for key in shown for i in by_path[key]}, key=_informant_rank)
    headings = (CARE_HEADING, AGE_HEADING)
    rows: list[SplitRow] = []
    for heading, row_path in sorted(shown, key=lambda hp: (
            headings.index(hp[0]), [_code_order(d, c) for d, c in hp[1]])):
        group = by_path[(heading, row_path)]
        pairs: list[tuple[Shown, Shown]] = []
        for informant in informants:
            own = group.get(informant)
            nat = (national.shown(cell_key(own), spec.key) if own is not None
                   else Shown(None, spec.key))
            pairs.append((Shown(own, spec.key), nat))
        dim, code = row_path[-1]
        rows.append(SplitRow(heading, code_label(dim, code), len(row_path) - 1, pairs))
    return rows, informants, hidden, dropped


def _code_order(dimension: str, code: str) -> tuple[int, str]:
    known = list(CODE_LABELS.get(dimension, {}))
    if dimension == "ageBand":
        known = [label for label, _, _ in AGE_BANDS]
    return (known.index(code) if code in known else len(known), code)


class _Reference:
    """Lookup of national cells for one period, remembering which were withheld."""

    def __init__(self, ref: NationalReference | None) -> None:
        self.available = ref is not None
        self.cells = {cell_key(c): c for c in ref.cells} if ref else {}
        self.withheld = {cell_key(c) for c in ref.withheld} if ref else set()

    def shown(self, key: CellKey, indicator: str) -> Shown:
        return Shown(self.cells.get(key), indicator, withheld=key in self.withheld)


def build_view(doc: ReportDocument) -> ReportView:
    """The per-indicator sections of a document, in basisset order."""
    national = _Reference(doc.national)
    trend_refs = [(t, {cell_key(c): c for c in t.cells}, _Reference(t.national)) for t in doc.trend]
    annotations: dict[str, AnnotationOut] = {a.indicator: a for a in doc.annotations}
    views: list[IndicatorView] = []
    for indicator in INDICATORS:
        cells = [c for c in doc.cells if c.indicator == indicator]
        headline = sorted(
            (c for c in cells if is_headline(c)), key=lambda c: _series_order(indicator, c)
        )
        series: list[Series] = []
        for cell in headline:
            key = cell_key(cell)
            s = Series(
                key=key,
                label=series_label(indicator, cell.variant, cell.breakdown.get("informant")),
                own=Shown(cell, indicator),
                national=national.shown(key, indicator),
            )
            for t, own_cells, ref in trend_refs:
                s.trend.append(
                    TrendPoint(
                        t.period, Shown(own_cells.get(key), indicator), ref.shown(key, indicator)
                    )
                )
            series.append(s)

        main_variant = series[0].key[1] if series else None
        splits, informants, hidden, dropped = _splits(
            [c for c in cells if c.variant == main_variant], SPECS[indicator], national
        )
        views.append(
            IndicatorView(
                spec=SPECS[indicator],
                series=series,
                split_columns=[
                    code_label("informant", i) if i else "Alle trajecten" for i in informants
                ],
                splits=splits,
                hidden_groups=hidden,
                hulpvorm_dropped=dropped,
                annotation=annotations.get(indicator),
                anchor=f"indicator-{indicator}",
            )
        )
    return ReportView(doc, views)
