"""``ttp bench disclosure``: our cell-key outputs beside tau-ARGUS (pytauargus) on the same tables.

The peer is pytauargus (tau-ARGUS rebuilt on HiGHS, PyPI; its native engine is
in the wheel, nothing else to install), run on the trajectories of one
gemeente and period as microdata, with the frequency rule of the spec
(``FREQ(threshold, 0)``) and Modular (``MOD``) or Optimal (``OPT``)
suppression, on the three tables of a gemeente feed that carry n: PC4 x
access type, care type (access, sector, hulpvorm) and age band, each with its
totals. Each table is protected on its own (tau-ARGUS' linked-table mode is
not used), which favours the peer.

Printed side by side for the same non-empty cells: cells hidden, share of
cells published, share of trajectories in published cells, mean relative
error of the published n, and the counts from 1 to threshold-1 a reader
would still see inside the published cells (categories and responses, which
tau-ARGUS leaves exact because it protects n only). The earlier method (the
stored certificate-based suppression pattern) is the third column.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ttp.settings import get_settings

console = Console()


@dataclass
class Column:
    """One method's result on the benchmark cells."""

    name: str
    seconds: float = 0.0
    cells: int = 0
    hidden: int = 0
    trajectories: int = 0
    trajectories_published: int = 0
    relative_error: float = 0.0
    small_shown: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, true_n: int, shown: int | None) -> None:
        self.cells += 1
        self.trajectories += true_n
        if shown is None:
            self.hidden += 1
            return
        self.trajectories_published += true_n
        self.relative_error += abs(shown - true_n) / true_n

    @property
    def published(self) -> int:
        return self.cells - self.hidden


Statuses = dict[tuple[str, ...], dict[tuple[str, ...], str]]


def _tau_tables(rows: list[dict[str, Any]], threshold: int, suppress: str) -> Statuses:
    """Status per cell per table, as tau-ARGUS returns it ('Total' for a margin)."""
    import pytauargus

    micro = {
        "pc4": [r["pc4"] for r in rows],
        "access": [r["access"] for r in rows],
        "care": [r["care"] for r in rows],
        "band": [r["band"] for r in rows],
        "one": [1] * len(rows),
    }
    specs = [("pc4", "access"), ("care",), ("band",)]
    # tau-ARGUS writes its solver logs to the working directory: keep them in the temporary one.
    with tempfile.TemporaryDirectory(prefix="ttp-tau-") as workdir, contextlib.chdir(workdir):
        result = pytauargus.protect(micro, [list(s) for s in specs], "one", safety_rules=f"FREQ({threshold},0)",
                                    suppress=f"{suppress}(1)", workdir=workdir)
        out: Statuses = {}
        for spec, table in zip(specs, result.tables, strict=True):
            out[spec] = {tuple(str(r[v]).strip() for v in spec): str(r["status"]) for r in table.rows}
    return out


def bench_disclosure(
    period: str = typer.Option("2026-H1", help="Half year, e.g. 2026-H1."),
    gemeente: str = typer.Option("GM0363", help="The gemeente whose feed tables are protected."),
    suppress: str = typer.Option("MOD", help="tau-ARGUS secondary suppression: MOD (Modular) or OPT (Optimal)."),
    as_of: str | None = typer.Option(None, help="Date the outputs are judged on (YYYY-MM-DD)."),
) -> None:
    """Suppressed cells and information loss: cell-key (ours) beside tau-ARGUS, same tables, one run."""
    from sqlalchemy import select

    from services.aggregate.cell_key import CellKeyMethod, CountRule, exact
    from services.aggregate.cells import BANDS, CellKey, care_nodes
    from services.aggregate.disclosure import Protection
    from services.aggregate.feeds import StoredCell, gemeente_output, load_cells, population_cells, window_end
    from services.aggregate.indicators import LAYOUT, WINDOWS
    from services.aggregate.information_loss import suppression_rule
    from services.aggregate.models import Trajectory
    from services.aggregate.recompute import load_domains, recompute_stale
    from ttp.db import make_engine, migrate

    if suppress not in ("MOD", "OPT"):
        raise typer.BadParameter("suppress must be MOD or OPT")
    try:
        import pytauargus  # noqa: F401
    except ImportError as exc:
        raise typer.BadParameter("pytauargus is not installed: pip install pytauargus==0.6.0") from exc
    settings = get_settings()
    threshold = settings.suppression_threshold
    method = CellKeyMethod.load(settings.cell_key, threshold)
    day = dt.date.fromisoformat(as_of) if as_of else dt.date.today()
    url = settings.database_url("aggregate")
    migrate("aggregate", url)
    engine = make_engine(url)
    recompute_stale(engine, Protection(threshold, settings.protection_ratio))
    t = Trajectory.__table__
    with engine.connect() as conn:
        records = conn.execute(select(t.c.pc4, t.c.freely_accessible, t.c.sector, t.c.hulpvorm, t.c.age_band)
                               .where(t.c.period == period, t.c.gemeente == gemeente)).all()
        stored = load_cells(conn, period, gemeente_output(gemeente))
        pc4s = load_domains(conn, period).pc4s.get(gemeente, [])
    engine.dispose()
    if not records:
        console.print(f"[red]no trajectories of {gemeente} in {period}[/]")
        raise typer.Exit(1)
    access = {True: "true", False: "false"}
    rows = [{"pc4": p, "access": access[bool(f)], "care": f"{access[bool(f)]}|{s}|{h}", "band": b}
            for p, f, s, h, b in records]
    g = (gemeente,)
    # The benchmark cells: (our key, tau table, tau cell).
    cells: list[tuple[CellKey, tuple[str, ...], tuple[str, ...]]] = [((g, (), (), ()), ("band",), ("Total",))]
    for p in [*pc4s, "Total"]:
        for a in ["Total", "false", "true"]:
            geo = g if p == "Total" else (gemeente, p)
            care: tuple[str, ...] = () if a == "Total" else (a,)
            if (p, a) != ("Total", "Total"):
                cells.append(((geo, care, (), ()), ("pc4", "access"), (p, a)))
    cells += [((g, leaf, (), ()), ("care",), ("|".join(leaf),)) for leaf in care_nodes(3)]
    cells += [((g, (), (band,), ()), ("band",), (band,)) for band in BANDS]
    zero = StoredCell(np.zeros(len(LAYOUT), dtype=np.int64), False, 0)
    observable = {w: day > window_end(period, w) for w in WINDOWS}

    def small_inside(key: CellKey, counts: np.ndarray, rule: CountRule) -> int:
        shown: list[int | None] = []

        def recording(value: int, name: str) -> int | None:
            v = rule(value, name)
            shown.append(v)
            return v

        population_cells(key, {}, counts, recording, observable)
        return sum(1 for v in shown if v is not None and 0 < v < threshold)

    def run(name: str, decide: Callable[[CellKey, StoredCell], CountRule]) -> Column:
        col = Column(name)
        start = time.perf_counter()
        for key, _, _ in cells:
            s = stored.get(key, zero)
            n = int(s.counts[0])
            if n == 0:
                continue
            rule = decide(key, s)
            col.add(n, rule(n, "n"))
            col.small_shown += small_inside(key, s.counts, rule)
        col.seconds += time.perf_counter() - start
        return col

    start = time.perf_counter()
    tau = _tau_tables(rows, threshold, suppress)
    tau_seconds = time.perf_counter() - start
    statuses: dict[CellKey, str] = {}
    for key, spec, cell in cells:
        statuses[key] = tau.get(spec, {}).get(cell, "Z")

    def tau_rule(key: CellKey, _s: StoredCell) -> CountRule:
        hidden = statuses[key] in ("U", "M")
        return (lambda _v, _n: None) if hidden else exact

    legacy = suppression_rule(threshold)
    columns = [
        run("ours: cell-key", lambda _k, s: method.rule(s.counts)),
        run(f"tau-ARGUS {suppress}", tau_rule),
        run("earlier: suppression", lambda _k, s: legacy(s)),
    ]
    columns[1].seconds += tau_seconds
    if not columns[0].cells:
        console.print(f"[red]no figures stored for {gemeente} in {period}: recompute first[/]")
        raise typer.Exit(1)
    out = Table(title=f"Disclosure control of {gemeente} {period}: {columns[0].cells} non-empty cells of the "
                      f"PC4 x access, care-type and age-band tables (threshold {threshold})")
    out.add_column("")
    for col in columns:
        out.add_column(col.name, justify="right")
    rows_out = [
        ("cells hidden", [str(c.hidden) for c in columns]),
        ("cells published", [f"{c.published / c.cells:.1%}" for c in columns]),
        ("trajectories in published cells", [f"{c.trajectories_published / c.trajectories:.1%}" for c in columns]),
        ("mean relative error of published n",
         [f"{c.relative_error / c.published:.2%}" if c.published else "-" for c in columns]),
        (f"counts 1..{threshold - 1} a reader has in published cells (shown, or value x n)",
         [str(c.small_shown) for c in columns]),
        ("seconds", [f"{c.seconds:.2f}" for c in columns]),
    ]
    for label, values in rows_out:
        out.add_row(label, *values)
    console.print(out)
