"""``ttp up`` runs the whole system locally; ``ttp serve`` runs one service."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from ttp.db import migrate
from ttp.logging_setup import configure_logging
from ttp.pki import ensure_hmac_key, init_pki
from ttp.settings import SERVICES, STORING_SERVICES, Settings, get_settings
from ttp.supervisor import START_ORDER, GaveUp, Supervisor, spawn_service, stderr_path, stop_processes
from ttp.tls import client_context

console = Console()


def serve(service: str = typer.Argument(..., help="One of: " + ", ".join(SERVICES))) -> None:
    """Run one service in the foreground (TLS only, client certificate required)."""
    from ttp.serve import serve as run

    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}")
    run(service)


def wait_healthy(settings: Settings, service: str, timeout: float = 60.0,
                 proc: subprocess.Popen[bytes] | None = None) -> bool:
    """Poll ``/v1/health`` over mTLS until it answers, ``timeout`` passes or ``proc`` exits."""
    ctx = client_context(settings.pki, f"service-{service}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        try:
            r = httpx.get(f"{settings.base_url(service)}/health", verify=ctx, timeout=2.0)
            if r.status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


class _Console(logging.Handler):
    """Supervision events on the operator's terminal too, as a sentence (the JSON record is in up.log)."""

    def emit(self, record: logging.LogRecord) -> None:
        colour = "red" if record.levelno >= logging.ERROR else "yellow" if record.levelno >= logging.WARNING else "dim"
        console.print(f"[{colour}]{escape(record.getMessage())}[/]")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def start_services(settings: Settings, env: dict[str, str] | None = None) -> Supervisor:
    """Start every service in order, each once the previous one is healthy; returns their supervisor."""
    supervisor = Supervisor(
        lambda name: spawn_service(name, settings.log_dir, env, own_process_group=True),
        log_hint=lambda name: f"{settings.log_dir / (name + '.log')} and {stderr_path(settings.log_dir, name)}",
    )
    try:
        for service in START_ORDER:
            if not wait_healthy(settings, service, proc=supervisor.start(service)):
                raise RuntimeError(f"{service} did not become healthy; see {settings.log_dir / (service + '.log')} "
                                   f"and {stderr_path(settings.log_dir, service)}")
    except BaseException:  # also Ctrl-C while starting: the services are in their own process group
        supervisor.stop()
        raise
    return supervisor


def up(
    purge_every: float = typer.Option(6.0, help="Hours between retention purges (0 = never)."),
) -> None:
    """Create the dev PKI and key if missing, migrate the SQLite databases, start and supervise all services.

    A service that dies is started again (after 1 s, doubling up to 30 s while
    it keeps dying soon after starting); after five such exits in a row ``ttp
    up`` gives up, stops the others and exits with status 1. Every start, exit,
    restart and stop is logged to ``<home>/log/up.log``.
    """
    settings = get_settings()
    configure_logging("up", settings.log_level, settings.log_dir / "up.log",
                      max_bytes=settings.log_max_bytes, backups=settings.log_backups)
    logging.getLogger("ttp.supervisor").addHandler(_Console())
    if not (settings.pki / "ca.pem").exists():
        init_pki(settings.pki)
        console.print(f"Created dev PKI in {settings.pki}")
    ensure_hmac_key(settings.keys)
    for service in STORING_SERVICES:
        migrate(service, settings.database_url(service))
    console.print("Databases migrated: " + ", ".join(settings.database_url(s) for s in STORING_SERVICES))
    signal.signal(signal.SIGTERM, _interrupt)  # while starting: stop what was started, then exit
    supervisor = start_services(settings)
    from services.portal.launch import sign_in_help, start_portal

    try:
        # The portal and its dev OpenID provider are not yet under the supervisor: they are
        # started once and stopped with the rest.
        portal_procs = start_portal(settings)
    except BaseException:
        supervisor.stop()
        raise
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
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
        f"Logs: {settings.log_dir}. Stop with Ctrl-C."
    )
    next_purge = time.monotonic() + purge_every * 3600 if purge_every > 0 else float("inf")
    gave_up: GaveUp | None = None
    try:
        while not stopping:
            supervisor.poll()
            if time.monotonic() >= next_purge:
                _scheduled_purge()
                next_purge = time.monotonic() + purge_every * 3600
            time.sleep(0.2)
    except GaveUp as exc:
        gave_up = exc
    finally:
        stop_processes(portal_procs.values())
        supervisor.stop()
        console.print("Stopped.")
    if gave_up is not None:
        console.print(f"[red]Gave up on {gave_up.service}; the other services were stopped.[/]")
        raise typer.Exit(1)


def _scheduled_purge() -> None:
    """Run ``ttp purge`` as a child process so a failure never takes the services down."""
    result = subprocess.run([sys.executable, "-m", "ttp", "purge"], capture_output=True, text=True, check=False)
    status = "ok" if result.returncode == 0 else f"failed ({result.returncode})"
    console.print(f"retention purge {status}")
