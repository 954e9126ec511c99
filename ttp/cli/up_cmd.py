"""``ttp up`` runs the whole system locally; ``ttp serve`` runs one service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import typer
from rich.console import Console

from ttp.db import migrate
from ttp.pki import ensure_hmac_key, init_pki
from ttp.settings import SERVICES, STORING_SERVICES, Settings, get_settings
from ttp.tls import client_context

console = Console()

#: Start order: the audit log first (everyone appends to it), ingest last (it needs all others).
START_ORDER = ("audit", "pseudonymise", "aggregate", "report", "ingest")


def serve(service: str = typer.Argument(..., help="One of: " + ", ".join(SERVICES))) -> None:
    """Run one service in the foreground (TLS only, client certificate required)."""
    from ttp.serve import serve as run

    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}")
    run(service)


def wait_healthy(settings: Settings, service: str, timeout: float = 30.0) -> bool:
    """Poll ``/v1/health`` over mTLS until it answers or ``timeout`` passes."""
    ctx = client_context(settings.pki, f"service-{service}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{settings.base_url(service)}/health", verify=ctx, timeout=2.0)
            if r.status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def start_services(settings: Settings, env: dict[str, str] | None = None) -> dict[str, subprocess.Popen[bytes]]:
    """Start every service as its own process; returns them by name once all are healthy."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    for service in START_ORDER:
        out = (settings.log_dir / f"{service}.stderr").open("ab")
        procs[service] = subprocess.Popen(
            [sys.executable, "-m", "ttp", "serve", service],
            env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
        )
        if not wait_healthy(settings, service):
            for p in procs.values():
                p.terminate()
            raise RuntimeError(f"{service} did not become healthy; see {settings.log_dir / (service + '.stderr')}")
    return procs


def up(
    purge_every: float = typer.Option(6.0, help="Hours between retention purges (0 = never)."),
) -> None:
    """Create the dev PKI and key if missing, migrate the SQLite databases, start all services."""
    settings = get_settings()
    if not (settings.pki / "ca.pem").exists():
        init_pki(settings.pki)
        console.print(f"Created dev PKI in {settings.pki}")
    ensure_hmac_key(settings.keys)
    for service in STORING_SERVICES:
        migrate(service, settings.database_url(service))
    console.print("Databases migrated: " + ", ".join(settings.database_url(s) for s in STORING_SERVICES))
    procs = start_services(settings)
    from services.portal.launch import sign_in_help, start_portal

    procs.update(start_portal(settings))
    for service in START_ORDER:
        console.print(f"  [green]up[/] {service:<13} {settings.base_url(service)}")
    console.print(sign_in_help(settings), highlight=False, markup=False)
    pki: Path = settings.pki
    console.print(
        "\nAll services listen on TLS only and require a client certificate from the dev CA.\n"
        "Try it:\n"
        "  ttp generate --records 2000 --out var/sample.jsonl\n"
        "  ttp submit var/sample.jsonl\n"
        f"  curl --cacert {pki}/ca.pem --cert {pki}/clients/provider-98000001.pem "
        f"--key {pki}/clients/provider-98000001.key {settings.base_url('ingest')}/health\n"
        "Stop with Ctrl-C."
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    next_purge = time.monotonic() + purge_every * 3600 if purge_every > 0 else float("inf")
    try:
        while not stopping:
            for name, p in procs.items():
                if p.poll() is not None:
                    console.print(f"[red]{name} exited with {p.returncode}; stopping.[/]")
                    stopping = True
            if time.monotonic() >= next_purge:
                _scheduled_purge()
                next_purge = time.monotonic() + purge_every * 3600
            time.sleep(0.5)
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        console.print("Stopped.")


def _scheduled_purge() -> None:
    """Run ``ttp purge`` as a child process so a failure never takes the services down."""
    result = subprocess.run([sys.executable, "-m", "ttp", "purge"], capture_output=True, text=True, check=False)
    status = "ok" if result.returncode == 0 else f"failed ({result.returncode})"
    console.print(f"retention purge {status}")
