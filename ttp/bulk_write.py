"""Insert many rows through the driver's bulk path: ``COPY`` on PostgreSQL, ``executemany`` on SQLite.

The aggregate store's commit and the audit log's append each write thousands
of rows per batch. SQLAlchemy's per-row statement compilation and bind
processing cost more than the database itself at that size (about a third of
the aggregate service's time, and 15 µs a row in the log), so both hand their
rows straight to the driver, inside the caller's SQLAlchemy transaction.

Values come in their Python form: dates as ``date``, timestamps as aware
``datetime``. On SQLite the date and timestamp columns are written as the
text SQLAlchemy itself writes there, so reads through the ORM see the same
values as rows it inserted.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Date, DateTime, Table
from sqlalchemy.types import TypeDecorator

_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


@functools.lru_cache(maxsize=64)
def _sqlite_datetime(value: Any) -> Any:
    """SQLAlchemy's SQLite text for a UTC timestamp (a batch shares one, so it is formatted once)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None).strftime(_SQLITE_DATETIME)
    return value


def _sqlite_date(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def _sqlite_converters(table: Table, columns: Sequence[str]) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, converter) of the columns SQLite needs as text: the date and timestamp columns."""
    out: list[tuple[int, Callable[[Any], Any]]] = []
    for i, name in enumerate(columns):
        kind = table.c[name].type
        if isinstance(kind, TypeDecorator):  # e.g. ttp.timestamps.UTCDateTime: stored as its impl
            kind = kind.impl_instance
        if isinstance(kind, DateTime):
            out.append((i, _sqlite_datetime))
        elif isinstance(kind, Date):
            out.append((i, _sqlite_date))
    return out


def _sqlite_rows(table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    """``rows`` with only the date and timestamp columns converted.

    Converting column by column costs a fraction of passing every value of
    every row through a type check.
    """
    converters = _sqlite_converters(table, columns)
    if not converters:
        return list(rows)
    out: list[Sequence[Any]] = []
    for row in rows:
        values = list(row)
        for i, convert in converters:
            values[i] = convert(values[i])
        out.append(tuple(values))
    return out


def _copy_types(conn: Connection, table: Table, columns: Sequence[str]) -> list[str]:
    """PostgreSQL type names of ``columns`` (``VARCHAR(64)`` -> ``varchar``) for a binary ``COPY``."""
    return [table.c[c].type.compile(dialect=conn.dialect).split("(")[0].lower() for c in columns]


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, binary: bool = False
) -> None:
    """Insert ``rows`` (sequences in ``columns`` order) into ``table`` within the current transaction.

    ``binary`` sends a PostgreSQL ``COPY`` in binary format: hashes and
    entry bodies then travel as raw bytes instead of hex-escaped text. It
    needs every value in the Python type of its column, so a JSON column
    given as ready-made text (the figure cells' counts) must stay on text.
    """
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.driver_connection  # psycopg.Connection: has cursor().copy()
        suffix = " (FORMAT BINARY)" if binary else ""
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN{suffix}") as copy:
            if binary:
                copy.set_types(_copy_types(conn, table, columns))
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", _sqlite_rows(table, columns, rows))
