"""What the report service stores: annotations, shares, and what was disclosed.

The figures themselves are never stored here; they belong to aggregate and are
fetched on read. What the report service owns is what the provider adds to
them (its story behind the numbers) and whom it chose to show the shareable
variant to. ``disclosures`` and ``disclosed_snapshots`` keep, per gemeente,
the exact shareable figures it was served, because the disclosure check has
to reason over everything a recipient has seen, including versions that have
since changed and shares that have since been revoked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Index, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ttp.db import NAMING
from ttp.registry import parties_table
from ttp.timestamps import UTCDateTime


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


parties = parties_table(Base.metadata)


class Annotation(Base):
    """A provider's story behind one indicator of one period, and its answers to the 4 questions.

    Free text a gemeente may read; the API rejects anything that looks like a BSN or postcode.
    """

    __tablename__ = "annotations"
    provider_agb: Mapped[str] = mapped_column(String(8), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    indicator: Mapped[str] = mapped_column(String(32), primary_key=True)
    story: Mapped[str | None] = mapped_column(Text, nullable=True)
    recognition: Mapped[str | None] = mapped_column(Text, nullable=True)
    explanation: Mapped[str | None] = mapped_column(Text, nullable=True)
    appraisal: Mapped[str | None] = mapped_column(Text, nullable=True)
    needs: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_by_oin: Mapped[str] = mapped_column(String(20))


class Share(Base):
    """The shareable variant of one period, made readable to one gemeente.

    A revoke keeps the row (``revoked_at`` set): the gemeente may have kept a
    copy, so the disclosure check must still count what it could have read.
    """

    __tablename__ = "shares"
    provider_agb: Mapped[str] = mapped_column(String(8), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    gemeente_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    first_granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    granted_by_oin: Mapped[str] = mapped_column(String(20))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by_oin: Mapped[str | None] = mapped_column(String(20), nullable=True)

    __table_args__ = (Index("ix_shares_gemeente_period", "gemeente_code", "period"),)


class DisclosedSnapshot(Base):
    """The shareable figures of one report version, as served to at least one gemeente."""

    __tablename__ = "disclosed_snapshots"
    provider_agb: Mapped[str] = mapped_column(String(8), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    data_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Disclosure(Base):
    """Gemeente ``gemeente_code`` was served version ``data_version`` of a shared report."""

    __tablename__ = "disclosures"
    provider_agb: Mapped[str] = mapped_column(String(8), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    gemeente_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    data_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_served_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_disclosures_gemeente", "gemeente_code"),)
