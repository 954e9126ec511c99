"""Driver-level bulk writes for the append hot path (key lookups: ``ttp.key_lookup``).

SQLAlchemy's per-row parameter processing costs more than the database
itself for a 10,000-row batch (about 15 us a row), which would make the log
the bottleneck of ingest. These helpers run inside the caller's SQLAlchemy
transaction but hand rows straight to the driver: ``COPY`` on PostgreSQL
(psycopg 3), a plain ``executemany`` on SQLite. Values must already be in
the driver's types; ``bind_value`` converts the odd one (a timestamp on
SQLite) exactly as SQLAlchemy would, so the ORM reads the rows back unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, Table


def bind_value(conn: Connection, column: Column[Any], value: Any) -> Any:
    """``value`` as SQLAlchemy would send it to this driver for ``column``."""
    processor = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return processor(value) if processor else value


def read_value(conn: Connection, column: Column[Any], value: Any) -> Any:
    """A raw driver value of ``column`` as SQLAlchemy would return it."""
    processor = column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)
    return processor(value) if processor else value


def insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table`` in the current transaction."""
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.dbapi_connection  # psycopg.Connection: has cursor().copy()
        types = [table.c[c].type.compile(dialect=conn.dialect).split("(")[0].lower() for c in columns]
        sql = f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)"
        with raw.cursor() as cur, cur.copy(sql) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", list(rows))
