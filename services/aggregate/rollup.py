"""From grain counts to the counts of every published cell, with sparse sums.

Each view's cells are the groups of one grain's cells that agree on the view's
dimensions; one sparse 0/1 matrix per view turns the grain's count matrix
into the view's cell count matrix in a single multiplication.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from services.aggregate.cells import CellKey, View
from services.aggregate.indicators import GRAINS, LAYOUT, MICRO_DIMS, Facts

#: Columns of ``Facts.keys`` a view's key is made of, per dimension and level.
_GEO_COLS = (0, 1)  # gemeente, pc4
_CARE_COLS = (3, 4, 5)  # access, sector, hulpvorm
_AGE_COL = 6
_PROV_COL = 2


@dataclass
class CellCounts:
    """Counts (``LAYOUT`` columns) of a set of cells, addressable by key."""

    keys: list[CellKey] = field(default_factory=list)
    counts: np.ndarray = field(default_factory=lambda: np.zeros((0, len(LAYOUT)), dtype=np.int64))
    index: dict[CellKey, int] = field(default_factory=dict)

    def n(self, key: CellKey) -> int:
        i = self.index.get(key)
        return 0 if i is None else int(self.counts[i, 0])


def _view_columns(view: View) -> list[int]:
    g, c, a, p = view
    cols = list(_GEO_COLS[:g]) + list(_CARE_COLS[:c])
    if a:
        cols.append(_AGE_COL)
    if p:
        cols.append(_PROV_COL)
    return cols


def _keys(view: View, columns: list[list[str]]) -> list[CellKey]:
    """The keys of a view's cells from their key columns (``_view_columns`` order).

    Built column-wise with ``zip``: a national half year has over a hundred
    thousand cells, and assembling each key value by value was a large part of
    the roll-up's time.
    """
    g, c, a, p = view
    count = len(columns[0]) if columns else 1
    parts: list[list[tuple[str, ...]]] = []
    start = 0
    for width in (g, c, a, p):
        chunk = columns[start:start + width]
        parts.append(list(zip(*chunk, strict=True)) if chunk else [()] * count)
        start += width
    return list(zip(parts[0], parts[1], parts[2], parts[3], strict=True))


def _codes(column: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The distinct values of a key column as text, sorted, and each row's index into them.

    Same result as ``np.unique(column.astype(str), return_inverse=True)`` (the
    sorted order fixes the order of the cells), but hashing the few distinct
    values first is several times faster than sorting every row's text.
    """
    values = column.tolist()
    distinct = {v: i for i, v in enumerate(dict.fromkeys(values))}
    raw = np.fromiter(map(distinct.__getitem__, values), dtype=np.int64, count=len(values))
    names = [str(v) for v in distinct]
    ordered = sorted(set(names))
    rank = {name: i for i, name in enumerate(ordered)}
    remap = np.array([rank[name] for name in names], dtype=np.int64)
    return ordered, remap[raw]


def _grain_of(view: View) -> str:
    """The first grain holding every dimension of the view."""
    needed = {MICRO_DIMS[c] for c in _view_columns(view)}
    return next(g for g, dims in GRAINS.items() if needed <= set(dims))


def roll_up(facts: Facts, views: Iterable[View]) -> CellCounts:
    """Counts of every non-empty cell of ``views``."""
    out = CellCounts()
    blocks: list[np.ndarray] = []
    grains: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    #: (grain, column) -> sorted distinct values and each row's index into them; only
    #: the columns some view asks for are coded.
    coded: dict[tuple[str, int], tuple[list[str], np.ndarray]] = {}
    for view in views:
        grain = _grain_of(view)
        if grain not in grains:
            grains[grain] = facts.of_grain(grain)
        keys, counts = grains[grain]
        m = keys.shape[0]
        if m == 0:
            continue
        cols = _view_columns(view)
        combined = np.zeros(m, dtype=np.int64)
        for col in cols:
            if (grain, col) not in coded:
                coded[(grain, col)] = _codes(keys[:, col])
            uniques, codes = coded[(grain, col)]
            combined = combined * len(uniques) + codes
        groups, first, member = np.unique(combined, return_index=True, return_inverse=True)
        matrix = sparse.csr_matrix(
            (np.ones(m, dtype=np.int64), (member, np.arange(m))), shape=(len(groups), m)
        )
        blocks.append(np.asarray(matrix @ counts))
        columns: list[list[str]] = []
        for col in cols:
            uniques, codes = coded[(grain, col)]
            columns.append([uniques[i] for i in codes[first].tolist()])
        out.keys += _keys(view, columns)
    out.index = {key: i for i, key in enumerate(out.keys)}
    out.counts = np.vstack(blocks) if blocks else out.counts
    return out
