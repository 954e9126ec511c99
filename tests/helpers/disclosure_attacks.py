"""Attacks an outside disclosure auditor runs on third-party outputs, as reusable test code.

Each attack takes the outputs a recipient sees and a reading of what a shown
value stands for (``Reading``): the cell-key method's ranges, or the exact
counts of the earlier method (``LEGACY``), which the old behaviour is rebuilt
with (``legacy_table``). The tests run every attack against both: it must fail
on the cell-key outputs and succeed on the old ones (the negative control).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from sqlalchemy import Connection

from services.aggregate.cell_key import CellKeyMethod
from services.aggregate.cells import breakdown_of
from services.aggregate.feeds import (
    NOTES_3_2,
    Output,
    StoredCell,
    load_cells,
    output_keys,
    population_cells,
    window_end,
)
from services.aggregate.indicators import LAYOUT, WINDOWS
from services.aggregate.information_loss import suppression_rule
from services.aggregate.recompute import load_domains
from ttp.outcomes import Cell, OutcomeTable, Scope

#: A shown value -> the true counts it can stand for (low, high); None: nothing is known.
Reading = Callable[[int | None], tuple[int, int] | None]
BIG = 10**6


def exact_reading(shown: int | None) -> tuple[int, int] | None:
    """The earlier method: a shown count is exact, a hidden one unknown."""
    return None if shown is None else (shown, shown)


LEGACY: Reading = exact_reading


def cell_key_reading(method: CellKeyMethod) -> Reading:
    return method.range_of


# --- the earlier behaviour, rebuilt: stored pattern on n, every other count exact ----------------


def legacy_table(conn: Connection, period: str, output: Output, *, threshold: int, as_of: dt.date) -> OutcomeTable:
    """A third-party output as the earlier method published it (the negative control)."""
    domains = load_domains(conn, period)
    stored = load_cells(conn, period, output)
    observable = {w: as_of > window_end(period, w) for w in WINDOWS}
    zero = StoredCell(np.zeros(len(LAYOUT), dtype=np.int64), True, 0)
    rule_of = suppression_rule(threshold)
    cells: list[Cell] = []
    total: int | None = None
    for key in output_keys(output, domains):
        s = stored.get(key, zero)
        rule = rule_of(s)
        breakdown = breakdown_of(key, scope_dims=output.scope_dims)
        if not breakdown:
            total = rule(int(s.counts[0]), "n")
        cells += population_cells(key, breakdown, s.counts, rule, observable)
    return OutcomeTable(period=period, scope=Scope(kind=output.kind, code=output.code), variant=output.variant,
                        threshold=threshold, generatedAt=dt.datetime.now(dt.UTC), trajectories=total,
                        withoutBsn=None, cells=cells, notes=[NOTES_3_2])


# --- every count a third party sees -------------------------------------------------------------


def shown_counts(table: OutcomeTable) -> list[tuple[str, int]]:
    """Every count a table shows, named by where it is."""
    out: list[tuple[str, int]] = []
    scope = f"{table.scope.kind}:{table.scope.code or ''}"
    if table.trajectories is not None:
        out.append((f"{scope} trajectories", table.trajectories))
    for cell in table.cells:
        where = f"{scope} {cell.indicator}/{cell.variant or ''} {sorted(cell.breakdown.items())}"
        if cell.n is not None:
            out.append((f"{where} n", cell.n))
        if cell.responses is not None:
            out.append((f"{where} responses", cell.responses))
        out += [(f"{where} {k}", v) for k, v in (cell.distribution or {}).items()]
    return out


# --- differencing: two releases, one client changed ----------------------------------------------

FigureId = tuple[str, str, str, tuple[tuple[str, str], ...]]


def _figures(table: OutcomeTable) -> dict[FigureId, Cell]:
    scope = f"{table.scope.kind}:{table.scope.code or ''}"
    return {(scope, c.indicator, c.variant or "", tuple(sorted(c.breakdown.items()))): c for c in table.cells}


@dataclass(frozen=True)
class Pin:
    figure: FigureId
    count: str
    before: int | None
    after: int | None

    def describe(self) -> str:
        return f"{self.figure} {self.count}: {self.before} -> {self.after}"


def differencing_pins(before: Iterable[OutcomeTable], after: Iterable[OutcomeTable], reading: Reading, *,
                      change: tuple[int, int] = (0, 1)) -> list[Pin]:
    """Counts whose change between two releases an LP over both pins as non-zero.

    Per figure (one indicator of one population), the reader has every count of
    both releases as ranges, knows that the categories sum to the responses (to n
    for uitval) in each release, and that each count changed by a whole number in
    ``change`` (a withdrawal: 0 or -1 from before to after, i.e. before - after in
    0..1). A count for which "unchanged" is infeasible tells the reader that the
    client is in it: one of their attributes.
    """
    old = {k: v for t in before for k, v in _figures(t).items()}
    new = {k: v for t in after for k, v in _figures(t).items()}
    categories: dict[tuple[str, str], set[str]] = {}
    for figs in (old, new):
        for (_, ind, var, _), cell in figs.items():
            categories.setdefault((ind, var), set()).update(cell.distribution or {})
    pins: list[Pin] = []
    for fid, c1 in old.items():
        c2 = new.get(fid)
        if c2 is None or c1.status != "ok" or c2.status != "ok":
            continue
        names = sorted(categories[(fid[1], fid[2])])
        counts: list[tuple[str, int | None, int | None, bool]] = [("responses", c1.responses, c2.responses, False)]
        counts += [(k, (c1.distribution or {}).get(k), (c2.distribution or {}).get(k), True) for k in names]
        if all(p1 == p2 for _, p1, p2, _ in counts):
            continue  # every count shown alike: "nothing changed" is consistent with it all
        pins += _pins_of(fid, counts, reading, change, sums=fid[2] != "perDoel")
    return pins


def _pins_of(fid: FigureId, counts: list[tuple[str, int | None, int | None, bool]], reading: Reading,
             change: tuple[int, int], *, sums: bool) -> list[Pin]:
    m = len(counts)
    # Variables: x1 (m), x2 (m), delta (m) = x1 - x2.
    lo = np.zeros(3 * m)
    hi = np.full(3 * m, float(BIG))
    for j, (_, p1, p2, _) in enumerate(counts):
        for offset, shown in ((0, p1), (m, p2)):
            r = reading(shown)
            if r is not None:
                lo[offset + j], hi[offset + j] = r
        lo[2 * m + j], hi[2 * m + j] = change
    rows: list[np.ndarray] = []
    for j in range(m):
        row = np.zeros(3 * m)
        row[j], row[m + j], row[2 * m + j] = 1, -1, -1
        rows.append(row)
    if sums:
        for offset in (0, m):
            row = np.zeros(3 * m)
            row[offset] = -1
            for j, (_, _, _, is_cat) in enumerate(counts):
                if is_cat:
                    row[offset + j] = 1
            rows.append(row)
    a = np.array(rows)
    constraint = optimize.LinearConstraint(a, np.zeros(len(rows)), np.zeros(len(rows)))
    integrality = np.ones(3 * m)
    base = optimize.milp(np.zeros(3 * m), constraints=constraint, bounds=optimize.Bounds(lo, hi),
                         integrality=integrality)
    if base.x is None:
        return []  # not the same population in both releases
    pins = []
    for j, (name, p1, p2, _) in enumerate(counts):
        lo_j, hi_j = lo.copy(), hi.copy()
        lo_j[2 * m + j] = hi_j[2 * m + j] = 0
        if lo_j[2 * m + j] < change[0] or hi_j[2 * m + j] > change[1]:
            continue
        result = optimize.milp(np.zeros(3 * m), constraints=constraint, bounds=optimize.Bounds(lo_j, hi_j),
                               integrality=integrality)
        if result.x is None:
            pins.append(Pin(fid, name, p1, p2))
    return pins
