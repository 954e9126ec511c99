"""``ttp feed``: fetch a gemeente's or the Rijk's outcome feed over mTLS."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import typer

from ttp.settings import get_settings
from ttp.tls import client_context, client_context_from_files


def feed(
    period: str = typer.Option(..., help="Half year, e.g. 2026-H1."),
    gemeente: str | None = typer.Option(None, help="CBS code (GM0363): that gemeente's own feed."),
    rijk: bool = typer.Option(False, "--rijk", help="The Rijk's feed: per gemeente and national totals."),
    fmt: str = typer.Option("json", "--format", help="json or csv."),
    out: Path | None = typer.Option(None, help="Write to this file instead of standard output."),
    cert: Path | None = typer.Option(None, help="Client certificate (default: the dev PKI's for the party)."),
    key: Path | None = typer.Option(None, help="Private key of --cert."),
    ca: Path | None = typer.Option(None, help="CA bundle of the TTP."),
) -> None:
    """Fetch a feed as the party entitled to it."""
    if bool(gemeente) == rijk:
        raise typer.BadParameter("give exactly one of --gemeente CODE or --rijk")
    settings = get_settings()
    if cert and key:
        ctx = client_context_from_files(ca or settings.pki / "ca.pem", cert, key)
    else:
        ctx = client_context(settings.pki, f"gemeente-{gemeente}" if gemeente else "rijk")
    path = f"/gemeenten/{gemeente}/outcomes" if gemeente else "/rijk/outcomes"
    accept = "text/csv" if fmt == "csv" else "application/json"
    with httpx.Client(base_url=settings.base_url("aggregate"), verify=ctx, timeout=60.0) as client:
        resp = client.get(path, params={"period": period}, headers={"accept": accept})
    if resp.status_code != 200:
        detail = resp.json().get("detail") if resp.headers.get("content-type", "").endswith("json") else resp.text
        typer.echo(f"{resp.status_code}: {detail}", err=True)
        raise typer.Exit(1)
    if out:
        out.write_bytes(resp.content)
        typer.echo(f"wrote {out} ({len(resp.content):,} bytes)", err=True)
    else:
        sys.stdout.write(resp.text)
