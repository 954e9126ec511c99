"""Database engines and Alembic migrations for the storing services.

SQLite (one file per service) is the embedded default; a PostgreSQL URL selects
production. Both run the same Alembic migrations, found in each service's
``migrations`` folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from ttp.private_files import private_file

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"

#: Constraint names every service's metadata uses, so migrations name them the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def database_status(engine: Engine) -> str:
    """``ok`` when the database answers a trivial query, else ``unreachable`` (readiness probes)."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except SQLAlchemyError:
        return "unreachable"
    return "ok"


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned for the backend: WAL and foreign keys on SQLite, pooling on PostgreSQL."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_sqlite_files(Path(parsed.database))
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False},
            json_serializer=_json_dumps, json_deserializer=orjson.loads, **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, json_serializer=_json_dumps, json_deserializer=orjson.loads, **kwargs)


def _private_sqlite_files(database: Path) -> None:
    """Create the database file owner-only before SQLite does (it gives its -wal and -shm files
    the database file's mode), and tighten the files an earlier version left readable."""
    private_file(database)
    for suffix in ("-wal", "-shm", "-journal"):
        sidecar = database.with_name(database.name + suffix)
        if sidecar.exists():
            private_file(sidecar)


def _json_dumps(value: Any) -> str:
    """JSON columns (receipts, batch outcomes) are written with orjson: they are on the hot path."""
    return orjson.dumps(value).decode()


def alembic_config(service: str, url: str) -> Config:
    """An Alembic config pointing at ``services/<service>/migrations``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def migrate(service: str, url: str, revision: str = "head") -> None:
    """Bring a service's database to ``revision`` (default: the newest)."""
    command.upgrade(alembic_config(service, url), revision)
