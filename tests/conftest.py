"""Fixtures shared by the whole suite.

Database tests run twice: on a SQLite file and on the PostgreSQL server at
127.0.0.1:5432 (database ``test``, trust auth). Each PostgreSQL test gets a
fresh database of its own so tests and parallel runs never see each other's
rows. If PostgreSQL is down the fixture tries to start it and otherwise fails
loudly; it never skips.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ttp import pg_databases

PG_ADMIN_DSN = pg_databases.ADMIN_DSN


def _pg_up() -> bool:
    return pg_databases.reachable()


def ensure_postgres() -> None:
    """Make sure the test PostgreSQL answers; start the local cluster once if it does not."""
    if _pg_up():
        return
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if versions:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=False, capture_output=True, timeout=60,
        )
        for _ in range(30):
            if _pg_up():
                return
            time.sleep(1)
    pytest.fail(
        "PostgreSQL at 127.0.0.1:5432 (database 'test', trust auth) is not reachable and could not "
        "be started; the suite needs it and does not skip it."
    )


def create_pg_database() -> tuple[str, str]:
    """Create an empty database; returns (name, SQLAlchemy URL)."""
    ensure_postgres()
    return pg_databases.create_database()


def drop_pg_database(name: str) -> None:
    pg_databases.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for an empty database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    name, url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dev PKI (CA, server and client certificates, registry, log key) for the session."""
    from ttp.pki import init_pki

    pki_dir = tmp_path_factory.mktemp("pki")
    init_pki(pki_dir, force=True)
    return pki_dir
