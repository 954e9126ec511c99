"""The CSV mirror report: every cell, one row each, for the provider's own analysis.

Providers told NJi that the CBS mirror reports limit their own analysis; this
variant holds every figure of the period (including cross-tabulations and the
gemeente and PC4 splits the documents leave out), with the national reference
in the same row. Machine-friendly: comma separated, decimal point, codes not
labels, one column per answer category. A UTF-8 byte order mark lets Excel
open the accents correctly; pandas and R skip it.
"""

from __future__ import annotations

import csv
import io

from services.report.document import cell_key
from services.report.labels import SPECS
from services.report.schemas import ReportDocument
from ttp.outcomes import BREAKDOWN_KEYS, Cell

FIXED = [
    "period", "providerId", "reportVariant", "indicator", "figure", *BREAKDOWN_KEYS,
    "n", "responses", "responseRate", "value", "status",
    "nationalN", "nationalResponses", "nationalValue", "nationalStatus", "eligible", "periodStatus",
]


def _categories(cells: list[Cell]) -> list[str]:
    ordered = [c for spec in SPECS.values() for c, _ in spec.categories]
    seen = {k for cell in cells for k in (cell.distribution or {})}
    known = list(dict.fromkeys(c for c in ordered if c in seen))
    return known + sorted(seen - set(known))


def _num(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{value:.6g}"


def render_csv(doc: ReportDocument) -> bytes:
    """All cells of the report's period as CSV (RFC 4180)."""
    national = {cell_key(c): c for c in doc.national.cells} if doc.national else {}
    withheld = {cell_key(c) for c in doc.national.withheld} if doc.national else set()
    categories = _categories(doc.cells)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(FIXED + [f"count_{c}" for c in categories])
    for cell in doc.cells:
        key = cell_key(cell)
        nat = national.get(key)
        # Over the trajectories where this informant answers (a jeugdige from 12), when known.
        base = cell.n if cell.eligible is None else cell.eligible
        rate = cell.responses / base if base and cell.responses is not None else None
        row = [
            doc.period, doc.providerId, doc.variant, cell.indicator, cell.variant or "",
            *(cell.breakdown.get(k, "") for k in BREAKDOWN_KEYS),
            _num(cell.n), _num(cell.responses), _num(rate), _num(cell.value), cell.status,
            _num(nat.n) if nat else "", _num(nat.responses) if nat else "",
            _num(nat.value) if nat else "",
            nat.status if nat else ("withheld" if key in withheld else ""),
            _num(cell.eligible), doc.periodStatus,
        ]
        dist = cell.distribution or {}
        row += [_num(dist.get(c)) if cell.distribution is not None else "" for c in categories]
        writer.writerow(row)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
