"""A timestamp goes into the database and comes out as the same moment, in UTC, with its zone.

The control shows why the column type exists: SQLite gives a plain
``DateTime(timezone=True)`` back without its zone, which is how ``generatedAt``
lost its offset.
"""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, create_engine, insert, select
from sqlalchemy.exc import StatementError

from ttp.timestamps import UTCDateTime, UtcDatetime, rfc3339

SUMMER = dt.timezone(dt.timedelta(hours=2))
MOMENT = dt.datetime(2026, 7, 1, 14, 30, 5, 123456, tzinfo=SUMMER)


def _table(column_type: object) -> tuple[MetaData, Table]:
    meta = MetaData()
    return meta, Table("t", meta, Column("id", Integer, primary_key=True), Column("at", column_type))


def test_a_timestamp_comes_back_as_the_same_moment_in_utc(db_url: str) -> None:
    meta, table = _table(UTCDateTime())
    engine = create_engine(db_url)
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table).values(id=1, at=MOMENT))
        back = conn.execute(select(table.c.at)).scalar_one()
    assert back == MOMENT and back.utcoffset() == dt.timedelta(0)
    assert back.tzinfo is not None


def test_a_naive_timestamp_is_refused_not_guessed(db_url: str) -> None:
    meta, table = _table(UTCDateTime())
    engine = create_engine(db_url)
    meta.create_all(engine)
    with pytest.raises(StatementError), engine.begin() as conn:
        conn.execute(insert(table).values(id=1, at=dt.datetime(2026, 7, 1, 12)))  # noqa: DTZ001


def test_control_sqlite_drops_the_zone_of_a_plain_timestamp_column(tmp_path: object) -> None:
    meta, table = _table(DateTime(timezone=True))
    engine = create_engine(f"sqlite:///{tmp_path}/plain.sqlite3")
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table).values(id=1, at=MOMENT.astimezone(dt.UTC)))
        back = conn.execute(select(table.c.at)).scalar_one()
    assert back.tzinfo is None  # what the feeds then served as "generatedAt" without an offset


class Doc(BaseModel):
    generatedAt: UtcDatetime  # noqa: N815


def test_a_document_serves_its_timestamps_in_utc_with_z() -> None:
    assert Doc(generatedAt=MOMENT).model_dump_json() == '{"generatedAt":"2026-07-01T12:30:05.123456Z"}'
    with pytest.raises(ValidationError):
        Doc(generatedAt=dt.datetime(2026, 7, 1, 12))  # noqa: DTZ001
    assert Doc.model_json_schema()["properties"]["generatedAt"]["format"] == "date-time"
    assert rfc3339(MOMENT) == "2026-07-01T12:30:05Z"
