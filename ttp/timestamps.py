"""Timestamps are UTC and carry their offset: in the database, in every response and document.

SQLite keeps a ``DateTime(timezone=True)`` column as text without a zone and
hands it back naive, so a moment written as UTC came back without an offset and
left a service as ``"generatedAt": "2026-07-01T12:00:00"``, which a recipient
reads as local time (two hours off in a Dutch summer). RFC 3339, the format the
OpenAPI ``date-time`` refers to, requires the offset. Two pieces make that hold
on both backends:

- ``UTCDateTime``, the column type of every timestamp column: it refuses a
  naive value on the way in and gives back an aware UTC one on the way out.
- ``UtcDatetime``, the pydantic type of every timestamp field of a response
  or document: it refuses a naive value (a programming error, never guessed)
  and serialises in UTC with ``Z``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime
from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def as_utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` (aware) in UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timestamp without a time zone is ambiguous; pass an aware datetime")
    return moment.astimezone(dt.UTC)


def rfc3339(moment: dt.datetime) -> str:
    """``moment`` as RFC 3339 in UTC, to the second: ``2026-07-20T11:30:00Z``."""
    return as_utc(moment).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp column: aware UTC in, aware UTC out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        # SQLite: the text we wrote in UTC, read back naive; PostgreSQL: aware in the session's zone.
        moment: dt.datetime = value
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


#: A timestamp field of a response or document: must be aware, is served in UTC (``...Z``).
UtcDatetime = Annotated[AwareDatetime, AfterValidator(as_utc)]
