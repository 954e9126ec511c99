"""Assemble one mirror report from aggregate's tables and the provider's annotations.

The provider's figures are passed through untouched: the report shows exactly
what aggregate computed and suppressed, so the ``intern`` variant equals the
indicator computation. What this module adds is the context the issue asks
for: the trend over the last periods and the national reference beside each
figure, plus two safety checks before anything leaves the service:

* a shareable table is checked again for small numbers; a violation stops the
  report (fail closed) instead of being patched here, because patching one
  cell without its complements would not protect it;
* a national reference cell is shown exactly when the national table shows
  it: whether it is shown never depends on the provider's own counts (see
  ``reference_allowed``), and its counts are protected (cell-key method), so
  national minus own is never an exact count of other providers' clients.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from services.report.figures import ReportInputs
from services.report.labels import SPECS
from services.report.schemas import (
    AnnotationOut,
    CellRef,
    NationalReference,
    ReportDocument,
    ReportVariant,
    TrendPeriod,
)
from ttp.outcomes import Cell, OutcomeTable

log = logging.getLogger("ttp.report.document")

SUPPRESSED = ("suppressed", "suppressed-primary", "suppressed-secondary")

CellKey = tuple[str, str | None, tuple[tuple[str, str], ...]]


class ReportNotFoundError(Exception):
    """Aggregate has no figures for this provider and period."""


class DisclosureViolationError(Exception):
    """A table meant for third parties shows a small number; nothing is rendered from it."""


def cell_key(cell: Cell | CellRef) -> CellKey:
    """Identity of a figure across tables: indicator, sub-figure, breakdown (minus scope keys)."""
    breakdown = tuple(sorted((k, v) for k, v in cell.breakdown.items() if k != "provider"))
    return cell.indicator, cell.variant, breakdown


def is_headline(cell: Cell) -> bool:
    """A headline figure covers the indicator's whole population at the provider (everyone, or
    for 3.3 niet-vrij-toegankelijke hulp), per informant at most."""
    rest = {k: v for k, v in cell.breakdown.items() if k not in ("informant", "provider")}
    population = SPECS[cell.indicator].population if cell.indicator in SPECS else {}
    return rest == population


def shareable_problems(table: OutcomeTable, threshold: int) -> list[str]:
    """What in ``table`` a third party must not see; empty when it is safe to show.

    A count of zero is allowed (it describes nobody); any other count below the
    threshold is not, whatever the cell's status: n, responses and every
    category of a distribution alike. A suppressed cell must carry
    nothing that gives its value back.
    """
    limit = max(threshold, table.threshold)
    problems: list[str] = []
    if table.trajectories is not None and 0 < table.trajectories < limit:
        problems.append("the table total is below the threshold")
    for i, cell in enumerate(table.cells):
        where = f"cell {i} ({cell.indicator})"
        if cell.n is not None and 0 < cell.n < limit:
            problems.append(f"{where} has n below the threshold")
        if cell.responses is not None and 0 < cell.responses < limit:
            problems.append(f"{where} has responses below the threshold")
        small = [k for k, v in (cell.distribution or {}).items() if 0 < v < limit]
        if small:
            problems.append(f"{where} has distribution counts below the threshold ({', '.join(small)})")
        if cell.status in SUPPRESSED and any(
            v is not None for v in (cell.n, cell.responses, cell.value, cell.distribution)
        ):
            problems.append(f"{where} is suppressed but carries figures")
        if cell.status == "ok" and cell.n is None:
            problems.append(f"{where} has a value without n")
        if cell.status == "too-few-responses" and (
            cell.value is not None or cell.distribution is not None
        ):
            problems.append(f"{where} withholds its value but carries it")
    return problems


def _index(cells: Iterable[Cell]) -> dict[CellKey, Cell]:
    return {cell_key(c): c for c in cells}


def reference_allowed(national: Cell, own: Cell | None, threshold: int) -> bool:
    """May ``national`` stand beside the provider's own figure?

    Only by what the national table itself shows, never by the provider's own
    counts: a rule such as "national n minus own n below the threshold" turns
    the reader's own (hidden) counts into a constraint an attacker can use,
    and says something about the others' counts each time it withholds. Every
    national count is protected like any third-party count, so national minus
    own is a range, never an exact count of the other providers' clients.
    """
    del own, threshold
    return national.status == "ok" and national.n is not None


def national_reference(
    national: OutcomeTable | None,
    own: OutcomeTable | None,
    wanted: Iterable[CellKey],
    threshold: int,
) -> NationalReference | None:
    """The national cells matching ``wanted``, minus those that would give other providers away."""
    if national is None:
        return None
    nat = _index(national.cells)
    mine = _index(own.cells) if own is not None else {}
    shown: list[Cell] = []
    withheld: list[CellRef] = []
    for key in dict.fromkeys(wanted):
        cell = nat.get(key)
        if cell is None:
            continue
        if reference_allowed(cell, mine.get(key), threshold):
            shown.append(cell)
        else:
            withheld.append(
                CellRef(indicator=cell.indicator, variant=cell.variant, breakdown=cell.breakdown)
            )
    return NationalReference(
        period=national.period, generatedAt=national.generatedAt, cells=shown, withheld=withheld
    )


def _generic_suppression(table: OutcomeTable | None) -> OutcomeTable | None:
    """A shareable table says only "suppressed": primary versus secondary would point at the
    cells under the threshold. Aggregate already publishes it so; this holds for any source."""
    if table is None or not any(c.status in SUPPRESSED[1:] for c in table.cells):
        return table
    cells = [c.model_copy(update={"status": "suppressed"}) if c.status in SUPPRESSED else c
             for c in table.cells]
    return table.model_copy(update={"cells": cells})


def build_report(
    *,
    provider_agb: str,
    provider_name: str,
    period: str,
    variant: ReportVariant,
    inputs: ReportInputs,
    annotations: list[AnnotationOut],
    threshold: int,
) -> ReportDocument:
    """The report document; raises ReportNotFoundError or DisclosureViolationError."""
    current = inputs.tables.get(period)
    if current is None:
        raise ReportNotFoundError(f"no figures for provider {provider_agb} in {period}")
    notes = list(current.notes)

    rounding = getattr(current, "rounding", None)
    if rounding:
        notes.append(f"Aantallen zijn afgerond op veelvouden van {rounding}.")
    tables = dict(inputs.tables)
    if variant == "deelbaar":
        tables = {p: _generic_suppression(t) for p, t in tables.items()}
        for p, table in tables.items():
            problems = shareable_problems(table, threshold) if table is not None else []
            if problems:
                log.error(
                    "shareable table fails the small-number check",
                    extra={"provider": provider_agb, "period": p, "problems": problems[:20]},
                )
                raise DisclosureViolationError(f"the shareable table of {p} shows small numbers")

    shown = tables[period] or current
    national: dict[str, OutcomeTable | None] = {}
    for p, table in inputs.national.items():
        problems = shareable_problems(table, threshold) if table is not None else []
        if problems:
            # Not the provider's own figures: leave the reference out rather than the report.
            log.error(
                "national table fails the small-number check",
                extra={"period": p, "problems": problems[:20]},
            )
            notes.append(
                f"De landelijke referentie van {p} is weggelaten: die voldeed niet aan de "
                "regels voor kleine aantallen."
            )
            table = None
        national[p] = table

    trend: list[TrendPeriod] = []
    for p in inputs.periods:
        table = tables.get(p)
        headline = [c for c in table.cells if is_headline(c)] if table is not None else []
        trend.append(
            TrendPeriod(
                period=p,
                available=table is not None,
                trajectories=table.trajectories if table is not None else None,
                cells=headline,
                national=national_reference(
                    national.get(p), inputs.own.get(p), (cell_key(c) for c in headline), threshold
                ),
            )
        )

    return ReportDocument(
        providerId=provider_agb,
        providerName=provider_name,
        period=period,
        variant=variant,
        threshold=max(threshold, current.threshold),
        generatedAt=current.generatedAt,
        dataVersion=inputs.version,
        trajectories=current.trajectories,
        withoutBsn=current.withoutBsn,
        unborn=current.unborn,
        periodStatus=current.periodStatus,
        notes=notes,
        cells=list(shown.cells),
        national=national_reference(
            national.get(period),
            inputs.own.get(period),
            (cell_key(c) for c in current.cells),
            threshold,
        ),
        trend=trend,
        annotations=annotations,
    )
