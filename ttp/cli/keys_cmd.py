"""``ttp keys``: rotate and retire the pseudonymisation key.

Rotation adds ``v<N+1>.key``; the running pseudonymise service picks it up
within a second and from then on answers pseudonyms under every live version,
so aggregate links a person across the rotation (indicator 3.2). Retire an old
version only once no stored trajectory still uses it (its retention has ended).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets

import typer
from rich.console import Console

from ttp.audit_events import AuditEvent
from ttp.registry import Registry
from ttp.settings import get_settings

app = typer.Typer(help="Pseudonymisation key rotation.", no_args_is_help=True)
console = Console()
_KEY = re.compile(r"^v([0-9]+)\.key$")


def _versions() -> list[int]:
    d = get_settings().keys
    return sorted(int(m.group(1)) for p in d.glob("v*.key") if (m := _KEY.match(p.name)))


def _audit(kind_detail: dict[str, object]) -> None:
    """Record the rotation in the audit log as the pseudonymise service (the key's owner)."""
    from ttp.audit_client import HttpAuditSink

    settings = get_settings()
    registry = Registry.from_yaml(settings.registry)
    own = registry.service("pseudonymise")
    if own is None:
        raise typer.BadParameter("the party registry has no pseudonymise service")
    oin = own.oin

    async def send() -> None:
        sink = HttpAuditSink(settings, "pseudonymise")
        try:
            await sink.append([AuditEvent(kind="key-rotation", actorOin=oin, subject=kind_detail)])
        finally:
            await sink.aclose()

    asyncio.run(send())


@app.command("rotate")
def rotate(no_audit: bool = typer.Option(False, help="Do not append to the audit log (log offline).")) -> None:
    """Create the next key version (32 random bytes) and log the rotation."""
    settings = get_settings()
    versions = _versions()
    new = (versions[-1] if versions else 0) + 1
    path = settings.keys / f"v{new}.key"
    settings.keys.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(32))
    console.print(f"Created key version {new}; live versions: {[*versions, new]}")
    if not no_audit:
        _audit({"action": "rotate", "newVersion": new, "liveVersions": [*versions, new]})


@app.command("retire")
def retire(
    version: int = typer.Argument(..., help="Key version to delete"),
    no_audit: bool = typer.Option(False, help="Do not append to the audit log."),
) -> None:
    """Delete an old key version; its pseudonyms can no longer be produced."""
    settings = get_settings()
    versions = _versions()
    if version not in versions:
        raise typer.BadParameter(f"no key version {version}")
    if version == versions[-1]:
        raise typer.BadParameter("the newest key version cannot be retired; rotate first")
    (settings.keys / f"v{version}.key").unlink()
    console.print(f"Retired key version {version}; live versions: {[v for v in versions if v != version]}")
    if not no_audit:
        _audit({"action": "retire", "retiredVersion": version})
