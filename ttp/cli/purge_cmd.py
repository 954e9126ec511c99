"""``ttp purge``: delete trajectory rows whose retention has ended, keeping the aggregates.

Run by hand or by ``ttp up`` on a schedule. Before anything is deleted the
purge is written to the audit log (which periods, how many rows), and only
once the log has it durably: a purge that cannot be logged does not happen.
Stale periods are recomputed first, so the figures kept are the final ones.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import typer
from rich.console import Console

from ttp.audit_events import AuditEvent, AuditSink
from ttp.registry import load_yaml
from ttp.settings import Settings, get_settings

console = Console(stderr=True)


def service_oin(settings: Settings, service: str = "aggregate") -> str:
    """The OIN the registry gives a TTP service (the actor of its audit entries)."""
    for party in load_yaml(settings.registry):
        if party.service == service:
            return party.oin
    raise typer.BadParameter(f"the party registry has no service-{service}")


async def _append(sink: AuditSink, event: AuditEvent) -> None:
    """Append durably, then release the sink's connections (one event loop for both)."""
    try:
        await sink.append([event])
    finally:
        close = getattr(sink, "aclose", None)
        if close is not None:
            await close()


def run_purge(settings: Settings, today: dt.date, *, dry_run: bool = False,
              sink: AuditSink | None = None, actor: str | None = None) -> int:
    """Purge the aggregate store; returns the number of trajectory rows deleted."""
    from services.aggregate.disclosure import Protection
    from services.aggregate.recompute import recompute_stale
    from services.aggregate.retention import periods_due, purge, retention_end
    from ttp.db import make_engine, migrate

    url = settings.database_url("aggregate")
    migrate("aggregate", url)
    engine = make_engine(url)
    try:
        protection = Protection(settings.suppression_threshold, settings.protection_ratio)
        due = periods_due(engine, today)
        for period, rows in due.items():
            console.print(f"{period}: retention ended {retention_end(period)}, {rows:,} trajectory rows")
        if dry_run or not due:
            console.print("nothing to purge" if not due else "dry run: nothing deleted")
            return 0
        if sink is not None:
            event = AuditEvent(
                kind="purge", actorOin=actor or service_oin(settings),
                subject={"service": "aggregate", "periods": list(due), "trajectories": sum(due.values()),
                         "retentionEnds": {p: retention_end(p).isoformat() for p in due}},
                idempotencyKey=f"purge:{','.join(due)}:{today.isoformat()}",
            )
            asyncio.run(_append(sink, event))
        recompute_stale(engine, protection)
        report = purge(engine, protection, today)
        console.print(
            f"purged {', '.join(report.closed)}: {report.trajectories:,} trajectories, "
            f"{report.measurements:,} measurements, {report.goal_scores:,} goal scores, "
            f"{report.persons:,} persons; their aggregates are kept"
        )
        return report.trajectories
    finally:
        engine.dispose()


def purge(
    today: str | None = typer.Option(None, help="Reference date (YYYY-MM-DD) instead of today."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be purged."),
    audit: bool = typer.Option(True, "--audit/--no-audit",
                               help="Write the purge to the audit log before deleting (default)."),
) -> None:
    """Delete trajectory rows whose retention (period end + 12 months + delivery grace) has ended."""
    settings = get_settings()
    day = dt.date.fromisoformat(today) if today else dt.date.today()
    sink = None
    if audit and not dry_run:
        from ttp.audit_client import HttpAuditSink

        sink = HttpAuditSink(settings, "aggregate")
    try:
        run_purge(settings, day, dry_run=dry_run, sink=sink)
    except Exception as exc:
        if type(exc).__name__ in ("AuditUnavailable", "AuditRejected"):
            console.print(f"[red]the audit log did not take the purge ({exc}); nothing was deleted[/]")
            raise typer.Exit(1) from exc
        raise
