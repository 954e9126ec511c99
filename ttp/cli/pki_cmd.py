"""``ttp pki``: the development PKI and party registry."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from ttp.pki import ensure_hmac_key, init_pki
from ttp.registry import Registry
from ttp.settings import get_settings

app = typer.Typer(help="Development PKI: CA, service and party certificates, registry, keys.", no_args_is_help=True)
console = Console()


@app.command("init")
def init(
    force: bool = typer.Option(False, "--force", help="Replace an existing CA and all certificates."),
    hostname: list[str] = typer.Option(
        [], "--hostname", help="Extra DNS name or IP for the service certificates (repeatable)."
    ),
) -> None:
    """Create the dev CA, a server certificate per service, client certificates with OINs,
    the party registry, the audit log signing key and the first HMAC key."""
    settings = get_settings()
    existed = (settings.pki / "ca.pem").exists()
    hosts = ["localhost", "127.0.0.1", "::1", *hostname]
    parties = init_pki(settings.pki, hostnames=hosts, force=force)
    key = ensure_hmac_key(settings.keys)
    if existed and not force:
        console.print(f"PKI already present in [bold]{settings.pki}[/] (use --force to replace).")
    else:
        console.print(f"Created dev PKI in [bold]{settings.pki}[/] for {len(parties)} parties.")
    console.print(f"HMAC key directory: [bold]{key.parent}[/] (never share or log these files).")
    console.print(f"Party registry: [bold]{settings.registry}[/]")


@app.command("parties")
def parties() -> None:
    """List the registered parties (OIN, role, codes) and their dev certificate names."""
    settings = get_settings()
    registry = Registry.from_yaml(settings.registry)
    table = Table("OIN", "role", "name", "AGB / gemeente", "certificate")
    for p in registry.all():
        table.add_row(p.oin, p.role, p.name, p.agb or p.gemeente_code or "", f"clients/{p.slug}.pem")
    console.print(table)
