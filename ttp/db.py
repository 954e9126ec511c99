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


#: How long a SQLite connection waits for another writer (PRAGMA busy_timeout), milliseconds.
SQLITE_BUSY_MS = 30_000
#: How long the readiness probe waits for the write lock before it calls the database not writable.
PROBE_LOCK_MS = 2_000


def database_status(engine: Engine) -> str:
    """``ok`` when the database answers *and takes a write*; else ``unreachable`` or ``not writable``.

    A database that answers ``SELECT 1`` can still refuse every write (a
    read-only file or mount, a hot standby, ``default_transaction_read_only``,
    lost privileges), and a service on it would 503 every delivery while its
    readiness said ok. So the probe rewrites the ``alembic_version`` row that
    every migrated database has, to the same value, and rolls back: it proves
    the write path (lock and permission) without changing anything. It waits
    at most ``PROBE_LOCK_MS`` for the write lock.
    """
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            sqlite = conn.dialect.name == "sqlite"
            try:
                if sqlite:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={PROBE_LOCK_MS}")
                else:
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {PROBE_LOCK_MS}")
                conn.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
            except SQLAlchemyError:
                return "not writable"
            finally:
                conn.rollback()
                if sqlite:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
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
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
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
