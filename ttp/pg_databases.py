"""Throw-away PostgreSQL databases for benchmarks and tests.

Each run gets databases of its own (``CREATE DATABASE`` on the server the
admin DSN points at), so runs never see each other's rows, and drops them after.
"""

from __future__ import annotations

import os
import uuid

import psycopg

ADMIN_DSN = os.environ.get("TTP_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres")


def url_for(name: str, admin_dsn: str = ADMIN_DSN) -> str:
    """SQLAlchemy URL of database ``name`` on the admin DSN's server."""
    info = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    user = info.get("user", "postgres")
    host = info.get("host", "127.0.0.1")
    port = info.get("port", "5432")
    return f"postgresql+psycopg://{user}@{host}:{port}/{name}"


def reachable(admin_dsn: str = ADMIN_DSN) -> bool:
    try:
        with psycopg.connect(admin_dsn, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def create_database(prefix: str = "ttp_t", admin_dsn: str = ADMIN_DSN) -> tuple[str, str]:
    """Create an empty database; returns (name, SQLAlchemy URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, url_for(name, admin_dsn)


def drop_database(name: str, admin_dsn: str = ADMIN_DSN) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
