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


def _key(view: View, values: tuple[str, ...]) -> CellKey:
    g, c, a, p = view
    it = iter(values)
    geo = tuple(next(it) for _ in range(g))
    care = tuple(next(it) for _ in range(c))
    age = tuple(next(it) for _ in range(a))
    prov = tuple(next(it) for _ in range(p))
    return (geo, care, age, prov)


def _grain_of(view: View) -> str:
    """The first grain holding every dimension of the view."""
    needed = {MICRO_DIMS[c] for c in _view_columns(view)}
    return next(g for g, dims in GRAINS.items() if needed <= set(dims))


def roll_up(facts: Facts, views: Iterable[View]) -> CellCounts:
    """Counts of every non-empty cell of ``views``."""
    out = CellCounts()
    blocks: list[np.ndarray] = []
    coded: dict[str, tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]] = {}
    for view in views:
        grain = _grain_of(view)
        if grain not in coded:
            keys, counts = facts.of_grain(grain)
            codes: list[np.ndarray] = []
            uniques: list[np.ndarray] = []
            for col in range(keys.shape[1]):
                u, inv = np.unique(keys[:, col].astype(str), return_inverse=True)
                uniques.append(u)
                codes.append(inv.astype(np.int64))
            coded[grain] = (keys, counts, codes, uniques)
        keys, counts, codes, uniques = coded[grain]
        m = keys.shape[0]
        if m == 0:
            continue
        cols = _view_columns(view)
        combined = np.zeros(m, dtype=np.int64)
        for col in cols:
            combined = combined * len(uniques[col]) + codes[col]
        groups, first, member = np.unique(combined, return_index=True, return_inverse=True)
        matrix = sparse.csr_matrix(
            (np.ones(m, dtype=np.int64), (member, np.arange(m))), shape=(len(groups), m)
        )
        blocks.append(np.asarray(matrix @ counts))
        for i in first:
            key = _key(view, tuple(str(keys[i, col]) for col in cols))
            out.index[key] = len(out.keys)
            out.keys.append(key)
    out.counts = np.vstack(blocks) if blocks else out.counts
    return out
