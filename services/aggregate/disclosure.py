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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from scipy import optimize, sparse

from services.aggregate.cells import CellKey
from services.aggregate.indicators import IDX, INFORMANTS, LAYOUT, PROBLEM_CHANGE
from services.aggregate.tables import HTable, Occurrence, occurrences

log = logging.getLogger("ttp.aggregate.disclosure")

#: table index -> {(row, leaf position): change}
Certificate = dict[int, dict[tuple[int, int], int]]


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


class Suppressor:
    """Primary and certificate-based secondary suppression over linked tables."""

    #: Partner rows tried per integer program (then everything, if that fails).
    PARTNERS: Final = 4

    def __init__(self, tables: list[HTable], protection: Protection,
                 already: Iterable[CellKey] = ()) -> None:
        self.tables = tables
        self.p = protection
        self.where = occurrences(tables)
        self.values = [t.values() for t in tables]
        self.supp = [v < protection.threshold for v in self.values]
        #: What hiding each cell costs: its trajectories plus one (zero once hidden).
        self.pub = [np.where(h, 0.0, v + 1.0) for h, v in zip(self.supp, self.values, strict=True)]
        self.children = [
            [np.nonzero(t.tree.parent == a)[0] for a in range(len(t.tree.paths))] for t in tables
        ]
        self.chain_up: list[list[list[int]]] = []
        for t in tables:
            chains = []
            for node in range(len(t.tree.paths)):
                chain = [node]
                while t.tree.parent[chain[-1]] >= 0:
                    chain.append(int(t.tree.parent[chain[-1]]))
                chains.append(chain)
            self.chain_up.append(chains)
        self.leaf_pos = [{leaf: pos for pos, leaf in enumerate(t.tree.leaves)} for t in tables]
        #: leaf node -> the other leaves under the same access type (for moves that keep
        #: the gemeente's access-type totals, which the PC4 tables share).
        self.leaves_in_access: list[dict[int, list[int]]] = []
        for t in tables:
            same: dict[int, list[int]] = {}
            for leaf in t.tree.leaves:
                path = t.tree.paths[leaf]
                same[leaf] = [o for o in t.tree.leaves if o != leaf and t.tree.paths[o][:1] == path[:1]]
            self.leaves_in_access.append(same)
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
        self.keys: list[list[list[CellKey]]] = [
            [[t.key(r, node) for node in range(len(t.tree.paths))] for r in range(t.n_rows + 1)]
            for t in self.tables
        ]

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
        return int(self.values[occ.table][occ.row, occ.node])


    # --- certificates --------------------------------------------------------------------------------

    def changes(self, cert: Certificate) -> dict[CellKey, dict[int, int]] | None:
        """Per cell key, its change in each table; None if a finest cell would go negative."""
        out: dict[CellKey, dict[int, int]] = {}
        for t, deltas in cert.items():
            table = self.tables[t]
            per_cell: dict[tuple[int, int], int] = {}
            for (r, pos), d in deltas.items():
                if d == 0:
                    continue
                if table.x[r, pos] + d < 0:
                    return None
                for node in table.tree.chains[pos]:
                    for row in (r, table.n_rows):
                        per_cell[(row, node)] = per_cell.get((row, node), 0) + d
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
        for key, per_table in changed.items():
            deltas = {per_table.get(occ.table, 0) for occ in self.where[key]}
            if len(deltas) != 1:
                return None
        return set(changed)

    # --- the run -------------------------------------------------------------------------------------

    def run(self) -> Outcome:
        sensitive: list[CellKey] = []
        for key, occs in self.where.items():
            occ = occs[0]
            if self.p.sensitive(int(self.values[occ.table][occ.row, occ.node])):
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
        for t, table in enumerate(self.tables):
            for r, node in zip(*np.nonzero(self.supp[t]), strict=True):
                self.outcome.suppressed.add(table.key(int(r), int(node)))
        return self.outcome

    def _protect(self, key: CellKey) -> None:
        v = self.value(key)
        up, down = self.p.up(v), self.p.down(v)
        candidates: list[tuple[float, Certificate, Certificate]] = []
        for occ in self.where[key]:
            candidates += self._fast_candidates(occ, up, down)
        if key[0] and not key[3]:
            candidates += self._gemeente_transfer(key, up, down)
        candidates.sort(key=lambda c: c[0])
        for _, cert_up, cert_down in candidates:
            changed_up, changed_down = self.changes(cert_up), self.changes(cert_down)
            if changed_up is None or changed_down is None:
                continue
            if self._consistent(changed_up) and self._consistent(changed_down):
                self.outcome.by_rectangle += 1
                self._accept(changed_up, changed_down)
                return
        self.outcome.by_program += 1
        for k in self._by_program(key, up, down):
            self._hide(k)

    def _consistent(self, changed: dict[CellKey, dict[int, int]]) -> bool:
        """Every table holding a changed cell changes it alike."""
        return all(
            len({per_table.get(occ.table, 0) for occ in self.where[key]}) == 1
            for key, per_table in changed.items()
        )

    def _accept(self, changed_up: dict[CellKey, dict[int, int]],
                changed_down: dict[CellKey, dict[int, int]]) -> None:
        """Hide what the pair of certificates touches, and note which other sensitive
        cells they happen to protect as well (a corner of the same rectangle)."""
        for changed in (changed_up, changed_down):
            for key, per_table in changed.items():
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

    def _fast_candidates(self, occ: Occurrence, up: int, down: int) -> list[tuple[float, Certificate, Certificate]]:
        """Certificate pairs (up, down) with their approximate cost, not yet verified."""
        t, r, u = occ.table, occ.row, occ.node
        if r == self.tables[t].n_rows:
            return []  # a national or gemeente-wide margin: shared, needs the integer program
        candidates: list[tuple[float, Certificate, Certificate]] = []
        if self._allows(t, True, 0):
            candidates += self._moves(t, r, u, up, down)
        if u != 0:
            candidates += self._rectangles(t, r, u, up, down)
        if self.kind[t] == "B" and u in self.leaf_pos[t]:
            candidates += self._across_providers(t, r, u, up, down)
        return candidates

    def _across_providers(self, t: int, r: int, u: int, up: int, down: int
                          ) -> list[tuple[float, Certificate, Certificate]]:
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
        return [(approx, cert_up, cert_down)]

    def _gemeente_transfer(self, key: CellKey, up: int, down: int) -> list[tuple[float, Certificate, Certificate]]:
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
        order = [int(i) for i in np.lexsort((-totals, cost)) if np.isfinite(cost[i]) and totals[i] > 0]
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
        return [(float(cost[used].sum()) + 1e6, cert_up, cert_down)]

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
        x_a = self.tables[src_a].x
        moved = 0
        band_room = int(sum(self.tables[c].x[src, p] + c_deltas.get((src, p), 0) for p in c_leaves))
        for access_pos, access in enumerate(("false", "true")):
            want = min(amount, band_room) - moved
            if want <= 0:
                break
            leaves = [p for p in b_leaves if g_table.tree.paths[g_table.tree.leaves[p]][0] == access]
            in_b = sum(int(g_table.x[src, p]) + b_deltas.get((src, p), 0) for p in leaves)
            have = {p: int(x_a[p, access_pos]) + a_deltas.get((p, access_pos), 0) for p in rows_from}
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

    def _take(self, table: HTable, row: int, positions: list[int], amount: int,
              already: dict[tuple[int, int], int]) -> list[tuple[int, int]]:
        """Leaves of ``row`` to take ``amount`` from, largest first, minding what the
        certificate already took: [(leaf position, amount)], or [] if there is not enough."""
        have = {pos: int(table.x[row, pos]) + already.get((row, pos), 0) for pos in positions}
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
        taken = self._take(self.tables[t], src, positions, amount, deltas)
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

    def _moves(self, t: int, r: int, u: int, up: int, down: int) -> list[tuple[float, Certificate, Certificate]]:
        """Move trajectories of column ``u`` between the cell's row and partner rows.

        Only where rows may change totals (PC4 rows, provider rows): the partner rows'
        totals change too and are hidden, which is free where they already are.
        """
        table = self.tables[t]
        tree = table.tree
        n = table.n_rows
        values = self.values[t]
        pub = self.pub[t]
        row_cost = pub[:n, self.chain_up[t][u]].sum(axis=1)
        capacity = values[:n, u]
        # One partner giving everything, else several, cheapest first.
        single = np.where(capacity >= up, row_cost, np.inf)
        single[r] = np.inf
        best = int(np.argmin(single))
        donors = [(best, up)] if np.isfinite(single[best]) else self._greedy(row_cost, capacity.copy(), up, r)
        others = row_cost.copy()
        others[r] = np.inf
        receiver = int(np.argmin(others))
        if not donors or not np.isfinite(others[receiver]):
            return []
        approx = float(row_cost[list({p for p, _ in donors} | {receiver})].sum())
        below = tree.below[u]
        cert_up: Certificate = {}
        for p, k in donors:
            if not self._transfer(t, p, r, below, k, cert_up):
                return []
        cert_down: Certificate = {}
        if not self._transfer(t, r, receiver, below, down, cert_down):
            return []
        return [(approx, cert_up, cert_down)]

    def _rectangles(self, t: int, r: int, u: int, up: int, down: int) -> list[tuple[float, Certificate, Certificate]]:
        """An inner cell: rectangles with a partner column branch and partner rows.

        Up: partner rows give ``up`` under the cell's column to the cell's row, which
        gives as much back to them under the partner column; down the other way round.
        Row and column sums stay as they were; only the corners (and the cells between a
        corner and the two columns' common parent) change.
        """
        tree = self.tables[t].tree
        values = self.values[t]
        options: list[tuple[float, int, list[tuple[int, int]], list[tuple[int, int]]]] = []
        a = int(tree.parent[u])
        u_child = u
        between: list[int] = []  # nodes above u up to u_child: they change in every row used
        while a >= 0:
            if self._allows(t, False, int(tree.depth[a])):
                siblings = self.children[t][a]
                siblings = siblings[(siblings != u_child) & (values[r, siblings] >= up)]
                if siblings.size:
                    options += self._rectangle_options(t, r, u, siblings, between, up, down)
            between.append(a)
            u_child = a
            a = int(tree.parent[a])
        options.sort(key=lambda o: o[0])
        out: list[tuple[float, Certificate, Certificate]] = []
        for approx, w, donors, takers in options[:3]:
            under_u, under_w = tree.below[u], tree.below[w]
            cert_up: Certificate = {}
            cert_down: Certificate = {}
            ok = all(
                self._transfer(t, p, r, under_u, k, cert_up) and self._transfer(t, r, p, under_w, k, cert_up)
                for p, k in donors
            ) and all(
                self._transfer(t, r, q, under_u, k, cert_down) and self._transfer(t, q, r, under_w, k, cert_down)
                for q, k in takers
            )
            if ok:
                out.append((approx, cert_up, cert_down))
        return out

    def _rectangle_options(self, t: int, r: int, u: int, siblings: np.ndarray, between: list[int],
                           up: int, down: int) -> list[tuple[float, int, list[tuple[int, int]], list[tuple[int, int]]]]:
        """Partner rows for each partner column: one row doing both moves if any (all
        columns at once), else several rows per move."""
        n = self.tables[t].n_rows
        values = self.values[t]
        pub = self.pub[t]
        shared = pub[:n, u] + (pub[:n, between].sum(axis=1) if between else 0.0)
        fixed = pub[r, siblings] + (pub[r, between].sum() if between else 0.0)
        row_cost = shared[:, None] + pub[:n, siblings]  # rows x partner columns
        able = (values[:n, u] >= up)[:, None] & (values[:n, siblings] >= down)
        able[r] = False
        cost = np.where(able, row_cost + fixed[None, :], np.inf)
        options: list[tuple[float, int, list[tuple[int, int]], list[tuple[int, int]]]] = []
        if np.isfinite(cost).any():
            for flat in np.argsort(cost, axis=None, kind="stable")[:2]:
                row, col = divmod(int(flat), len(siblings))
                if np.isfinite(cost[row, col]):
                    options.append((float(cost[row, col]), int(siblings[col]), [(row, up)], [(row, down)]))
            return options
        for col, w in enumerate(siblings):
            donors = self._greedy(row_cost[:, col], values[:n, u].copy(), up, r)
            takers = self._greedy(row_cost[:, col], values[:n, w].copy(), down, r)
            if donors and takers:
                rows = {p for p, _ in donors} | {q for q, _ in takers}
                options.append((float(fixed[col] + row_cost[list(rows), col].sum()), int(w), donors, takers))
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
        blocks: list[sparse.csr_matrix] = []
        cell_ids: list[tuple[int, int, int]] = []
        var_ids: list[tuple[int, int, int]] = []
        offset = 0
        for t in tables:
            table, rs = self.tables[t], rows[t]
            sums = sparse.csr_matrix(table.tree.sums)
            n_leaves = sums.shape[1]
            inner = sparse.kron(sparse.identity(len(rs), format="csr"), sums, format="csr")
            total = sparse.kron(np.ones((1, len(rs))), sums, format="csr")
            block = sparse.vstack([inner, total], format="csr")
            blocks.append(sparse.hstack([
                sparse.csr_matrix((block.shape[0], offset)), block,
            ], format="csr"))
            for r in [*rs, table.n_rows]:
                cell_ids += [(t, r, node) for node in range(len(table.tree.paths))]
            var_ids += [(t, r, pos) for r in rs for pos in range(n_leaves)]
            offset += len(rs) * n_leaves
        nv = offset
        if nv == 0:
            return None
        expr = sparse.vstack(
            [sparse.hstack([b, sparse.csr_matrix((b.shape[0], nv - b.shape[1]))], format="csr") for b in blocks]
            + [sparse.csr_matrix((1, nv))], format="csr",
        )
        zero_row = expr.shape[0] - 1
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
        consistency = expr[same_a] - expr[same_b]
        pub_rows = [i for i, _ in published]
        pub = expr[pub_rows]
        n_pub = len(published)
        bound = float(max(up, down))
        big = sparse.diags(np.asarray(pub.sum(axis=1)).ravel() * bound + 1.0)
        z = sparse.identity(n_pub, format="csr")
        empty_c = sparse.csr_matrix((consistency.shape[0], nv))
        empty_p = sparse.csr_matrix((n_pub, nv))
        target_row = expr[[target]]
        matrix = sparse.vstack([
            sparse.hstack([consistency, empty_c, sparse.csr_matrix((consistency.shape[0], n_pub))]),
            sparse.hstack([empty_c, consistency, sparse.csr_matrix((consistency.shape[0], n_pub))]),
            sparse.hstack([target_row, sparse.csr_matrix((1, nv)), sparse.csr_matrix((1, n_pub))]),
            sparse.hstack([sparse.csr_matrix((1, nv)), target_row, sparse.csr_matrix((1, n_pub))]),
            sparse.hstack([pub, empty_p, -big @ z]),
            sparse.hstack([pub, empty_p, big @ z]),
            sparse.hstack([empty_p, pub, -big @ z]),
            sparse.hstack([empty_p, pub, big @ z]),
        ], format="csr")
        n_cons = consistency.shape[0]
        lo = np.concatenate([np.zeros(2 * n_cons), [up, -down],
                             np.full(n_pub, -np.inf), np.zeros(n_pub), np.full(n_pub, -np.inf), np.zeros(n_pub)])
        hi = np.concatenate([np.zeros(2 * n_cons), [up, -down],
                             np.zeros(n_pub), np.full(n_pub, np.inf), np.zeros(n_pub), np.full(n_pub, np.inf)])
        have = np.array([self.tables[t].x[r, pos] for t, r, pos in var_ids], dtype=float)
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
    where = occurrences(tables)
    zero = np.zeros(len(LAYOUT), dtype=np.int64)
    already = already or {}
    counts_by_table: list[np.ndarray] = []
    hidden_by_table: list[np.ndarray] = []
    bits_by_table: list[np.ndarray] = []
    keys_by_table: list[list[list[CellKey]]] = []
    for table in tables:
        shape = (table.n_rows + 1, len(table.tree.paths))
        counts = np.zeros((*shape, len(LAYOUT)), dtype=np.int64)
        hidden = np.zeros(shape, dtype=bool)
        bits = np.zeros(shape, dtype=np.int64)
        keys = [[table.key(r, node) for node in range(shape[1])] for r in range(shape[0])]
        for r, row in enumerate(keys):
            for node, key in enumerate(row):
                counts[r, node] = counts_of.get(key, zero)
                hidden[r, node] = key in suppressed
                bits[r, node] = already.get(key, 0)
        counts_by_table.append(counts)
        hidden_by_table.append(hidden)
        bits_by_table.append(bits)
        keys_by_table.append(keys)
    result: dict[CellKey, int] = {}
    for family in VALUE_FAMILIES:
        bit = FAMILY_BIT[family.name]
        resp = [responses(c, family) for c in counts_by_table]
        applicable = [_applicable(t, family) for t in tables]
        unknown = [
            ((r > 0) & (r < protection.threshold)) | h | ((b & bit) != 0)
            for r, h, b in zip(resp, hidden_by_table, bits_by_table, strict=True)
        ]
        changed = True
        while changed:
            changed = False
            added: set[CellKey] = set()
            for t, table in enumerate(tables):
                added |= _close_sums(table, unknown[t], resp[t], applicable[t], keys_by_table[t])
            for key in added:
                for occ in where[key]:
                    if not unknown[occ.table][occ.row, occ.node]:
                        unknown[occ.table][occ.row, occ.node] = True
                        changed = True
        for t in range(len(tables)):
            shown_hidden = unknown[t] & applicable[t] & (resp[t] > 0) & ~hidden_by_table[t]
            for r, node in zip(*np.nonzero(shown_hidden), strict=True):
                key = keys_by_table[t][int(r)][int(node)]
                result[key] = result.get(key, 0) | bit
    return result


def _applicable(table: HTable, family: ValueFamily) -> np.ndarray:
    """Cells that carry the family's figure (3.3 only for individual provisions)."""
    mask = np.ones((table.n_rows + 1, len(table.tree.paths)), dtype=bool)
    if family.individual_only:
        from services.aggregate.cells import CARE

        for node, path in enumerate(table.tree.paths):
            if table.col_dim != CARE or not path or path[0] != "false":
                mask[:, node] = False
    return mask


def _close_sums(table: HTable, unknown: np.ndarray, resp: np.ndarray, applicable: np.ndarray,
                keys: list[list[CellKey]]) -> set[CellKey]:
    """Withhold a second value wherever a sum has exactly one unknown, non-empty term.

    Sums run along the column tree in every row (parent node = its children) and
    down every column (total row = the rows).
    """
    added: set[CellKey] = set()
    tree = table.tree
    n = table.n_rows
    for a in range(len(tree.paths)):
        children = np.nonzero(tree.parent == a)[0]
        if children.size:
            cols = np.concatenate([[a], children])
            for r in _single_unknown(unknown[:, cols], resp[:, cols], applicable[:, cols]):
                pick = _second(unknown[r, cols], resp[r, cols])
                if pick is not None:
                    unknown[r, cols[pick]] = True
                    added.add(keys[r][int(cols[pick])])
    order = np.concatenate([[n], np.arange(n)])
    for node in _single_unknown(unknown[order].T, resp[order].T, applicable[order].T):
        pick = _second(unknown[order, node], resp[order, node])
        if pick is not None:
            row = int(order[pick])
            unknown[row, node] = True
            added.add(keys[row][node])
    return added


def _single_unknown(unknown: np.ndarray, resp: np.ndarray, applicable: np.ndarray) -> list[int]:
    """Sums (rows of these matrices: column 0 the total, the rest its terms) with exactly
    one unknown member, which has responses."""
    single = (unknown.sum(axis=1) == 1) & (unknown & (resp > 0)).any(axis=1) & applicable.all(axis=1)
    return [int(i) for i in np.nonzero(single)[0]]


def _second(unknown: np.ndarray, resp: np.ndarray) -> int | None:
    """Which member of a sum (index 0: the total) to withhold as well: the smallest shown
    term with responses, else the total; None if nothing shown has responses."""
    terms = [i for i in range(1, len(resp)) if not unknown[i] and resp[i] > 0]
    if terms:
        return min(terms, key=lambda i: int(resp[i]))
    if not unknown[0] and resp[0] > 0:
        return 0
    return None
