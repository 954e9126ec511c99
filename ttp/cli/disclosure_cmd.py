"""``ttp disclosure check``: prove, per recipient, that no small count is shown or can be pinned.

For each recipient (a gemeente, the Rijk, or everything pooled) it gathers
every output that recipient can see for a period (a gemeente: its feed, every
shareable report, the national reference) and fails (exit 1) if any count
from 1 to the threshold-1 is shown (n, responses, a category, a total), if
linear programming over the linked tables, with every shown n read as the
range the cell-key method gives it, pins a hidden cell of 1 to threshold-1
(``services.aggregate.lp_audit``), or if the informant rule with the
responses pins a hidden age band of the Rijk's feed
(``services.aggregate.informant_audit``). ``ttp disclosure loss`` prints what
the protection costs, per gemeente size class.

``--source db`` (default) builds the outputs from the aggregate store, as the
operator on the TTP; ``--source api`` fetches them from the running aggregate
service with each party's own certificate, so the check covers exactly what
is served. The true counts always come from the store.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ttp.settings import Settings, get_settings

app = typer.Typer(help="Disclosure control: audit what each recipient can work out.", no_args_is_help=True)
console = Console()


def _fetch(settings: Settings, period: str, recipient: Any) -> tuple[list[Any], dict[str, bool]]:
    """The recipient's outputs as served by the aggregate service (mTLS, dev PKI certificates)."""
    import httpx

    from services.aggregate.recompute import load_domains
    from ttp.db import make_engine
    from ttp.outcomes import OutcomeTable
    from ttp.tls import client_context

    engine = make_engine(settings.database_url("aggregate"))
    with engine.connect() as conn:
        domains = load_domains(conn, period)
    engine.dispose()
    wanted: list[tuple[str, str, dict[str, str]]] = []
    if recipient.kind == "rijk":
        wanted.append(("rijk", "/rijk/outcomes", {}))
    else:
        gemeenten = domains.gemeenten if recipient.kind == "all" else [recipient.code]
        wanted += [(f"gemeente-{g}", f"/gemeenten/{g}/outcomes", {}) for g in gemeenten]
        wanted.append(("service-report", "/national/outcomes", {}))
        wanted += [("service-report", f"/providers/{v}/outcomes", {"variant": "deelbaar"})
                   for v in domains.providers]
        if recipient.kind == "all":
            wanted.append(("rijk", "/rijk/outcomes", {}))
    tables = []
    clients: dict[str, httpx.Client] = {}
    try:
        for slug, path, params in wanted:
            if slug not in clients:
                clients[slug] = httpx.Client(base_url=settings.base_url("aggregate"),
                                             verify=client_context(settings.pki, slug), timeout=120.0)
            resp = clients[slug].get(path, params={"period": period, **params})
            if resp.status_code == 404:
                continue
            resp.raise_for_status()
            tables.append(OutcomeTable.model_validate_json(resp.content))
    finally:
        for client in clients.values():
            client.close()
    flags = {"all_gemeenten": recipient.kind in ("rijk", "all"), "all_providers": recipient.kind != "rijk"}
    return tables, flags


@app.command("check")
def check(
    period: str = typer.Option(..., help="Half year, e.g. 2026-H1."),
    recipient: list[str] | None = typer.Option(
        None, "--recipient",
        help="gemeente:GM0363, rijk or all (everything pooled); repeatable. Default: the Rijk and every gemeente.",
    ),
    source: str = typer.Option("db", help="db: outputs built from the store; api: fetched from the service."),
    integer: bool = typer.Option(True, "--integer/--relaxation",
                                 help="Also use integrality, as an attacker can (default)."),
    as_of: str | None = typer.Option(None, help="Date the outputs are judged on (YYYY-MM-DD)."),
    show: int = typer.Option(5, help="Failing cells to list per recipient."),
) -> None:
    """Audit the outputs of a period per recipient with linear programming (HiGHS)."""
    from services.aggregate.cell_key import CellKeyMethod
    from services.aggregate.disclosure import Protection
    from services.aggregate.lp_audit import Recipient, audit, audit_recipient, true_counts
    from services.aggregate.recompute import load_domains, recompute_stale
    from ttp.db import make_engine, migrate

    if source not in ("db", "api"):
        raise typer.BadParameter("source must be db or api")
    settings = get_settings()
    protection = Protection(settings.suppression_threshold, settings.protection_ratio)
    method = CellKeyMethod.load(settings.cell_key, settings.suppression_threshold)
    day = dt.date.fromisoformat(as_of) if as_of else dt.date.today()
    url = settings.database_url("aggregate")
    migrate("aggregate", url)
    engine = make_engine(url)
    if source == "db":
        recompute_stale(engine, protection)
    with engine.connect() as conn:
        names = recipient or ["rijk"] + [f"gemeente:{g}" for g in load_domains(conn, period).gemeenten]
        counts = true_counts(conn, period)
    if not counts:
        engine.dispose()
        console.print(f"[red]no figures stored for {period}[/]")
        raise typer.Exit(1)
    out = Table(title=f"Disclosure audit {period} (threshold {protection.threshold}, "
                      f"interval ±{protection.ratio:.0%} or up to the threshold)")
    for column in ("recipient", "published", "hidden", "sensitive", "pinned", "small shown"):
        out.add_column(column, justify="left" if column == "recipient" else "right")
    failed = False
    for name in names:
        who = Recipient.parse(name)
        if source == "db":
            with engine.connect() as conn:
                report = audit_recipient(conn, period, who, protection, method=method, as_of=day, integer=integer)
        else:
            tables, flags = _fetch(settings, period, who)
            report = audit(tables, lambda k: counts.get(k, 0), protection, recipient=str(who),
                           integer=integer, method=method, **flags)
        bad = len(report.failures)
        failed |= not report.ok
        style = "red" if not report.ok else "green"
        out.add_row(f"[{style}]{name}[/]", str(report.published), str(report.hidden), str(report.sensitive),
                    str(bad + len(report.pinned_bands)), str(len(report.small_published) + len(report.small_counts)))
        for band in report.pinned_bands[:show]:
            console.print(f"  [red]{name}[/] the informant rule pins {band}")
        for small in report.small_counts[:show]:
            console.print(f"  [red]{name}[/] shows {small}")
        for failure in report.failures[:show]:
            console.print(f"  [red]{name}[/] {failure.describe()}")
    engine.dispose()
    console.print(out)
    if failed:
        raise typer.Exit(1)
    console.print("[green]No count from 1 to the threshold is shown, and no hidden cell can be pinned.[/]")


@app.command("loss")
def loss(
    period: str = typer.Option(..., help="Half year, e.g. 2026-H1."),
    as_of: str | None = typer.Option(None, help="Date the outputs are judged on (YYYY-MM-DD)."),
) -> None:
    """Information loss of every gemeente feed per size class: the earlier suppression against cell-key."""
    from services.aggregate.cell_key import CellKeyMethod
    from services.aggregate.disclosure import Protection
    from services.aggregate.information_loss import loss_by_size_class, suppression_rule
    from services.aggregate.recompute import recompute_stale
    from ttp.db import make_engine, migrate

    settings = get_settings()
    threshold = settings.suppression_threshold
    method = CellKeyMethod.load(settings.cell_key, threshold)
    day = dt.date.fromisoformat(as_of) if as_of else dt.date.today()
    url = settings.database_url("aggregate")
    migrate("aggregate", url)
    engine = make_engine(url)
    recompute_stale(engine, Protection(threshold, settings.protection_ratio))
    with engine.connect() as conn:
        before = loss_by_size_class(conn, period, suppression_rule(threshold), as_of=day)
        after = loss_by_size_class(conn, period, lambda s: method.rule(s.counts), as_of=day)
    engine.dispose()
    out = Table(title=f"Information loss of the gemeente feeds, {period} (earlier suppression -> cell-key)")
    for column in ("size class", "gemeenten", "cells published", "trajectories in published cells",
                   "counts published", "mean relative error"):
        out.add_column(column, justify="left" if column == "size class" else "right")
    for label, b in before.items():
        a = after[label]
        out.add_row(label, str(b.gemeenten), f"{b.share_cells:.1%} -> {a.share_cells:.1%}",
                    f"{b.share_trajectories:.1%} -> {a.share_trajectories:.1%}",
                    f"{b.share_counts:.1%} -> {a.share_counts:.1%}",
                    f"{b.mean_relative_error:.1%} -> {a.mean_relative_error:.1%}")
    console.print(out)
