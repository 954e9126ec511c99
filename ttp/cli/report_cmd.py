"""``ttp report``: fetch a mirror report (spiegelrapportage) to a file, over mTLS.

A provider fetches its own reports with its own certificate; a gemeente fetches
a shareable report a provider shared with it (``--gemeente``). The service
decides who may read what; this command only picks the certificate and the
format.
"""

from __future__ import annotations

import re
import ssl
import sys
from pathlib import Path

import httpx
import typer

from ttp.settings import Settings, get_settings
from ttp.tls import client_context, client_context_from_files

FORMATS = {
    "json": "application/json",
    "csv": "text/csv",
    "html": "text/html",
    "pdf": "application/pdf",
}


def open_client(settings: Settings, ctx: ssl.SSLContext) -> httpx.Client:
    """The HTTPS client to the report service (a seam for tests)."""
    return httpx.Client(base_url=settings.base_url("report"), verify=ctx, timeout=120.0)


def report(
    provider: str = typer.Option(..., "--provider", help="AGB code of the provider (8 digits)."),
    period: str = typer.Option(..., help="Half year, e.g. 2026-H1."),
    variant: str = typer.Option("intern", help="intern (all figures) or deelbaar (shareable)."),
    fmt: str = typer.Option("pdf", "--format", help="pdf, html, csv or json."),
    out: Path | None = typer.Option(
        None, help="File to write; default spiegelrapportage_<AGB>_<period>_<variant>.<format>. "
        "Use - for standard output."),
    gemeente: str | None = typer.Option(
        None, help="Fetch as this gemeente (CBS code, e.g. GM0363) a report shared with it."),
    cert: Path | None = typer.Option(None, help="Client certificate (default: the dev PKI's)."),
    key: Path | None = typer.Option(None, help="Private key of --cert."),
    ca: Path | None = typer.Option(None, help="CA bundle of the TTP."),
) -> None:
    """Fetch a provider's mirror report for one half year."""
    if not re.fullmatch(r"\d{8}", provider):
        raise typer.BadParameter("an AGB code has 8 digits", param_hint="--provider")
    if not re.fullmatch(r"\d{4}-H[12]", period):
        raise typer.BadParameter("write the half year as 2026-H1 or 2026-H2", param_hint="--period")
    if variant not in ("intern", "deelbaar"):
        raise typer.BadParameter("intern or deelbaar", param_hint="--variant")
    if fmt not in FORMATS:
        raise typer.BadParameter(", ".join(FORMATS), param_hint="--format")
    if gemeente is not None and not re.fullmatch(r"GM\d{4}", gemeente):
        raise typer.BadParameter("a CBS gemeente code looks like GM0363", param_hint="--gemeente")
    if bool(cert) != bool(key):
        raise typer.BadParameter("give --cert and --key together")

    settings = get_settings()
    if cert and key:
        ctx = client_context_from_files(ca or settings.pki / "ca.pem", cert, key)
    else:
        ctx = client_context(settings.pki, f"gemeente-{gemeente}" if gemeente else f"provider-{provider}")
    path = f"/providers/{provider}/reports/{period}/{variant}"
    try:
        with open_client(settings, ctx) as client:
            resp = client.get(path, headers={"Accept": FORMATS[fmt]})
    except httpx.TransportError as exc:
        typer.echo(f"cannot reach the report service at {settings.base_url('report')}: {exc}", err=True)
        raise typer.Exit(2) from exc
    if resp.status_code != 200:
        detail = resp.text
        if "json" in resp.headers.get("content-type", ""):
            detail = str(resp.json().get("detail", resp.text))
        typer.echo(f"{resp.status_code}: {detail}", err=True)
        raise typer.Exit(1)
    if out is not None and str(out) == "-":
        sys.stdout.buffer.write(resp.content)
        return
    target = out or Path(f"spiegelrapportage_{provider}_{period}_{variant}.{fmt}")
    target.write_bytes(resp.content)
    typer.echo(f"wrote {target} ({len(resp.content):,} bytes)", err=True)
