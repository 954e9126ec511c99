"""The disclosure audit: how far can a recipient narrow each hidden cell?

Independent of how suppression chose its pattern, this takes the outputs one
recipient can see (``OutcomeTable``s, as served), rebuilds from their
breakdowns how the cells nest (``tables.py``: four kinds of linked two-way
tables, exact for a reader who knows the code lists but not which cells are
empty), and for every hidden cell solves two linear programs with HiGHS:
the smallest and the largest value consistent with everything published,
with all finest cells non-negative. Bounds are rounded inward (counts are
whole), and where the optimum is fractional the integer program is solved
too, because a reader may use integrality and get tighter bounds than the
relaxation. A published count that the output says is rounded is a range.

A hidden cell with 1 to threshold-1 trajectories fails when the reader can
exclude the top or the bottom of its protection interval
``[v - ratio*v, max(v + ratio*v, threshold)]``.

Cells whose finest parts are all published are fixed and removed first; the
rest falls apart into independent components, and each component's program
is built once and re-solved with a new objective per cell (warm start).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import highspy
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from sqlalchemy import Connection, select

from services.aggregate.cell_key import CellKeyMethod
from services.aggregate.cells import BANDS, CellKey, key_from_breakdown, key_string
from services.aggregate.disclosure import Protection
from services.aggregate.informant_audit import age_band_bounds
from services.aggregate.tables import HTable, Occurrence, build_tables, occurrences
from ttp.outcomes import OutcomeTable

REST = "*rest*"


@dataclass
class Seen:
    """What a reader knows of a cell: a range (a single value when exact) or nothing."""

    low: float | None
    high: float | None
    #: Hidden, but the rule that hid it is public (cell-key: afgeschermd means 0..t-1).
    hidden: bool = False

    @property
    def published(self) -> bool:
        return self.low is not None and not self.hidden

    @property
    def bounded(self) -> bool:
        """Whether the reader has a range for the cell (a constraint of the model)."""
        return self.low is not None


@dataclass
class CellBound:
    key: CellKey
    true_value: int
    low: int
    high: int
    need_low: float
    need_high: float
    #: Cell-key outputs: a hidden count is protected when no reader can pin it to one value
    #: (its hiding rule already says "below the threshold", so the interval rule cannot hold).
    exact_only: bool = False

    @property
    def ok(self) -> bool:
        if self.exact_only:
            return self.high > self.low
        return self.low <= self.need_low + 1e-9 and self.high >= self.need_high - 1e-9

    def describe(self) -> str:
        return (f"{key_string(self.key)}: value {self.true_value}, a reader can narrow it to "
                f"[{self.low}, {self.high}], must not narrow below "
                f"[{self.need_low:g}, {self.need_high:g}]")


@dataclass
class AuditReport:
    recipient: str
    published: int = 0
    hidden: int = 0
    sensitive: int = 0
    bounds: list[CellBound] = field(default_factory=list)
    #: Cells shown with fewer than threshold trajectories: a failure on their own.
    small_published: list[CellKey] = field(default_factory=list)
    #: Any other count shown from 1 to threshold-1 (a category, responses): a failure too.
    small_counts: list[str] = field(default_factory=list)
    #: Hidden age bands of a Rijk table pinned by the informant rule and the responses.
    pinned_bands: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[CellBound]:
        return [b for b in self.bounds if not b.ok]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.small_published and not self.small_counts and not self.pinned_bands


def small_counts(tables: Iterable[OutcomeTable], threshold: int) -> list[str]:
    """Every count from 1 to threshold-1 the outputs show exactly: n, responses, each category
    of a distribution, the table totals ("where: value" per count)."""
    found: list[str] = []
    for table in tables:
        scope = f"{table.scope.kind}:{table.scope.code or ''}"
        for name, value in (("trajectories", table.trajectories), ("withoutBsn", table.withoutBsn)):
            if value is not None and 0 < value < threshold:
                found.append(f"{scope} {name}: {value}")
        for cell in table.cells:
            where = f"{scope} {cell.indicator}/{cell.variant or ''} {sorted(cell.breakdown.items())}"
            counts = [("n", cell.n), ("responses", cell.responses), *(cell.distribution or {}).items()]
            found += [f"{where} {name}: {value}" for name, value in counts
                      if value is not None and 0 < value < threshold]
    return found


def seen_cells(tables: Iterable[OutcomeTable], method: CellKeyMethod | None = None) -> dict[CellKey, Seen]:
    """Population cells shown in a set of outputs (one figure per cell: ``uitval``).

    With ``method`` (outputs shown through the cell-key method) every shown n is
    the range :meth:`CellKeyMethod.range_of` gives, and a hidden cell the range of
    afgeschermd: what a reader who knows the published perturbation table assumes.
    """
    seen: dict[CellKey, Seen] = {}
    for table in tables:
        gemeente = table.scope.code if table.scope.kind == "gemeente" else None
        provider = table.scope.code if table.scope.kind == "provider" else None
        half = table.rounding / 2 if table.rounding else 0.0  # a rounded count: a range
        for cell in table.cells:
            if cell.indicator != "uitval":
                continue
            key = key_from_breakdown(cell.breakdown, gemeente=gemeente, provider=provider)
            if cell.n is None:
                if method is None:
                    seen.setdefault(key, Seen(None, None))
                else:
                    low, high = method.range_of(None)
                    seen.setdefault(key, Seen(low, high, hidden=True))
            else:
                if method is None:
                    now = Seen(max(0.0, cell.n - half), cell.n + half)
                else:
                    low, high = method.range_of(cell.n)
                    now = Seen(low, high)
                old = seen.get(key)
                if old is None or not old.published:
                    seen[key] = now
                else:  # the same cell in two outputs: the reader has the intersection
                    seen[key] = Seen(max(old.low or 0.0, now.low or 0.0), min(old.high or 0.0, now.high or 0.0))
    return seen


def _domains(keys: Iterable[CellKey], rest_gemeente: bool, rest_provider: bool
             ) -> tuple[list[str], dict[str, list[str]], list[str]]:
    gemeenten: set[str] = set()
    pc4s: dict[str, set[str]] = {}
    providers: set[str] = set()
    for geo, _, _, prov in keys:
        if geo:
            gemeenten.add(geo[0])
        if len(geo) == 2:
            pc4s.setdefault(geo[0], set()).add(geo[1])
        if prov:
            providers.add(prov[0])
    g = sorted(gemeenten) + ([REST] if rest_gemeente else [])
    v = sorted(providers) + ([REST] if rest_provider else [])
    return g, {k: sorted(p) for k, p in pc4s.items()}, v


def audit(
    outputs: Iterable[OutcomeTable], truth: Callable[[CellKey], int], protection: Protection, *,
    recipient: str = "recipient", all_gemeenten: bool = False, all_providers: bool = False,
    integer: bool = True, method: CellKeyMethod | None = None,
) -> AuditReport:
    """Audit what one recipient sees (see the module docstring).

    ``truth`` gives the true count of a hidden cell (the operator's view). Say
    ``all_gemeenten``/``all_providers`` when the outputs list every gemeente or
    provider row (the Rijk's feed; every shareable report); otherwise the rest
    of the country is one unknown row.
    """
    outputs = list(outputs)
    seen = seen_cells(outputs, method)
    report = AuditReport(recipient)
    report.small_counts = small_counts(outputs, protection.threshold)
    if method is not None:
        for table in outputs:
            if table.scope.kind == "rijk":
                report.pinned_bands += [f"{b.gemeente} age {b.band}: {b.low}" for b in
                                        age_band_bounds(table, method.range_of) if b.pinned]
    has_national = any(not k[0] and not k[3] for k in seen)
    has_provider = any(k[3] for k in seen)
    gemeenten, pc4s, providers = _domains(
        seen, rest_gemeente=has_national and not all_gemeenten,
        rest_provider=has_provider and has_national and not all_providers,
    )
    # A table without rows tells the reader nothing (the Rijk sees no PC4 at all).
    tables = [t for t in build_tables(gemeenten, pc4s, providers, BANDS, lambda _k: 0) if t.n_rows]
    where = occurrences(tables)
    for key, s in seen.items():
        if s.published:
            report.published += 1
            if method is None and s.low is not None and 0 < (s.low + s.high) / 2 < protection.threshold:  # type: ignore[operator]
                report.small_published.append(key)
        else:
            report.hidden += 1
    model = _Model(tables, where, seen)
    for key, s in seen.items():
        if s.published or key not in where:
            continue
        v = truth(key)
        if not protection.sensitive(v):
            continue
        report.sensitive += 1
        low, high = model.bounds(key, integer)
        report.bounds.append(CellBound(key, v, low, high, protection.lower(v), protection.upper(v),
                                       exact_only=method is not None))
    return report


class _Model:
    """The reader's linear system over the finest cells of every table, reduced."""

    def __init__(self, tables: list[HTable], where: dict[CellKey, list[Occurrence]],
                 seen: dict[CellKey, Seen]) -> None:
        self.where = where
        offsets = []
        offset = 0
        for t in tables:
            offsets.append(offset)
            offset += t.n_rows * len(t.tree.leaves)
        n_vars = offset
        exprs: dict[tuple[int, int, int], np.ndarray] = {}

        def expr(t: int, r: int, node: int) -> np.ndarray:
            got = exprs.get((t, r, node))
            if got is None:
                table = tables[t]
                positions = np.array(table.tree.below[node], dtype=np.int64)
                n_leaves = len(table.tree.leaves)
                rows = range(table.n_rows) if r == table.n_rows else (r,)
                got = np.concatenate([offsets[t] + row * n_leaves + positions for row in rows]) \
                    if len(rows) else np.zeros(0, dtype=np.int64)
                exprs[(t, r, node)] = got
            return got

        self.expr = expr
        rows_i: list[np.ndarray] = []
        rows_v: list[np.ndarray] = []
        lows: list[float] = []
        highs: list[float] = []
        for key, occs in where.items():
            first = expr(occs[0].table, occs[0].row, occs[0].node)
            for occ in occs[1:]:  # tables meet: the same cell has the same value in each
                other = expr(occ.table, occ.row, occ.node)
                rows_i.append(np.concatenate([first, other]))
                rows_v.append(np.concatenate([np.ones(len(first)), -np.ones(len(other))]))
                lows.append(0.0)
                highs.append(0.0)
            s = seen.get(key)
            if s is not None and s.bounded:
                rows_i.append(first)
                rows_v.append(np.ones(len(first)))
                lows.append(float(s.low))  # type: ignore[arg-type]
                highs.append(float(s.high))  # type: ignore[arg-type]
        counts = [len(i) for i in rows_i]
        a = sparse.csr_matrix(
            (np.concatenate(rows_v) if rows_v else np.zeros(0),
             (np.repeat(np.arange(len(rows_i)), counts), np.concatenate(rows_i) if rows_i else np.zeros(0))),
            shape=(len(rows_i), n_vars),
        )
        self.a = a
        self.low = np.array(lows)
        self.high = np.array(highs)
        # Components of the variable-constraint graph: a cell's bounds depend on its own only.
        graph = sparse.bmat([[None, a], [a.T, None]], format="csr")
        _, labels = csgraph.connected_components(graph, directed=False)
        self.var_label = labels[len(rows_i):]
        self.con_label = labels[: len(rows_i)]
        self.solvers: dict[int, tuple[highspy.Highs, np.ndarray, np.ndarray]] = {}

    def _solver(self, label: int) -> tuple[highspy.Highs, np.ndarray, np.ndarray]:
        got = self.solvers.get(label)
        if got is not None:
            return got
        cols = np.nonzero(self.var_label == label)[0]
        cons = np.nonzero(self.con_label == label)[0]
        sub = self.a[cons][:, cols].tocsc()
        h = highspy.Highs()  # type: ignore[no-untyped-call]
        h.setOptionValue("output_flag", False)
        lp = highspy.HighsLp()
        lp.num_col_ = len(cols)
        lp.num_row_ = len(cons)
        lp.col_cost_ = np.zeros(len(cols))
        lp.col_lower_ = np.zeros(len(cols))
        lp.col_upper_ = np.full(len(cols), highspy.kHighsInf)
        lp.row_lower_ = self.low[cons]
        lp.row_upper_ = self.high[cons]
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = sub.indptr
        lp.a_matrix_.index_ = sub.indices
        lp.a_matrix_.value_ = sub.data
        h.passModel(lp)
        got = (h, cols, np.full(len(cols), -1, dtype=np.int64))
        got[2][:] = np.arange(len(cols))
        self.solvers[label] = got
        return got

    def bounds(self, key: CellKey, integer: bool) -> tuple[int, int]:
        occ = self.where[key][0]
        variables = self.expr(occ.table, occ.row, occ.node)
        labels = set(self.var_label[variables].tolist())
        low = high = 0.0
        for label in labels:
            part = variables[self.var_label[variables] == label]
            lo, hi = self._component_bounds(label, part, integer)
            low += lo
            high += hi
        return math.ceil(low - 1e-6), (math.floor(high + 1e-6) if math.isfinite(high) else 10**9)

    def _component_bounds(self, label: int, variables: np.ndarray, integer: bool) -> tuple[float, float]:
        h, cols, _ = self._solver(label)
        local = np.searchsorted(cols, variables)
        out = []
        for sense in (1.0, -1.0):
            costs = np.zeros(len(cols))
            costs[local] = sense
            h.changeColsCost(len(cols), np.arange(len(cols), dtype=np.int32), costs)
            h.run()
            status = h.getModelStatus()
            if status == highspy.HighsModelStatus.kUnbounded:
                out.append(-math.inf if sense > 0 else math.inf)
                continue
            value = sense * h.getInfo().objective_function_value
            solution = np.asarray(h.getSolution().col_value)
            if integer and np.abs(solution - np.rint(solution)).max(initial=0.0) > 1e-6:
                value = self._integer_bound(h, len(cols), sense, value)
            out.append(value)
        return out[0], out[1]

    @staticmethod
    def _integer_bound(h: highspy.Highs, n: int, sense: float, relaxed: float) -> float:
        """The bound an attacker using integrality gets (a fresh integer program)."""
        mip = highspy.Highs()  # type: ignore[no-untyped-call]
        mip.setOptionValue("output_flag", False)
        mip.setOptionValue("time_limit", 30.0)
        mip.passModel(h.getLp())
        mip.changeColsIntegrality(n, np.arange(n, dtype=np.int32),
                                  np.full(n, highspy.HighsVarType.kInteger))
        mip.run()
        info = mip.getInfo()
        if mip.getModelStatus() != highspy.HighsModelStatus.kOptimal and info.primal_solution_status != 2:
            return relaxed  # not even a whole-number solution found: keep the relaxation's bound
        # On a time-out the best whole-number solution found is at least as tight as the true
        # optimum an attacker could reach, so the audit errs on the side of failing.
        return float(sense * info.objective_function_value)


# --- what a recipient sees ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """Whose outputs to audit: ``gemeente:GM0363``, ``rijk`` or ``all`` (everything pooled)."""

    kind: str
    code: str | None = None

    @classmethod
    def parse(cls, text: str) -> Recipient:
        kind, _, code = text.partition(":")
        if kind not in ("gemeente", "rijk", "all") or (kind == "gemeente") != bool(code):
            raise ValueError("recipient must be gemeente:<CBS code>, rijk or all")
        return cls(kind, code or None)

    def __str__(self) -> str:
        return f"{self.kind}:{self.code}" if self.code else self.kind


def recipient_outputs(conn: Connection, period: str, recipient: Recipient, *, threshold: int,
                      as_of: dt.date, method: CellKeyMethod) -> tuple[list[OutcomeTable], dict[str, bool]]:
    """Every third-party output the recipient can see for a period, and what they enumerate.

    A gemeente is assumed to have every provider's shareable report shared with
    it (the worst case: sharing is the provider's choice and can change later),
    and sees the national reference printed in those reports.
    """
    from services.aggregate.feeds import (
        build_table,
        gemeente_output,
        national_output,
        provider_output,
        rijk_output,
    )
    from services.aggregate.recompute import load_domains

    now = dt.datetime.now(dt.UTC)
    domains = load_domains(conn, period)
    outputs = []
    if recipient.kind == "rijk":
        outputs.append(rijk_output())
    else:
        gemeenten = domains.gemeenten if recipient.kind == "all" else [recipient.code or ""]
        outputs += [gemeente_output(g) for g in gemeenten]
        outputs.append(national_output())
        outputs += [provider_output(v, "deelbaar") for v in domains.providers]
        if recipient.kind == "all":
            outputs.append(rijk_output())
    tables = [build_table(conn, period, o, threshold=threshold, as_of=as_of, generated_at=now, method=method)
              for o in outputs]
    flags = {"all_gemeenten": recipient.kind in ("rijk", "all"), "all_providers": recipient.kind != "rijk"}
    return tables, flags


def true_counts(conn: Connection, period: str) -> dict[CellKey, int]:
    """The operator's view: the true number of trajectories of every stored cell."""
    from services.aggregate.aggregate_models import OutcomeCell
    from services.aggregate.cells import parse_key

    oc = OutcomeCell.__table__
    return {parse_key(k): int(n) for k, n in conn.execute(
        select(oc.c.cell_key, oc.c.n).where(oc.c.period == period))}


def audit_recipient(conn: Connection, period: str, recipient: Recipient, protection: Protection, *,
                    method: CellKeyMethod, as_of: dt.date | None = None, integer: bool = True) -> AuditReport:
    """Gather a recipient's outputs from the store and audit them."""
    tables, flags = recipient_outputs(conn, period, recipient, threshold=protection.threshold,
                                      as_of=as_of or dt.date.today(), method=method)
    counts = true_counts(conn, period)
    return audit(tables, lambda k: counts.get(k, 0), protection, recipient=str(recipient),
                 integer=integer, method=method, **flags)
