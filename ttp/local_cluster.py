"""The whole TTP as real processes on loopback TLS ports, for benchmarks and end-to-end tests.

Each cluster gets its own state directory (PKI, keys, logs, SQLite files) or
PostgreSQL databases, and free ports, so several can run side by side.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from ttp import pg_databases
from ttp.pki import ensure_hmac_key, init_pki
from ttp.settings import STORING_SERVICES, Settings
from ttp.supervisor import START_ORDER, spawn_service, stderr_path, stop_processes
from ttp.tls import client_context

__all__ = ["START_ORDER", "Cluster", "free_port"]
#: Seconds a started service may take to answer its health check (``TTP_START_TIMEOUT``): on a
#: machine loaded by other work, importing five services side by side can take minutes.
START_TIMEOUT = float(os.environ.get("TTP_START_TIMEOUT", "180"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Cluster:
    """Start, kill and restart the five services; talk to them as any party."""

    def __init__(self, home: Path, backend: str = "sqlite", extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.backend = backend
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.pg_databases: list[str] = []
        self.env: dict[str, str] = {
            "TTP_HOME": str(home),
            "TTP_LOG_LEVEL": "info",
            **{f"TTP_{s.upper()}_PORT": str(free_port()) for s in START_ORDER},
        }
        if backend == "postgresql":
            for service in STORING_SERVICES:
                name, url = pg_databases.create_database("ttp_c")
                self.pg_databases.append(name)
                self.env[f"TTP_{service.upper()}_DATABASE_URL"] = url
        self.env.update(extra_env or {})
        init_pki(home / "pki")
        ensure_hmac_key(home / "keys")

    @property
    def settings(self) -> Settings:
        fields: dict[str, Any] = {
            k[4:].lower(): v for k, v in self.env.items() if k.startswith("TTP_") and k != "TTP_HOME"
        }
        return Settings.model_validate({"home": self.home, **fields})

    def start(self, *services: str) -> None:
        """Start ``services`` (default all) side by side, then wait until each answers.

        They are launched together: none needs another to start (a caller
        retries or queues until its peer is up), and importing five services in
        parallel takes half the time of one after another on two cores.
        """
        wanted = services or START_ORDER
        for service in wanted:
            self.procs[service] = spawn_service(service, self.log_dir, self.env)
        for service in wanted:
            self.wait_healthy(service)

    def wait_healthy(self, service: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        with self.client("service-ingest", service) as c:
            while time.monotonic() < deadline:
                proc = self.procs.get(service)
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{service} exited with {proc.returncode}:\n{self.log_tail(service)}")
                try:
                    if c.get("/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"{service} not healthy after {timeout}s:\n{self.log_tail(service)}")

    @property
    def log_dir(self) -> Path:
        return (self.home / "log").resolve()

    def log_tail(self, service: str, lines: int = 40) -> str:
        """The last lines of what ``service`` wrote: its raw stderr (a crash at start), then its log."""
        tails = []
        for path in (stderr_path(self.log_dir, service), self.log_dir / f"{service}.log"):
            if path.exists():
                tails += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(tails)

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(service)
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop in reverse start order: callers first, the audit log last, so queued
        audit events still have somewhere to go while the others shut down."""
        stop_processes([self.procs.pop(s) for s in reversed(START_ORDER) if s in self.procs])
        self.procs.clear()

    def destroy(self) -> None:
        self.stop()
        for name in self.pg_databases:
            pg_databases.drop_database(name)

    def base_url(self, service: str) -> str:
        return f"https://127.0.0.1:{self.env[f'TTP_{service.upper()}_PORT']}/v1"

    def client(self, slug: str, service: str = "ingest", **kwargs: Any) -> httpx.Client:
        """An mTLS client to ``service`` presenting the dev certificate of party ``slug``."""
        return httpx.Client(
            base_url=self.base_url(service), verify=client_context(self.home / "pki", slug),
            timeout=kwargs.pop("timeout", 120.0), **kwargs,
        )

    def database_urls(self) -> dict[str, str]:
        return {s: self.settings.database_url(s) for s in STORING_SERVICES}
