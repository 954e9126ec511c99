"""Ingest's own store: batch receipts, nothing of the records themselves.

Ingest keeps no copy of what it received (spec). It keeps the receipt it
answered, so a provider can fetch it again, and the receipt lists rejected
records by index, recordId and problem codes only (never a submitted value).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import JSON, Engine, MetaData, String, Table, and_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ttp.db import NAMING
from ttp.registry import parties_table
from ttp.timestamps import UTCDateTime


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


parties = parties_table(Base.metadata)


class BatchReceipt(Base):
    """The latest receipt answered for (provider, batchId)."""

    __tablename__ = "batch_receipts"
    provider_agb: Mapped[str] = mapped_column(String(8), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    receipt: Mapped[dict[str, Any]] = mapped_column(JSON)


R = cast(Table, BatchReceipt.__table__)


def save_receipt(engine: Engine, provider: str, batch_id: str, receipt: dict[str, Any]) -> None:
    """Insert or replace the receipt of a batch."""
    values = {
        "provider_agb": provider, "batch_id": batch_id,
        "received_at": dt.datetime.now(dt.UTC), "receipt": receipt,
    }
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            stmt: Any = pg_insert(R).values(**values)
        else:
            stmt = sqlite_insert(R).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["provider_agb", "batch_id"],
            set_={"received_at": values["received_at"], "receipt": receipt},
        )
        conn.execute(stmt)


def load_receipt(engine: Engine, provider: str, batch_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(R.c.receipt).where(and_(R.c.provider_agb == provider, R.c.batch_id == batch_id))
        ).first()
    return dict(row.receipt) if row else None


def delivered_by_another(engine: Engine, provider: str, batch_id: str) -> bool:
    """Whether some other provider delivered a batch with this id (to log a cross-party read)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(R.c.batch_id).where(and_(R.c.batch_id == batch_id, R.c.provider_agb != provider)).limit(1)
        ).first()
    return row is not None
