"""Rows by a list of keys, straight through the driver: the lookups on the delivery hot path.

A delivery looks up thousands of keys at once (live content hashes and
persons in aggregate, idempotency keys in the audit log). SQLAlchemy's
expanding ``IN`` compiles and binds every value in Python; these statements
go to the driver as they are: one ``= ANY(array)`` on PostgreSQL, chunks of
``IN (?, ...)`` on SQLite (whose statements take a bounded number of
parameters). They run inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table


def lookup_in(
    conn: Connection, table: Table, key: str, wanted: Sequence[str], values: Sequence[Any], *,
    equal: Mapping[str, Any] | None = None, chunk: int = 1000,
) -> list[tuple[Any, ...]]:
    """Rows ``(key, *wanted)`` of ``table`` whose ``key`` is in ``values`` and whose ``equal`` columns match.

    Put the leading columns of an index in ``equal`` (a provider, a key
    version) so the lookup is a range of that index, not a scan.
    """
    if not values:
        return []
    cols = ", ".join([key, *wanted])
    fixed = dict(equal or {})
    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    prefix = "".join(f"{name} = {mark} AND " for name in fixed)
    if postgres:
        sql = f"SELECT {cols} FROM {table.name} WHERE {prefix}{key} = ANY(%s)"
        return [tuple(r) for r in conn.exec_driver_sql(sql, (*fixed.values(), list(values)))]
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(values), chunk):
        part = values[i : i + chunk]
        sql = f"SELECT {cols} FROM {table.name} WHERE {prefix}{key} IN ({', '.join('?' for _ in part)})"
        out.extend(tuple(r) for r in conn.exec_driver_sql(sql, (*fixed.values(), *part)))
    return out
