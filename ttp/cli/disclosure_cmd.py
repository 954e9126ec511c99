"""``ttp disclosure check``: prove, per recipient, that no hidden cell can be narrowed.

For each recipient (a gemeente, the Rijk, or everything pooled) it gathers
every output that recipient can see for a period and solves, per hidden cell,
the linear programs for the smallest and largest value consistent with it all
(``services.aggregate.lp_audit``). It fails (exit 1) if any hidden cell with
fewer than the threshold can be narrowed below its protection interval, or if
any output shows such a cell.

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
    from services.aggregate.disclosure import Protection
    from services.aggregate.lp_audit import Recipient, audit, audit_recipient, true_counts
    from services.aggregate.recompute import load_domains, recompute_stale
    from ttp.db import make_engine, migrate

    if source not in ("db", "api"):
        raise typer.BadParameter("source must be db or api")
    settings = get_settings()
    protection = Protection(settings.suppression_threshold, settings.protection_ratio)
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
    for column in ("recipient", "published", "hidden", "sensitive", "narrowed", "small shown"):
        out.add_column(column, justify="left" if column == "recipient" else "right")
    failed = False
    for name in names:
        who = Recipient.parse(name)
        if source == "db":
            with engine.connect() as conn:
                report = audit_recipient(conn, period, who, protection, as_of=day, integer=integer)
        else:
            tables, flags = _fetch(settings, period, who)
            report = audit(tables, lambda k: counts.get(k, 0), protection, recipient=str(who),
                           integer=integer, **flags)
        bad = len(report.failures)
        failed |= not report.ok
        style = "red" if not report.ok else "green"
        out.add_row(f"[{style}]{name}[/]", str(report.published), str(report.hidden), str(report.sensitive),
                    str(bad), str(len(report.small_published)))
        for failure in report.failures[:show]:
            console.print(f"  [red]{name}[/] {failure.describe()}")
    engine.dispose()
    console.print(out)
    if failed:
        raise typer.Exit(1)
    console.print("[green]No hidden cell can be narrowed below its protection interval.[/]")
