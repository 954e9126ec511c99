"""Small-number suppression of every third-party output, provably protective.

Primary suppression hides every cell with fewer than ``threshold`` trajectories
(zero included: like CBS's 0-7 "secret", a hidden cell must not give away that
it is non-empty). A hidden cell with 1 to threshold-1 trajectories is
*sensitive*: no reader may narrow it below its protection interval
``[v - ratio*v, max(v + ratio*v, threshold)]``.

Secondary suppression here does not guess. For every sensitive cell it finds
two *certificates*: integer changes of the finest cells, keeping every count
non-negative and every cell still published unchanged, that move the
sensitive cell up to the top and down to the bottom of its interval; the
cells such a change touches are hidden too. Both changed tables are then
consistent with everything published, so no reader, whatever linear
reasoning or knowledge of integrality they use, can rule out either end of
the interval. Hiding more cells later only widens what a reader must allow,
so a certificate stays valid while other cells are processed, across
outputs (feed, Rijk, shareable reports: one pattern for all) and across
recomputes (the pattern a third party has seen is kept, see
``aggregate_models.ReleasedCell``).

Certificates are searched in two ways:

* fast shapes, cheapest first (fewest trajectories newly hidden): a
  rectangle with a partner column under the same parent and one or more
  partner rows; a move between rows where row totals may change (PC4 and
  provider rows); a move between two hulpvormen of one gemeente mirrored in
  a provider's row (for care rare nationally); a move between gemeenten made
  alike in the gemeente, age and PC4 tables (for small gemeenten);
* otherwise a small integer program over the cell's own rows, a few candidate
  partner rows and every linked table (scipy's HiGHS ``milp``, its linear
  relaxation first), minimising the trajectories hidden.

Every certificate is checked cell by cell before it is used (counts stay
non-negative, a cell shared by tables changes alike in each), and
``lp_audit.py`` checks the outcome again, independently, by linear
programming.

Values computed over few respondents get the same treatment in spirit: a
share, mean or distribution over fewer than ``threshold`` responses is
withheld, and a second one in the same row or column sum, so the withheld one
cannot be recovered by subtraction.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Final

import numpy as np
from scipy import optimize, sparse

from services.aggregate.cells import CellKey
from services.aggregate.indicators import IDX, INFORMANTS, LAYOUT, PROBLEM_CHANGE
from services.aggregate.tables import ColumnTree, HTable, Occurrence, occurrences

log = logging.getLogger("ttp.aggregate.disclosure")

#: table index -> {(row, leaf position): change}
Certificate = dict[int, dict[tuple[int, int], int]]
#: A pair of certificates (up, down), built only when it is tried (most cells take the
#: first, cheapest shape): None if the shape turns out not to fit.
Build = Callable[[], tuple[Certificate, Certificate] | None]
#: A fast certificate shape and its approximate cost (trajectories newly hidden).
Candidate = tuple[float, Build]


@dataclass(frozen=True)
class Protection:
    """The small-number rule and the interval a hidden cell must keep open."""

    threshold: int = 10
    ratio: float = 0.5

    def sensitive(self, v: int) -> bool:
        return 1 <= v < self.threshold

    def upper(self, v: int) -> float:
        return max(v * (1 + self.ratio), float(self.threshold))

    def lower(self, v: int) -> float:
        return v * (1 - self.ratio)

    def up(self, v: int) -> int:
        """Whole trajectories a certificate must add to reach the top of the interval."""
        return max(1, math.ceil(self.upper(v) - v - 1e-9))

    def down(self, v: int) -> int:
        """Whole trajectories a certificate must remove to reach the bottom (never more than v)."""
        return min(v, max(1, math.ceil(v - self.lower(v) - 1e-9)))


# --- value families: distributions withheld for too few responses ---------------------------------


@dataclass(frozen=True)
class ValueFamily:
    """A figure whose value rests on a subset of a cell's trajectories (its ``responses``)."""

    name: str
    columns: tuple[int, ...]
    #: Only cells of niet-vrij-toegankelijke hulp carry this figure.
    individual_only: bool = False


def _family_columns(prefix: str) -> tuple[int, ...]:
    return tuple(i for i, name in enumerate(LAYOUT) if name.startswith(prefix))


VALUE_FAMILIES: Final[tuple[ValueFamily, ...]] = (
    *(
        fam
        for i in INFORMANTS
        for fam in (
            ValueFamily(f"tevredenheid.{i}", _family_columns(f"{i}.sat.")),
            ValueFamily(f"zonderHulpVerder.{i}", _family_columns(f"{i}.wh.")),
            ValueFamily(f"afnameProblematiek.{i}", _family_columns(f"{i}.pc."), individual_only=True),
            ValueFamily(f"doelrealisatie.overall.{i}", _family_columns(f"{i}.goal.")),
            ValueFamily(f"doelrealisatie.perDoel.{i}", (IDX[f"{i}.goalsResp"],)),
        )
    ),
    ValueFamily("geenNieuweStart.volgensPlan", (IDX["reason.01"],)),
)
FAMILY_BIT: Final[dict[str, int]] = {fam.name: 1 << k for k, fam in enumerate(VALUE_FAMILIES)}
assert len(PROBLEM_CHANGE) == len(_family_columns("jeugdige.pc."))


def responses(counts: np.ndarray, family: ValueFamily) -> np.ndarray:
    """The family's response count per row of a counts matrix."""
    result: np.ndarray = counts[..., list(family.columns)].sum(axis=-1)
    return result


# --- the suppressor ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """The disclosure pattern of one period."""

    suppressed: set[CellKey] = field(default_factory=set)
    #: key -> bit mask over VALUE_FAMILIES of values withheld for too few responses.
    withheld: dict[CellKey, int] = field(default_factory=dict)
    #: Sensitive cells and the number protected the fast way / by integer program.
    sensitive: int = 0
    by_rectangle: int = 0
    by_program: int = 0


@dataclass
class _TreeIndex:
    """What the suppressor looks up in a column tree, derived once per tree."""

    #: Each node's children, parent (-1: the root) and depth, as lists: the per-cell walks
    #: up the tree are cheaper on small lists than on arrays.
    child_lists: list[list[int]]
    parents: list[int]
    depths: list[int]
    #: node -> the node and its ancestors up to the root.
    chain_up: list[list[int]]
    #: leaf node -> its position among the leaves.
    leaf_pos: dict[int, int]
    #: leaf node -> the other leaves under the same access type.
    leaves_in_access: dict[int, list[int]]

    @classmethod
    def of(cls, tree: ColumnTree) -> _TreeIndex:
        children = [np.nonzero(tree.parent == a)[0].tolist() for a in range(len(tree.paths))]
        chain_up: list[list[int]] = []
        for node in range(len(tree.paths)):
            chain = [node]
            while tree.parent[chain[-1]] >= 0:
                chain.append(int(tree.parent[chain[-1]]))
            chain_up.append(chain)
        leaf_pos = {leaf: pos for pos, leaf in enumerate(tree.leaves)}
        same: dict[int, list[int]] = {}
        for leaf in tree.leaves:
            path = tree.paths[leaf]
            same[leaf] = [o for o in tree.leaves if o != leaf and tree.paths[o][:1] == path[:1]]
        return cls(children, tree.parent.tolist(), tree.depth.tolist(), chain_up, leaf_pos, same)


class Suppressor:
    """Primary and certificate-based secondary suppression over linked tables."""

    #: Partner rows tried per integer program (then everything, if that fails).
    PARTNERS: Final = 4

    def __init__(self, tables: list[HTable], protection: Protection,
                 already: Iterable[CellKey] = ()) -> None:
        self.tables = tables
        self.p = protection
        self.where = occurrences(tables)
        # Column-major: the searches below read whole columns (a care type across every
        # gemeente or provider) far more often than rows.
        self.values = [np.asfortranarray(t.values()) for t in tables]
        self.supp = [np.asfortranarray(v < protection.threshold) for v in self.values]
        #: What hiding each cell costs: its trajectories plus one (zero once hidden).
        self.pub = [
            np.asfortranarray(np.where(h, 0.0, v + 1.0)) for h, v in zip(self.supp, self.values, strict=True)
        ]
        #: Per table, as Python lists: the finest counts and the cell values, read one
        #: number at a time in the certificate loops (a NumPy scalar read costs far more).
        self.x_rows: list[list[list[int]]] = [t.x.tolist() for t in tables]
        self.value_rows: list[list[list[int]]] = [v.tolist() for v in self.values]
        self.n_rows: list[int] = [t.n_rows for t in tables]
        # Column trees are shared between tables (every PC4 table has the same one; the
        # gemeente and provider tables have the care tree): derive their indexes once.
        per_tree: dict[int, _TreeIndex] = {}
        for t in tables:
            if id(t.tree) not in per_tree:
                per_tree[id(t.tree)] = _TreeIndex.of(t.tree)
        index = [per_tree[id(t.tree)] for t in tables]
        self.trees = index
        self.chain_up = [i.chain_up for i in index]
        self.leaf_pos = [i.leaf_pos for i in index]
        #: leaf node -> the other leaves under the same access type (for moves that keep
        #: the gemeente's access-type totals, which the PC4 tables share).
        self.leaves_in_access = [i.leaves_in_access for i in index]
        self.outcome = Outcome()
        for key in already:
            if key in self.where:
                self._hide(key)
        self._index_tables()

    def _index_tables(self) -> None:
        self.kind: list[str] = [t.name.split(":", 1)[0] for t in self.tables]
        self.a_table: dict[str, int] = {
            t.name.split(":", 1)[1]: i for i, t in enumerate(self.tables) if t.name.startswith("A:")
        }
        self.by_kind: dict[str, int] = {k: i for i, k in enumerate(self.kind) if k != "A"}
        self.g_row = {row[0]: i for i, row in enumerate(self.tables[self.by_kind["B"]].rows)}
        self.v_row = {row[0]: i for i, row in enumerate(self.tables[self.by_kind["D"]].rows)}
        self.keys: list[list[list[CellKey]]] = [t.key_grid() for t in self.tables]
        #: Cells held by more than one table: where certificates must agree.
        self.shared: set[CellKey] = {key for key, occs in self.where.items() if len(occs) > 1}
        self._sums_of: dict[int, sparse.coo_matrix] = {}

    def _sums(self, t: int) -> sparse.coo_matrix:
        """Table ``t``'s node-from-leaves matrix, sparse, once per column tree."""
        tree = self.tables[t].tree
        if id(tree) not in self._sums_of:
            self._sums_of[id(tree)] = sparse.coo_matrix(tree.sums)
        return self._sums_of[id(tree)]

    # --- state ---------------------------------------------------------------------------------------

    def _hide(self, key: CellKey) -> None:
        for occ in self.where[key]:
            self.supp[occ.table][occ.row, occ.node] = True
            self.pub[occ.table][occ.row, occ.node] = 0.0

    def hidden(self, key: CellKey) -> bool:
        occ = self.where[key][0]
        return bool(self.supp[occ.table][occ.row, occ.node])

    def value(self, key: CellKey) -> int:
        occ = self.where[key][0]
        return self.value_rows[occ.table][occ.row][occ.node]


    # --- certificates --------------------------------------------------------------------------------

    def changes(self, cert: Certificate) -> dict[CellKey, dict[int, int]] | None:
        """Per cell key, its change in each table; None if a finest cell would go negative."""
        out: dict[CellKey, dict[int, int]] = {}
        for t, deltas in cert.items():
            x = self.x_rows[t]
            chains = self.tables[t].tree.chains
            total = self.n_rows[t]
            per_cell: dict[tuple[int, int], int] = {}
            get = per_cell.get
            for (r, pos), d in deltas.items():
                if d == 0:
                    continue
                if x[r][pos] + d < 0:
                    return None
                for node in chains[pos]:
                    cell = (r, node)
                    per_cell[cell] = get(cell, 0) + d
                    cell = (total, node)
                    per_cell[cell] = get(cell, 0) + d
            keys = self.keys[t]
            for (row, node), d in per_cell.items():
                if d:
                    out.setdefault(keys[row][node], {})[t] = d
        return out

    def verify(self, cert: Certificate) -> set[CellKey] | None:
        """The cells a certificate changes (all must be hidden), or None if it is not valid:
        a count would go negative, or a cell shared by two tables would change differently."""
        changed = self.changes(cert)
        if changed is None:
            return None
        if not self._consistent(changed):
            return None
        return set(changed)

    # --- the run -------------------------------------------------------------------------------------

    def run(self) -> Outcome:
        # Every key once, valued where it first occurs (as ``value`` does); the order
        # here does not matter, the sort below is by key.
        sensitive: list[CellKey] = []
        for t, grid in enumerate(self.keys):
            small = (self.values[t] >= 1) & (self.values[t] < self.p.threshold)
            rows, nodes = np.nonzero(small)
            for r, node in zip(rows.tolist(), nodes.tolist(), strict=True):
                key = grid[r][node]
                occ = self.where[key][0]
                if occ.table == t and occ.row == r and occ.node == node:
                    sensitive.append(key)
        self.outcome.sensitive = len(sensitive)
        #: Sensitive cells a certificate already moves far enough up / down.
        self.covered_up: set[CellKey] = set()
        self.covered_down: set[CellKey] = set()
        # Coarse cells first: their certificates hide cells that then need no search of their own.
        sensitive.sort(key=lambda k: (sum(len(part) for part in k), k))
        for key in sensitive:
            if key not in self.covered_up or key not in self.covered_down:
                self._protect(key)
        for t, grid in enumerate(self.keys):
            rows, nodes = np.nonzero(self.supp[t])
            self.outcome.suppressed.update(map(lambda r, node: grid[r][node], rows.tolist(), nodes.tolist()))
        return self.outcome

    def _protect(self, key: CellKey) -> None:
        v = self.value(key)
        up, down = self.p.up(v), self.p.down(v)
        groups = self._candidate_groups(key, up, down)
        candidates: list[Candidate] = []
        for group in groups:
            candidates += group
            if candidates:
                break
        # Most cells have a free move (every cell it touches hidden already) as their very
        # first candidate: the sort below would put it first (nothing costs less, and it
        # comes first among equals), so if it holds, the other shapes need no search.
        if candidates and candidates[0][0] == 0.0 and self._try(candidates[0][1]):
            return
        for group in groups:
            candidates += group
        candidates.sort(key=lambda c: c[0])
        for _, build in candidates:
            if self._try(build):
                return
        self.outcome.by_program += 1
        for k in self._by_program(key, up, down):
            self._hide(k)

    def _candidate_groups(self, key: CellKey, up: int, down: int) -> Iterator[list[Candidate]]:
        """The fast candidates, shape by shape, in a fixed order (ties go to the first)."""
        for occ in self.where[key]:
            yield from self._fast_candidates(occ, up, down)
        if key[0] and not key[3]:
            yield self._gemeente_transfer(key, up, down)

    def _try(self, build: Build) -> bool:
        """Use a candidate if its certificates hold: hide what they touch."""
        pair = build()
        if pair is None:
            return False
        cert_up, cert_down = pair
        changed_up, changed_down = self.changes(cert_up), self.changes(cert_down)
        if changed_up is None or changed_down is None:
            return False
        if self._consistent(changed_up) and self._consistent(changed_down):
            self.outcome.by_rectangle += 1
            self._accept(changed_up, changed_down)
            return True
        return False

    def _consistent(self, changed: dict[CellKey, dict[int, int]]) -> bool:
        """Every table holding a changed cell changes it alike (only a cell held by more
        than one table can fail this)."""
        return all(
            len({changed[key].get(occ.table, 0) for occ in self.where[key]}) == 1
            for key in changed.keys() & self.shared
        )

    def _accept(self, changed_up: dict[CellKey, dict[int, int]],
                changed_down: dict[CellKey, dict[int, int]]) -> None:
        """Hide what the pair of certificates touches, and note which other sensitive
        cells they happen to protect as well (a corner of the same rectangle)."""
        for changed in (changed_up, changed_down):
            for key, per_table in changed.items():
                if changed is changed_up or key not in changed_up:  # most cells change both ways
                    self._hide(key)
                delta = next(iter(per_table.values()))
                v = self.value(key)
                if not self.p.sensitive(v):
                    continue
                if delta >= self.p.up(v):
                    self.covered_up.add(key)
                if -delta >= self.p.down(v):
                    self.covered_down.add(key)

    # --- fast candidates -----------------------------------------------------------------------------

    def _allows(self, t: int, row_total: bool, lca_depth: int) -> bool:
        """Whether a change of this shape stays inside table ``t`` (touches no shared cell)."""
        kind = self.kind[t]
        if kind in ("B", "C"):
            # B and C rows are gemeenten: their totals (and B's access-type cells) are shared.
            return not row_total and (kind == "C" or lca_depth >= 1)
        return True  # A: PC4 rows; D: provider rows. Their shared cells are in the total row.

    def _fast_candidates(self, occ: Occurrence, up: int, down: int) -> Iterator[list[Candidate]]:
        """Certificate pairs (up, down) with their approximate cost, not yet built or
        verified; shape by shape, each searched only when asked for."""
        t, r, u = occ.table, occ.row, occ.node
        if r == self.n_rows[t]:
            return  # a national or gemeente-wide margin: shared, needs the integer program
        if self._allows(t, True, 0):
            yield self._moves(t, r, u, up, down)
        if u != 0:
            yield self._rectangles(t, r, u, up, down)
        if self.kind[t] == "B" and u in self.leaf_pos[t]:
            yield self._across_providers(t, r, u, up, down)

    def _across_providers(self, t: int, r: int, u: int, up: int, down: int) -> list[Candidate]:
        """A hulpvorm of one gemeente, when no other gemeente has enough of it: move
        between hulpvormen (of the same access type) within the gemeente's row, change
        their national totals, and make the same moves in provider rows, which keeps the
        national totals consistent between the gemeente table and the provider table."""
        d = self.by_kind["D"]
        b_tree, d_tree = self.tables[t].tree, self.tables[d].tree
        n_b, n_d = self.tables[t].n_rows, self.tables[d].n_rows
        vb, vd, pd = self.values[t], self.values[d], self.pub[d]
        to_d = {node: d_tree.paths.index(path) for node, path in enumerate(b_tree.paths)}
        d_u = to_d[u]
        # Up: the gemeente gives up to ``up`` from its largest other hulpvormen ...
        givers = sorted(self.leaves_in_access[t][u], key=lambda w: -int(vb[r, w]))
        plan: list[tuple[int, int]] = []
        left = up
        for w in givers:
            if left <= 0 or vb[r, w] <= 0:
                break
            plan.append((w, min(int(vb[r, w]), left)))
            left -= plan[-1][1]
        if left > 0:
            return []
        # ... and providers mirror each move (a provider with that much in the hulpvorm).
        mirror: list[tuple[int, int, int]] = []
        for w, k in plan:
            able = vd[:n_d, to_d[w]] >= k
            if not able.any():
                return []
            cost = np.where(able, pd[:n_d, to_d[w]] + pd[:n_d, d_u], np.inf)
            mirror.append((w, k, int(np.argmin(cost))))
        # Down: the cell gives to its largest sibling hulpvorm, mirrored by a provider
        # that has enough of the cell's hulpvorm.
        w_down = plan[0][0]
        able = (vd[:n_d, d_u] >= down)
        if not able.any():
            return []
        v_down = int(np.argmin(np.where(able, pd[:n_d, d_u] + pd[:n_d, to_d[w_down]], np.inf)))
        pos = self.leaf_pos[t]
        dpos = self.leaf_pos[d]
        cert_up: Certificate = {t: {(r, pos[u]): up}, d: {}}
        for w, k, v in mirror:
            cert_up[t][(r, pos[w])] = -k
            dd = cert_up[d]
            dd[(v, dpos[d_u])] = dd.get((v, dpos[d_u]), 0) + k
            dd[(v, dpos[to_d[w]])] = dd.get((v, dpos[to_d[w]]), 0) - k
        cert_down: Certificate = {
            t: {(r, pos[u]): -down, (r, pos[w_down]): down},
            d: {(v_down, dpos[d_u]): -down, (v_down, dpos[to_d[w_down]]): down},
        }
        approx = float(sum(self.pub[t][r, w] + self.pub[t][n_b, w] for w, _ in plan))
        approx += float(sum(pd[v, to_d[w]] + pd[v, d_u] for w, _, v in mirror))
        return [(approx, partial(_built, cert_up, cert_down))]

    def _gemeente_transfer(self, key: CellKey, up: int, down: int) -> list[Candidate]:
        """A cell of a gemeente as a whole (its total, access type, care type or age band):
        move trajectories between gemeenten in all three tables that hold gemeente rows at
        once, alike in each, so the cells they share (gemeente totals, totals per access
        type) stay consistent and national totals do not change. Needed where a gemeente is
        so small that no move within its own row exists."""
        geo, care, age, _ = key
        b, c = self.by_kind["B"], self.by_kind["C"]
        g_table, c_table = self.tables[b], self.tables[c]
        r = self.g_row[geo[0]]
        # A PC4 cell: its own PC4 row gains or gives, in its access type if it has one.
        pc4_row = None
        if len(geo) == 2:
            a_t = self.a_table[geo[0]]
            pc4_row = self.tables[a_t].rows.index(geo)
        b_leaves = g_table.tree.below[g_table.tree.paths.index(care)]
        c_leaves = c_table.tree.below[c_table.tree.paths.index(age)]
        n = g_table.n_rows
        totals = self.values[b][:n, 0]
        cost = np.where(np.arange(n) == r, np.inf, self.pub[b][:n, 0] + self.pub[c][:n, 0])
        ranked = np.lexsort((-totals, cost))
        order: list[int] = ranked[np.isfinite(cost[ranked]) & (totals[ranked] > 0)].tolist()
        cert_up: Certificate = {}
        left = up
        used: list[int] = []
        for partner in order:
            if left <= 0:
                break
            moved = self._move_gemeente(partner, r, b_leaves, c_leaves, left, cert_up, dst_row=pc4_row)
            if moved:
                used.append(partner)
                left -= moved
        if left > 0:
            return []
        cert_down: Certificate = {}
        rows = None if pc4_row is None else [pc4_row]
        if self._move_gemeente(r, used[0], b_leaves, c_leaves, down, cert_down, src_rows=rows) < down:
            return []
        # Hiding whole partner gemeenten is dear: other shapes win whenever they exist.
        return [(float(cost[used].sum()) + 1e6, partial(_built, cert_up, cert_down))]

    def _move_gemeente(self, src: int, dst: int, b_leaves: list[int], c_leaves: list[int], amount: int,
                       cert: Certificate, *, src_rows: list[int] | None = None, dst_row: int | None = None,
                       ) -> int:
        """Move up to ``amount`` trajectories from gemeente row ``src`` to ``dst`` in the care
        leaves ``b_leaves`` (table B), the bands ``c_leaves`` (table C) and the PC4 tables
        (same access type as in B; from ``src_rows``, into ``dst_row``, by default any PC4
        and the first): returns how many were moved."""
        b, c = self.by_kind["B"], self.by_kind["C"]
        g_table = self.tables[b]
        src_a = self.a_table.get(g_table.rows[src][0])
        dst_a = self.a_table.get(g_table.rows[dst][0])
        if src_a is None or dst_a is None or not self.tables[dst_a].n_rows:
            return 0
        b_deltas = cert.setdefault(b, {})
        c_deltas = cert.setdefault(c, {})
        a_deltas = cert.setdefault(src_a, {})
        dst_deltas = cert.setdefault(dst_a, {})
        rows_from = list(range(self.tables[src_a].n_rows)) if src_rows is None else src_rows
        x_a, x_b, x_c = self.x_rows[src_a], self.x_rows[b][src], self.x_rows[c][src]
        moved = 0
        band_room = sum(x_c[p] + c_deltas.get((src, p), 0) for p in c_leaves)
        for access_pos, access in enumerate(("false", "true")):
            want = min(amount, band_room) - moved
            if want <= 0:
                break
            leaves = [p for p in b_leaves if g_table.tree.paths[g_table.tree.leaves[p]][0] == access]
            in_b = sum(x_b[p] + b_deltas.get((src, p), 0) for p in leaves)
            have = {p: x_a[p][access_pos] + a_deltas.get((p, access_pos), 0) for p in rows_from}
            k = min(want, in_b, sum(have.values()))
            if k <= 0:
                continue
            self._transfer(b, src, dst, leaves, k, cert)
            self._transfer(c, src, dst, c_leaves, k, cert)
            left = k
            for p in sorted(rows_from, key=lambda p: -have[p]):
                step = min(have[p], left)
                if step > 0:
                    a_deltas[(p, access_pos)] = a_deltas.get((p, access_pos), 0) - step
                    left -= step
            target = (dst_row or 0, access_pos)
            dst_deltas[target] = dst_deltas.get(target, 0) + k
            moved += k
        return moved

    def _take(self, t: int, row: int, positions: list[int], amount: int,
              already: dict[tuple[int, int], int]) -> list[tuple[int, int]]:
        """Leaves of ``row`` to take ``amount`` from, largest first, minding what the
        certificate already took: [(leaf position, amount)], or [] if there is not enough."""
        x = self.x_rows[t][row]
        have = {pos: x[pos] + already.get((row, pos), 0) for pos in positions}
        taken: list[tuple[int, int]] = []
        left = amount
        for pos in sorted(positions, key=lambda p: -have[p]):
            if left <= 0 or have[pos] <= 0:
                break
            k = min(have[pos], left)
            taken.append((pos, k))
            left -= k
        return taken if left <= 0 else []

    def _transfer(self, t: int, src: int, dst: int, positions: list[int], amount: int,
                  cert: Certificate) -> bool:
        """Move ``amount`` from row ``src`` to row ``dst`` within the same leaves (columns)."""
        deltas = cert.setdefault(t, {})
        taken = self._take(t, src, positions, amount, deltas)
        if not taken:
            return False
        for pos, k in taken:
            deltas[(src, pos)] = deltas.get((src, pos), 0) - k
            deltas[(dst, pos)] = deltas.get((dst, pos), 0) + k
        return True

    @staticmethod
    def _greedy(cost: np.ndarray, capacity: np.ndarray, need: int, exclude: int) -> list[tuple[int, int]]:
        """Partner rows, cheapest first (then largest), each giving up to its capacity: [(row, amount)]."""
        usable = capacity > 0
        usable[exclude] = False
        # Most often one row already hidden can give everything: no sort needed.
        single = usable & (capacity >= need) & (cost == 0)
        if single.any():
            return [(int(np.argmax(np.where(single, capacity, -1))), need)]
        rows = np.nonzero(usable)[0]
        if rows.size == 0 or int(capacity[rows].sum()) < need:
            return []
        order = rows[np.lexsort((-capacity[rows], cost[rows]))]
        picked: list[tuple[int, int]] = []
        left = need
        for row in order:
            k = min(int(capacity[row]), left)
            picked.append((int(row), k))
            left -= k
            if left <= 0:
                return picked
        return []

    def _moves(self, t: int, r: int, u: int, up: int, down: int) -> list[Candidate]:
        """Move trajectories of column ``u`` between the cell's row and partner rows.

        Only where rows may change totals (PC4 rows, provider rows): the partner rows'
        totals change too and are hidden, which is free where they already are.
        """
        tree = self.tables[t].tree
        n = self.n_rows[t]
        # Column-major arrays: their transposes hold each column as one contiguous row.
        row_cost = self.pub[t].T[self.chain_up[t][u], :n].sum(axis=0)  # whole numbers: exact
        capacity = self.values[t][:n, u]
        # The cell's own row is no partner: out of both searches below, then back.
        own = row_cost[r]
        row_cost[r] = np.inf
        receiver = int(row_cost.argmin())
        no_receiver = math.isinf(row_cost[receiver])
        # One partner giving everything, else several, cheapest first. The cheapest row
        # of all, if it has enough, is the first cheapest of those that have.
        if capacity[receiver] >= up:
            best, best_cost = receiver, row_cost[receiver]
        else:
            single = np.where(capacity >= up, row_cost, np.inf)
            best = int(single.argmin())
            best_cost = single[best]
        row_cost[r] = own
        donors = [(best, up)] if math.isfinite(best_cost) else self._greedy(row_cost, capacity.copy(), up, r)
        if not donors or no_receiver:
            return []
        approx = float(row_cost[list({p for p, _ in donors} | {receiver})].sum())
        return [(approx, partial(self._build_move, t, r, tree.below[u], donors, receiver, down))]

    def _build_move(self, t: int, r: int, below: list[int], donors: list[tuple[int, int]],
                    receiver: int, down: int) -> tuple[Certificate, Certificate] | None:
        """The certificates of a move: donors give to row ``r``, which gives to ``receiver``."""
        cert_up: Certificate = {}
        for p, k in donors:
            if not self._transfer(t, p, r, below, k, cert_up):
                return None
        cert_down: Certificate = {}
        if not self._transfer(t, r, receiver, below, down, cert_down):
            return None
        return cert_up, cert_down

    def _rectangles(self, t: int, r: int, u: int, up: int, down: int) -> list[Candidate]:
        """An inner cell: rectangles with a partner column branch and partner rows.

        Up: partner rows give ``up`` under the cell's column to the cell's row, which
        gives as much back to them under the partner column; down the other way round.
        Row and column sums stay as they were; only the corners (and the cells between a
        corner and the two columns' common parent) change.
        """
        tree = self.tables[t].tree
        index = self.trees[t]
        row = self.value_rows[t][r]
        # Per common parent, walking up from the cell: the partner columns under it, and
        # how many nodes lie between the cell and it (they change in every row used).
        levels: list[tuple[list[int], int]] = []
        a = index.parents[u]
        u_child = u
        between = 0
        while a >= 0:
            if self._allows(t, False, index.depths[a]):
                siblings = [w for w in index.child_lists[a] if w != u_child and row[w] >= up]
                if siblings:
                    levels.append((siblings, between))
            between += 1
            u_child = a
            a = index.parents[a]
        if not levels:
            return []
        options = self._rectangle_options(t, r, u, levels, up, down)
        options.sort(key=lambda o: o[0])
        return [
            (approx, partial(self._build_rectangle, t, r, tree.below[u], tree.below[w], donors, takers))
            for approx, w, donors, takers in options[:3]
        ]

    def _build_rectangle(self, t: int, r: int, under_u: list[int], under_w: list[int],
                         donors: list[tuple[int, int]], takers: list[tuple[int, int]],
                         ) -> tuple[Certificate, Certificate] | None:
        """The certificates of a rectangle: donors give under the cell's column and take
        under the partner column (up), takers the other way round (down)."""
        cert_up: Certificate = {}
        cert_down: Certificate = {}
        ok = all(
            self._transfer(t, p, r, under_u, k, cert_up) and self._transfer(t, r, p, under_w, k, cert_up)
            for p, k in donors
        ) and all(
            self._transfer(t, r, q, under_u, k, cert_down) and self._transfer(t, q, r, under_w, k, cert_down)
            for q, k in takers
        )
        return (cert_up, cert_down) if ok else None

    def _rectangle_options(self, t: int, r: int, u: int, levels: list[tuple[list[int], int]],
                           up: int, down: int,
                           ) -> list[tuple[float, int, list[tuple[int, int]], list[tuple[int, int]]]]:
        """Partner rows for each partner column, level by level (the common parent of the
        cell's column and the partner columns): the two cheapest rows doing both moves if
        any, else several rows per move for each partner column.

        Every level's partner columns are costed in one matrix (every partner column x
        rows): NumPy's cost per call, not per element, is what counts at these sizes.
        Costs are whole numbers in floating point, so the order of the sums does not
        change them.
        """
        n = self.n_rows[t]
        # Partner columns x rows: the arrays are column-major, so their transposes
        # give each column as one contiguous row.
        values = self.values[t].T
        pub = self.pub[t].T
        chain = self.chain_up[t][u]
        deepest = max(between for _, between in levels)
        #: Row j: what the cell's column and the j nodes above it cost in each row.
        shared = np.empty((deepest + 1, n))
        shared[0] = pub[u, :n]
        for j in range(1, deepest + 1):
            np.add(shared[j - 1], pub[chain[j], :n], out=shared[j])
        #: The same in the cell's own row, without the cell (it is hidden already).
        fixed_between = [0.0]
        for node in chain[1:deepest + 1]:
            fixed_between.append(fixed_between[-1] + float(pub[node, r]))
        partners = [w for siblings, _ in levels for w in siblings]
        depth_of = [between for siblings, between in levels for _ in siblings]
        row_cost = pub[partners, :n] + shared[depth_of]  # partner columns x rows
        fixed = pub[partners, r] + np.array([fixed_between[j] for j in depth_of])
        able_u = values[u, :n] >= up
        able_u[r] = False
        able = (values[partners, :n] >= down) & able_u
        cost = np.where(able, row_cost + fixed[:, None], np.inf)
        best_row = cost.argmin(axis=1)
        best: list[tuple[float, int, int]] = list(zip(
            cost[np.arange(len(partners)), best_row].tolist(), best_row.tolist(), range(len(partners)),
            strict=True,
        ))
        options: list[tuple[float, int, list[tuple[int, int]], list[tuple[int, int]]]] = []
        start = 0
        for siblings, _ in levels:
            stop = start + len(siblings)
            # The two cheapest (cost, row, column) of the level, ties to the first row,
            # then the first column (the order a stable sort of the matrix gives).
            first = min(best[start:stop])
            if math.isfinite(first[0]):
                price, row, col = first
                column = cost[col].copy()
                column[row] = np.inf
                again = int(column.argmin())
                second = min([b for b in best[start:stop] if b[2] != col] + [(float(column[again]), again, col)])
                for price, row, col in (first, second) if math.isfinite(second[0]) else (first,):
                    options.append((price, partners[col], [(row, up)], [(row, down)]))
            else:
                for col in range(start, stop):
                    w = partners[col]
                    donors = self._greedy(row_cost[col], values[u, :n].copy(), up, r)
                    takers = self._greedy(row_cost[col], values[w, :n].copy(), down, r)
                    if donors and takers:
                        rows = {p for p, _ in donors} | {q for q, _ in takers}
                        options.append((float(fixed[col] + row_cost[col, list(rows)].sum()), w, donors, takers))
            start = stop
        return options

    # --- integer program -----------------------------------------------------------------------------

    def _partners(self, t: int, own: int | None, node: int, k: int | None) -> list[int]:
        """Rows of table ``t`` for an integer program: the cell's own row, rows with the most
        trajectories in the cell's column (capacity) and the smallest rows (cheap to hide)."""
        table = self.tables[t]
        n = table.n_rows
        column = self.values[t][:n, node]
        totals = self.values[t][:n, 0]
        rows: list[int] = [] if own is None else [own]
        if k is None:
            return rows + [i for i in range(n) if i != own]
        half = (k + 1) // 2
        for order in (np.argsort(-column, kind="stable"), np.argsort(totals, kind="stable")):
            picked = 0
            for i in (int(i) for i in order):
                if picked >= half:
                    break
                if totals[i] > 0 and i not in rows:
                    rows.append(i)
                    picked += 1
        return rows

    def _neighbourhood(self, key: CellKey, stage: int) -> dict[int, list[int]]:
        """Rows per table an integer program may change, widening by stage.

        Stage 0: the cell's own gemeente/provider rows and a few partner rows in
        the gemeente and provider tables (a PC4 cell: its own PC4 table); stage 1
        adds the PC4 tables of the gemeenten taken; stage 2 takes more partners.
        """
        geo, care, _, prov = key
        b, c, d = self.by_kind["B"], self.by_kind["C"], self.by_kind["D"]
        k = self.PARTNERS * (4 if stage >= 2 else 1)
        care_node = self.tables[b].tree.paths.index(care)
        own_g = self.g_row.get(geo[0]) if geo else None
        rows: dict[int, list[int]] = {}
        if len(geo) == 2 and stage == 0:
            a_t = self.a_table[geo[0]]
            rows[a_t] = list(range(self.tables[a_t].n_rows))
            return rows
        gemeenten = self._partners(b, own_g, care_node, k)
        rows[b] = gemeenten
        rows[c] = gemeenten
        rows[d] = self._partners(d, self.v_row.get(prov[0]) if prov else None, care_node, k)
        if stage >= 1 or len(geo) == 2:
            for i in gemeenten:
                pc4_table = self.a_table.get(self.tables[b].rows[i][0])
                if pc4_table is not None:
                    rows[pc4_table] = list(range(self.tables[pc4_table].n_rows))
        return rows

    def _by_program(self, key: CellKey, up: int, down: int) -> set[CellKey]:
        for stage in range(3):
            touched = self._solve(key, up, down, self._neighbourhood(key, stage))
            if touched is not None:
                return touched
        log.warning("no certificate for a sensitive cell; hiding every third-party cell",
                    extra={"cell": str(key)})
        return set(self.where)

    def _solve(self, key: CellKey, up: int, down: int,
               rows: dict[int, list[int]]) -> set[CellKey] | None:
        """Cheapest pair of certificates (up, down) changing only ``rows``.

        Columns: the up change and the down change of every finest cell in ``rows``,
        and per touched cell a 0..1 indicator that it changes (cost: its trajectories).
        Constraints: the cell itself moves by ``up`` / ``-down``; a cell held by
        several tables changes alike in all (zero where its row is not in ``rows``);
        a published cell changes only if its indicator is on.
        """
        tables = list(rows)
        cell_ids: list[tuple[int, int, int]] = []
        var_ids: list[tuple[int, int, int]] = []
        expr_parts: list[tuple[int, int, sparse.coo_matrix]] = []
        have_parts: list[np.ndarray] = []
        offset = n_expr = 0
        for t in tables:
            table, rs = self.tables[t], rows[t]
            sums = self._sums(t)
            n_nodes, n_leaves = sums.shape
            # Per changed row its nodes as sums of its leaves, then the total row as the
            # sum over the rows: the block [I (x) S ; 1 (x) S], written out as triplets.
            expr_parts.append((n_expr, offset, _row_blocks(sums, len(rs))))
            for r in [*rs, table.n_rows]:
                cell_ids += [(t, r, node) for node in range(n_nodes)]
            var_ids += [(t, r, pos) for r in rs for pos in range(n_leaves)]
            have_parts.append(table.x[rs].ravel())
            offset += len(rs) * n_leaves
            n_expr += (len(rs) + 1) * n_nodes
        nv = offset
        if nv == 0:
            return None
        expr = _assemble(expr_parts, (n_expr + 1, nv))
        zero_row = n_expr
        position = {cid: i for i, cid in enumerate(cell_ids)}
        keys: dict[CellKey, None] = {}
        for (t, r, node) in cell_ids:
            keys.setdefault(self.keys[t][r][node], None)
        if key not in keys:
            return None
        same_a: list[int] = []
        same_b: list[int] = []
        published: list[tuple[int, int]] = []  # (expression row, cell value)
        target = -1
        for k in keys:
            occs = [position.get((o.table, o.row, o.node), zero_row) for o in self.where[k]]
            first = next(i for i in occs if i != zero_row)
            for other in occs:
                if other != first:
                    same_a.append(other)
                    same_b.append(first)
            if k == key:
                target = first
            elif not self.hidden(k):
                published.append((first, self.value(k)))
        consistency = (expr[same_a] - expr[same_b]).tocoo()
        pub = expr[[i for i, _ in published]].tocoo()
        n_pub = len(published)
        n_cons = consistency.shape[0]
        bound = float(max(up, down))
        big = sparse.diags(np.asarray(pub.sum(axis=1)).ravel() * bound + 1.0).tocoo()
        target_row = expr[[target]].tocoo()
        # Columns: up changes (nv), down changes (nv), indicators (n_pub). Rows: consistency
        # of the up and the down change, the target moving up and down, then each
        # published cell's change held to zero unless its indicator is on (up, then down).
        r_pub = 2 * n_cons + 2
        matrix = _assemble([
            (0, 0, consistency), (n_cons, nv, consistency),
            (2 * n_cons, 0, target_row), (2 * n_cons + 1, nv, target_row),
            (r_pub, 0, pub), (r_pub, 2 * nv, -big),
            (r_pub + n_pub, 0, pub), (r_pub + n_pub, 2 * nv, big),
            (r_pub + 2 * n_pub, nv, pub), (r_pub + 2 * n_pub, 2 * nv, -big),
            (r_pub + 3 * n_pub, nv, pub), (r_pub + 3 * n_pub, 2 * nv, big),
        ], (r_pub + 4 * n_pub, 2 * nv + n_pub))
        lo = np.concatenate([np.zeros(2 * n_cons), [up, -down],
                             np.full(n_pub, -np.inf), np.zeros(n_pub), np.full(n_pub, -np.inf), np.zeros(n_pub)])
        hi = np.concatenate([np.zeros(2 * n_cons), [up, -down],
                             np.zeros(n_pub), np.full(n_pub, np.inf), np.zeros(n_pub), np.full(n_pub, np.inf)])
        have = np.concatenate(have_parts).astype(float)
        x_low = np.concatenate([-np.minimum(have, bound), -np.minimum(have, bound), np.zeros(n_pub)])
        x_high = np.concatenate([np.full(2 * nv, bound), np.ones(n_pub)])
        cost = np.concatenate([np.zeros(2 * nv), [v + 1.0 for _, v in published]])
        constraint = optimize.LinearConstraint(matrix, lo, hi)
        box = optimize.Bounds(x_low, x_high)
        # The linear relaxation first: on these network-like tables its optimum is usually
        # whole already, and it is many times faster. Only a fractional answer pays for the
        # integer program (a certificate must be whole numbers to hold against a reader
        # who uses integrality).
        result = optimize.milp(cost, constraints=constraint, bounds=box,
                               integrality=np.zeros(len(cost)), options={"time_limit": 20.0})
        if result.x is None:
            return None
        if np.abs(result.x[: 2 * nv] - np.rint(result.x[: 2 * nv])).max(initial=0.0) > 1e-6:
            integer = np.concatenate([np.ones(2 * nv), np.ones(n_pub)])
            result = optimize.milp(cost, constraints=constraint, bounds=box,
                                   integrality=integer, options={"time_limit": 20.0})
            if result.x is None:
                return None
        y = np.rint(result.x[: 2 * nv]).astype(np.int64)
        cert_up: Certificate = {}
        cert_down: Certificate = {}
        for j in np.nonzero(y[:nv])[0]:
            t, r, pos = var_ids[j]
            cert_up.setdefault(t, {})[(r, pos)] = int(y[j])
        for j in np.nonzero(y[nv:])[0]:
            t, r, pos = var_ids[j]
            cert_down.setdefault(t, {})[(r, pos)] = int(y[nv + j])
        touched_up = self.verify(cert_up)
        touched_down = self.verify(cert_down)
        if touched_up is None or touched_down is None or key not in touched_up or key not in touched_down:
            return None
        return touched_up | touched_down


def _row_blocks(sums: sparse.coo_matrix, m: int) -> sparse.coo_matrix:
    """``[I_m (x) S ; 1_m (x) S]``: ``m`` rows' nodes from their leaves, then their total row."""
    n_nodes, n_leaves = sums.shape
    block = np.repeat(np.arange(m), sums.nnz)
    rows = np.tile(sums.row, m)
    cols = np.tile(sums.col, m) + block * n_leaves
    data = np.tile(sums.data, m)
    return sparse.coo_matrix(
        (np.concatenate([data, data]), (np.concatenate([rows + block * n_nodes, rows + m * n_nodes]),
                                        np.concatenate([cols, cols]))),
        shape=((m + 1) * n_nodes, m * n_leaves),
    )


def _assemble(parts: list[tuple[int, int, sparse.coo_matrix]], shape: tuple[int, int]) -> sparse.csr_matrix:
    """One CSR matrix from blocks placed at (row, column) offsets (a sparse ``bmat``
    without its per-block shape checks, which cost more than the solve on small tables)."""
    rows = [np.empty(0, dtype=np.int64)] + [p.row.astype(np.int64) + r for r, _, p in parts]
    cols = [np.empty(0, dtype=np.int64)] + [p.col.astype(np.int64) + c for _, c, p in parts]
    data = [np.empty(0)] + [p.data.astype(float) for _, _, p in parts]
    return sparse.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=shape)


def _built(cert_up: Certificate, cert_down: Certificate) -> tuple[Certificate, Certificate]:
    """A pair of certificates a search had to build already (to know what it costs)."""
    return cert_up, cert_down


# --- values over few responses -------------------------------------------------------------------------


def withhold_values(
    tables: list[HTable], counts_of: dict[CellKey, np.ndarray], suppressed: set[CellKey],
    protection: Protection, already: dict[CellKey, int] | None = None,
) -> dict[CellKey, int]:
    """Bit masks (``FAMILY_BIT``) of the values to withhold, per cell key.

    A value over 1 to threshold-1 responses is withheld. So is, in every row or
    column sum it takes part in, a second value, where it would otherwise be
    the only unknown term of the sum and could be had by subtraction. Values of
    suppressed cells are unknown anyway and count as withheld.
    """
    already = already or {}
    stacks = _stacks(tables, counts_of, suppressed, already)
    shared = _shared_cells(stacks)
    result: dict[CellKey, int] = {}
    for family in VALUE_FAMILIES:
        bit = FAMILY_BIT[family.name]
        resp = [responses(stack.counts, family) for stack in stacks]
        applicable = [_applicable(stack, family) for stack in stacks]
        unknown = [
            ((r > 0) & (r < protection.threshold)) | stack.hidden | ((stack.bits & bit) != 0)
            for r, stack in zip(resp, stacks, strict=True)
        ]
        changed = True
        while changed:
            changed = False
            added: set[CellKey] = set()
            for i, stack in enumerate(stacks):
                added |= _close_sums(stack, unknown[i], resp[i], applicable[i])
            # A cell held by one table only was marked where it was added.
            for key in added & shared.keys():
                for i, m, row, node in shared[key]:
                    if not unknown[i][m, row, node]:
                        unknown[i][m, row, node] = True
                        changed = True
        for i, stack in enumerate(stacks):
            shown_hidden = unknown[i] & applicable[i] & (resp[i] > 0) & ~stack.hidden
            for key in map(stack.flat_keys.__getitem__, np.flatnonzero(shown_hidden).tolist()):
                result[key] = result.get(key, 0) | bit
    return result


@dataclass
class _Stack:
    """Tables of one kind (one column tree), stacked into arrays of members x rows x
    columns, the total row last and shorter members padded with empty rows.

    One NumPy operation then covers every member: the 342 PC4 tables of three
    columns each cost about as much as one table. An empty padding row has no
    responses and is never unknown, so it takes part in no sum's decision.
    """

    members: list[int]
    tree: ColumnTree
    col_dim: int
    n_rows: list[int]
    #: Rows per member before the total row (the longest member's row count).
    depth: int
    keys: list[list[list[CellKey]]]
    counts: np.ndarray
    hidden: np.ndarray
    bits: np.ndarray
    #: The key at each stacked position, in C order (padding: the member's total row
    #: key, never used: a padding cell is never withheld).
    flat_keys: list[CellKey] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.flat_keys:
            for grid, n in zip(self.keys, self.n_rows, strict=True):
                for row in [*grid[:n], *[grid[n]] * (self.depth - n), grid[n]]:
                    self.flat_keys += row

    def key(self, m: int, row: int, node: int) -> CellKey:
        """The key at a stacked position (``row == depth``: the member's total row)."""
        return self.keys[m][self.n_rows[m] if row == self.depth else row][node]

    def row(self, m: int, r: int) -> int:
        """The stacked row of a member's row ``r`` (``n_rows``: its total row)."""
        return self.depth if r == self.n_rows[m] else r


def _stacks(tables: list[HTable], counts_of: dict[CellKey, np.ndarray], suppressed: set[CellKey],
            already: dict[CellKey, int]) -> list[_Stack]:
    groups: dict[str, list[int]] = {}
    for t, table in enumerate(tables):
        groups.setdefault(table.name.split(":", 1)[0], []).append(t)
    zero = np.zeros(len(LAYOUT), dtype=np.int64)
    stacks: list[_Stack] = []
    for members in groups.values():
        first = tables[members[0]]
        n_rows = [tables[t].n_rows for t in members]
        depth = max(n_rows)
        width = len(first.tree.paths)
        counts = np.zeros((len(members), depth + 1, width, len(LAYOUT)), dtype=np.int64)
        hidden = np.zeros((len(members), depth + 1, width), dtype=bool)
        bits = np.zeros((len(members), depth + 1, width), dtype=np.int64)
        keys: list[list[list[CellKey]]] = []
        for m, t in enumerate(members):
            table = tables[t]
            assert table.tree is first.tree or table.tree.paths == first.tree.paths
            grid = table.key_grid()
            flat = [key for row in grid for key in row]
            n = n_rows[m]
            rows = [*range(n), depth]
            counts[m, rows] = np.array([counts_of.get(key, zero) for key in flat], dtype=np.int64).reshape(
                n + 1, width, len(LAYOUT))
            hidden[m, rows] = np.array([key in suppressed for key in flat], dtype=bool).reshape(n + 1, width)
            bits[m, rows] = np.array([already.get(key, 0) for key in flat], dtype=np.int64).reshape(n + 1, width)
            keys.append(grid)
        stacks.append(_Stack(members, first.tree, first.col_dim, n_rows, depth, keys, counts, hidden, bits))
    return stacks


def _shared_cells(stacks: list[_Stack]) -> dict[CellKey, list[tuple[int, int, int, int]]]:
    """Cells held by more than one table, and where: (stack, member, stacked row, node)."""
    seen = Counter(key for stack in stacks for grid in stack.keys for row in grid for key in row)
    many = {key for key, count in seen.items() if count > 1}
    shared: dict[CellKey, list[tuple[int, int, int, int]]] = {}
    for i, stack in enumerate(stacks):
        for m, grid in enumerate(stack.keys):
            for r, row in enumerate(grid):
                if many.isdisjoint(row):
                    continue  # most rows: a provider's or a PC4's own cells
                for node, key in enumerate(row):
                    if key in many:
                        shared.setdefault(key, []).append((i, m, stack.row(m, r), node))
    return shared


def _applicable(stack: _Stack, family: ValueFamily) -> np.ndarray:
    """Columns that carry the family's figure (3.3 only for individual provisions)."""
    mask = np.ones(len(stack.tree.paths), dtype=bool)
    if family.individual_only:
        from services.aggregate.cells import CARE

        for node, path in enumerate(stack.tree.paths):
            if stack.col_dim != CARE or not path or path[0] != "false":
                mask[node] = False
    return mask


def _close_sums(stack: _Stack, unknown: np.ndarray, resp: np.ndarray, applicable: np.ndarray) -> set[CellKey]:
    """Withhold a second value wherever a sum has exactly one unknown, non-empty term.

    Sums run along the column tree in every row (parent node = its children) and
    down every column (total row = the rows), in every member of the stack.
    """
    added: set[CellKey] = set()
    tree = stack.tree
    for a in range(len(tree.paths)):
        children = np.nonzero(tree.parent == a)[0]
        if children.size:
            cols = np.concatenate([[a], children])
            if not applicable[cols].all():
                continue
            for m, r in _single_unknown(unknown[..., cols], resp[..., cols]):
                pick = _second(unknown[m, r, cols], resp[m, r, cols])
                if pick is not None:
                    unknown[m, r, cols[pick]] = True
                    added.add(stack.key(m, r, int(cols[pick])))
    order = np.concatenate([[stack.depth], np.arange(stack.depth)])
    by_column = np.swapaxes(unknown[:, order], 1, 2)
    for m, node in _single_unknown(by_column, np.swapaxes(resp[:, order], 1, 2)):
        if not applicable[node]:
            continue
        pick = _second(unknown[m, order, node], resp[m, order, node])
        if pick is not None:
            row = int(order[pick])
            unknown[m, row, node] = True
            added.add(stack.key(m, row, node))
    return added


def _single_unknown(unknown: np.ndarray, resp: np.ndarray) -> list[tuple[int, int]]:
    """Sums (along the last axis of members x sums x terms: term 0 the total, the rest
    its terms) with exactly one unknown member, which has responses: [(member, sum)]."""
    single = (unknown.sum(axis=-1) == 1) & (unknown & (resp > 0)).any(axis=-1)
    members, sums = np.nonzero(single)
    return list(zip(members.tolist(), sums.tolist(), strict=True))


def _second(unknown: np.ndarray, resp: np.ndarray) -> int | None:
    """Which member of a sum (index 0: the total) to withhold as well: the smallest shown
    term with responses, else the total; None if nothing shown has responses."""
    terms = [i for i in range(1, len(resp)) if not unknown[i] and resp[i] > 0]
    if terms:
        return min(terms, key=lambda i: int(resp[i]))
    if not unknown[0] and resp[0] > 0:
        return 0
    return None
