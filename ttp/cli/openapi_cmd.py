"""``ttp openapi export [--check]``: write or verify the committed OpenAPI documents."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ttp.openapi_export import OPENAPI_DIR, check, export, services_with_app
from ttp.settings import SERVICES

app = typer.Typer(help="The OpenAPI documents of the services (openapi/<service>.json).", no_args_is_help=True)
console = Console(stderr=True)


@app.command("export")
def export_cmd(
    check_only: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 if a committed document differs from the code."
    ),
    out: Path = typer.Option(OPENAPI_DIR, help="Directory of the documents."),
    service: list[str] = typer.Option(
        None, "--service", "-s", help="Only this service (repeatable); default: every service with an app."
    ),
) -> None:
    """Export each service's OpenAPI document from its app, or check the committed ones."""
    services = service or services_with_app()
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        raise typer.BadParameter(f"unknown service(s): {', '.join(unknown)}")
    missing = [s for s in SERVICES if s not in services_with_app()]
    if missing and not service:
        console.print(f"[yellow]No app module yet for: {', '.join(missing)} (not exported)[/yellow]")
    if check_only:
        differences = check(out, services)
        for d in differences:
            console.print(d.diff, markup=False, highlight=False)
        if differences:
            console.print(
                f"[red]{len(differences)} document(s) out of date: "
                f"{', '.join(d.service for d in differences)}. Run 'ttp openapi export'.[/red]"
            )
            raise typer.Exit(1)
        console.print(f"OpenAPI documents up to date: {', '.join(services)}")
        return
    for path in export(out, services):
        console.print(f"wrote {path}")
