"""The third-party outputs as four kinds of linked two-way tables.

Every cell any third party can see is a cell of one of these tables (several
are in two or three of them, where the tables meet):

* ``A`` (one per gemeente): PC4 x access type, margins gemeente x access
  type and the gemeente total;
* ``B``: gemeente x care type (access > sector > hulpvorm), national margins;
* ``C``: gemeente x age band, national margins;
* ``D``: provider x care type, national margins (the shareable reports).

Why this matters: an attacker knows the published cells, that counts are
non-negative whole numbers, and the code lists, but not which cells are
empty. Such an attacker's knowledge of the full cross-classification splits
exactly into knowledge of each table, tied together only by the cells the
tables share (A and B share gemeente x access type, B and C the gemeente
totals, B and D the national care-type totals): the tables form a junction
tree, so any combination of per-table values that agrees on the shared cells
is realised by some non-negative full table. Disclosure control and its audit
can therefore work table by table plus the shared cells, which is small
enough to solve exactly, instead of over a cross-classification of millions
of cells.

Rows are flat under one total row; columns are a tree (care types) or flat
(access types, age bands). ``x`` holds the finest cells; every other cell is a
sum of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from services.aggregate.cells import AGE, CARE, GEO, PROV, CellKey, care_nodes

ColPath = tuple[str, ...]
RowPath = tuple[str, ...]


@dataclass
class ColumnTree:
    """Column nodes of a table: index 0 is the root; leaves are the finest columns."""

    paths: list[ColPath]
    parent: np.ndarray
    depth: np.ndarray
    leaves: list[int]
    #: leaf position (into ``leaves``) -> node indices from the leaf up to the root.
    chains: list[list[int]]
    #: node index -> leaf positions below it.
    below: list[list[int]]
    #: (N nodes x N leaves) 0/1: a node's value is the sum of its leaves.
    sums: np.ndarray

    @classmethod
    def build(cls, paths: list[ColPath]) -> ColumnTree:
        index = {p: i for i, p in enumerate(paths)}
        parent = np.array([index[p[:-1]] if p else -1 for p in paths], dtype=np.int64)
        depth = np.array([len(p) for p in paths], dtype=np.int64)
        max_depth = int(depth.max())
        leaves = [i for i, p in enumerate(paths) if len(p) == max_depth]
        chains: list[list[int]] = []
        below: list[list[int]] = [[] for _ in paths]
        for pos, leaf in enumerate(leaves):
            chain = [leaf]
            while parent[chain[-1]] >= 0:
                chain.append(int(parent[chain[-1]]))
            chains.append(chain)
            for node in chain:
                below[node].append(pos)
        sums = np.zeros((len(paths), len(leaves)), dtype=np.int64)
        for node, positions in enumerate(below):
            sums[node, positions] = 1
        return cls(paths, parent, depth, leaves, chains, below, sums)


def care_tree() -> ColumnTree:
    return ColumnTree.build([p for level in range(4) for p in care_nodes(level)])


def flat_tree(values: Iterable[str]) -> ColumnTree:
    return ColumnTree.build([()] + [(v,) for v in values])


@dataclass
class HTable:
    """One two-way table with margins; ``rows`` plus one total row (index ``R``)."""

    name: str
    row_dim: int
    col_dim: int
    #: Path of each real row in ``row_dim`` (e.g. ``("GM0363", "1012")``).
    rows: list[RowPath]
    #: Path of the total row in ``row_dim`` (e.g. ``("GM0363",)`` or ``()``).
    total: RowPath
    tree: ColumnTree
    #: Finest cells, R x leaves; true counts (or zeros where unknown).
    x: np.ndarray
    _keys: list[list[CellKey]] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    def row_path(self, r: int) -> RowPath:
        return self.total if r == self.n_rows else self.rows[r]

    def key_grid(self) -> list[list[CellKey]]:
        """Every cell's key, ``[row][node]`` with the total row last.

        Built once and kept (rows and columns do not change after a table is
        built): disclosure control asks for keys cell by cell, for tens of
        thousands of cells, in its inner loops.
        """
        if self._keys is None:
            self._keys = [self._row_keys(path) for path in (*self.rows, self.total)]
        return self._keys

    def _row_keys(self, path: RowPath) -> list[CellKey]:
        parts: list[tuple[str, ...]] = [(), (), (), ()]
        parts[self.row_dim] = path
        keys: list[CellKey] = []
        for column in self.tree.paths:
            parts[self.col_dim] = column
            keys.append((parts[GEO], parts[CARE], parts[AGE], parts[PROV]))
        return keys

    def key(self, r: int, node: int) -> CellKey:
        """The cell key of row ``r`` (``R`` for the total row) and column node ``node``."""
        return self.key_grid()[r][node]

    def values(self) -> np.ndarray:
        """All cell values, (R + 1) x nodes; the last row is the total row."""
        inner = self.x @ self.tree.sums.T
        return np.vstack([inner, inner.sum(axis=0, keepdims=True)])

    def cells(self) -> Iterator[tuple[int, int, CellKey]]:
        for r, row in enumerate(self.key_grid()):
            for node, key in enumerate(row):
                yield r, node, key


Lookup = Callable[[CellKey], int]


def build_tables(
    gemeenten: list[str], pc4s: dict[str, list[str]], providers: list[str], bands: Iterable[str],
    n_of: Lookup,
) -> list[HTable]:
    """The four kinds of table over the given domains, filled with ``n_of(finest key)``."""
    care = care_tree()
    tables: list[HTable] = []
    access = flat_tree(("false", "true"))
    for g in gemeenten:
        rows: list[RowPath] = [(g, p) for p in pc4s.get(g, [])]
        tables.append(_filled(f"A:{g}", GEO, CARE, rows, (g,), access, n_of))
    g_rows: list[RowPath] = [(g,) for g in gemeenten]
    v_rows: list[RowPath] = [(v,) for v in providers]
    tables.append(_filled("B", GEO, CARE, g_rows, (), care, n_of))
    tables.append(_filled("C", GEO, AGE, g_rows, (), flat_tree(bands), n_of))
    tables.append(_filled("D", PROV, CARE, v_rows, (), care, n_of))
    return tables


def _filled(name: str, row_dim: int, col_dim: int, rows: list[RowPath], total: RowPath,
            tree: ColumnTree, n_of: Lookup) -> HTable:
    table = HTable(name, row_dim, col_dim, rows, total, tree,
                   np.zeros((len(rows), len(tree.leaves)), dtype=np.int64))
    grid = table.key_grid()
    table.x = np.array(
        [[n_of(grid[r][leaf]) for leaf in tree.leaves] for r in range(len(rows))], dtype=np.int64,
    ).reshape(len(rows), len(tree.leaves))
    return table


@dataclass(slots=True)
class Occurrence:
    table: int
    row: int
    node: int


def occurrences(tables: list[HTable]) -> dict[CellKey, list[Occurrence]]:
    """Where each cell key sits; keys in more than one table are where tables meet."""
    where: dict[CellKey, list[Occurrence]] = {}
    for t, table in enumerate(tables):
        for r, row in enumerate(table.key_grid()):
            for node, key in enumerate(row):
                found = where.get(key)
                if found is None:
                    where[key] = [Occurrence(t, r, node)]
                else:
                    found.append(Occurrence(t, r, node))
    return where
