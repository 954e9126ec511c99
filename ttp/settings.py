"""Runtime settings shared by every service and the CLI.

Everything comes from environment variables prefixed ``TTP_`` so that the same
code runs on a laptop (SQLite files under ``var/``) and in production
(PostgreSQL URLs and mounted secrets), without a config file format of our own.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES: tuple[str, ...] = ("ingest", "pseudonymise", "aggregate", "report", "audit")

DEFAULT_PORTS: dict[str, int] = {
    "ingest": 8441,
    "pseudonymise": 8442,
    "aggregate": 8443,
    "report": 8444,
    "audit": 8445,
    "portal": 8446,
}

#: Services that keep state and therefore own a database.
STORING_SERVICES: tuple[str, ...] = ("ingest", "aggregate", "report", "audit")


class Settings(BaseSettings):
    """All knobs of the TTP; one instance per process."""

    model_config = SettingsConfigDict(env_prefix="TTP_", extra="ignore")

    home: Path = Field(default=Path("var"), description="State directory: PKI, keys, SQLite files, logs.")
    host: str = "127.0.0.1"
    ingest_port: int = DEFAULT_PORTS["ingest"]
    pseudonymise_port: int = DEFAULT_PORTS["pseudonymise"]
    aggregate_port: int = DEFAULT_PORTS["aggregate"]
    report_port: int = DEFAULT_PORTS["report"]
    audit_port: int = DEFAULT_PORTS["audit"]
    #: The web portal for people (HTTPS for browsers; not one of ``SERVICES``, which are the APIs).
    portal_port: int = DEFAULT_PORTS["portal"]

    #: Database URLs per storing service; empty means a SQLite file under ``home``.
    ingest_database_url: str = ""
    aggregate_database_url: str = ""
    report_database_url: str = ""
    audit_database_url: str = ""

    #: Where the PKI lives; defaults below ``home``.
    pki_dir: Path | None = None
    #: HMAC key directory for pseudonymise (files ``v<N>.key``), defaults below ``home``.
    key_dir: Path | None = None
    #: Party registry YAML; defaults to ``<pki_dir>/parties.yaml`` written by ``ttp pki init``.
    registry_file: Path | None = None

    #: Trust an ``X-Client-Cert`` header from a TLS-terminating proxy. Off by default.
    trusted_proxy_mode: bool = False

    #: Smallest number of trajectories a third party may see in one cell.
    suppression_threshold: int = 10
    #: Protection interval as a share of the cell value (the LP audit's target).
    protection_ratio: float = 0.5
    #: The aggregate service's cell-key secret (created on first use; every instance shares it).
    cell_key_file: Path | None = None

    #: Largest request body ingest accepts (bytes); larger gets 413.
    max_body_bytes: int = 32 * 1024 * 1024
    #: Largest number of records in one batch.
    max_batch_records: int = 10_000
    #: In-flight batches at ingest beyond which it sheds load with 503.
    max_inflight_batches: int = 8

    #: Seconds between background recomputes of stale periods in aggregate (0 = only on read).
    recompute_interval: float = 60.0

    #: Timeout for service-to-service calls, seconds.
    upstream_timeout: float = 30.0

    log_level: str = "info"
    #: Where a service writes its log lines, exactly one place: ``stderr`` (in a container, whose
    #: runtime keeps and rotates them) or ``file`` (``<home>/log/<service>.log``, rotated by the
    #: service; ``ttp up`` sets this for the services it starts). See deploy/OPERATIONS.md.
    log_destination: Literal["stderr", "file"] = "stderr"
    #: Size at which a log file is rotated, and how many rotated files are kept.
    log_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    log_backups: int = Field(default=10, ge=1)

    def port(self, service: str) -> int:
        """The TLS port a service listens on."""
        port: int = getattr(self, f"{service}_port")
        return port

    def base_url(self, service: str) -> str:
        """The https base URL (with the /v1 prefix) another party uses for a service."""
        return f"https://{self.host}:{self.port(service)}/v1"

    def database_url(self, service: str) -> str:
        """The SQLAlchemy URL of a storing service; SQLite under ``home`` unless set."""
        url: str = getattr(self, f"{service}_database_url")
        if url:
            return url
        return f"sqlite:///{(self.home / 'db' / f'{service}.sqlite3').resolve()}"

    @property
    def pki(self) -> Path:
        return self.pki_dir or self.home / "pki"

    @property
    def keys(self) -> Path:
        return self.key_dir or self.home / "keys"

    @property
    def cell_key(self) -> Path:
        return self.cell_key_file or self.home / "secrets" / "aggregate-cell-key"

    @property
    def registry(self) -> Path:
        return self.registry_file or self.pki / "parties.yaml"

    @property
    def log_dir(self) -> Path:
        return self.home / "log"

    def log_file(self, name: str) -> Path | None:
        """The file a process called ``name`` logs to, or None when it logs to stderr."""
        return self.log_dir / f"{name}.log" if self.log_destination == "file" else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
