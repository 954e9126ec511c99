"""Materialised outcome aggregates: what stays once trajectory rows are purged.

Three small tables sit beside the trajectory store (``models.py``) on the same
metadata, so one Alembic history covers both:

* ``aggregate_periods``: per half year, whether its figures are stale. Ingest
  and withdrawal bump ``dirty_seq`` inside their own transaction; a recompute
  records the ``dirty_seq`` it started from in ``computed_seq``. A period is
  stale while ``dirty_seq > computed_seq``, so a batch committed while a
  recompute runs is never lost. ``closed_at`` is set when the period's rows
  have been purged: its aggregates are final from then on.
* ``outcome_cells``: one row per published population cell (every view of
  every output, third-party or internal) with its counts. These are the
  outputs themselves, never anything finer, so keeping them after the purge
  keeps no record-level data.
* ``released_cells``: the disclosure pattern (suppressed cells, withheld
  values) a third party has already been shown for a period. A later
  recompute of the same period (late deliveries, corrections, withdrawals)
  keeps every one of them hidden, so two versions of one period cannot be
  differenced to recover a cell hidden in the first.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.aggregate.models import Base
from ttp.timestamps import UTCDateTime


class AggregatePeriod(Base):
    """Freshness and lifecycle of one period's aggregates."""

    __tablename__ = "aggregate_periods"
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    dirty_seq: Mapped[int] = mapped_column(Integer, default=0)
    computed_seq: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: The date indicator 3.2's follow-up windows were judged against at the last recompute.
    observed_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    #: ``computed_seq`` whose disclosure pattern was last copied into ``released_cells``.
    released_seq: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OutcomeCell(Base):
    """Counts of one population cell of one period (see ``services.aggregate.cells``)."""

    __tablename__ = "outcome_cells"
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    cell_key: Mapped[str] = mapped_column(String(120), primary_key=True)
    view: Mapped[str] = mapped_column(String(12))
    gemeente: Mapped[str | None] = mapped_column(String(6), nullable=True)
    pc4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    provider_agb: Mapped[str | None] = mapped_column(String(8), nullable=True)
    freely_accessible: Mapped[str | None] = mapped_column(String(5), nullable=True)
    sector: Mapped[str | None] = mapped_column(String(20), nullable=True)
    hulpvorm: Mapped[str | None] = mapped_column(String(2), nullable=True)
    age_band: Mapped[str | None] = mapped_column(String(5), nullable=True)
    n: Mapped[int] = mapped_column(Integer)
    #: JSON list of counts in the order of ``indicators.LAYOUT`` (version ``layout``).
    counts: Mapped[str] = mapped_column(Text)
    layout: Mapped[int] = mapped_column(Integer)
    #: Hidden (with every value) in every third-party output.
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Bit mask over ``disclosure.VALUE_FAMILIES``: values withheld for too few responses.
    withheld: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_outcome_cells_period_gemeente", "period", "gemeente"),
        Index("ix_outcome_cells_period_provider", "period", "provider_agb"),
    )


class PeriodDomain(Base):
    """The values each dimension ranges over in a period's outputs.

    Outputs list every cell of their grid, zeros included (shown as hidden like
    any small cell, as CBS shows 0 to 7 as secret), so that a hidden cell does
    not give away that it is non-empty. The grid's rows come from here.
    """

    __tablename__ = "period_domains"
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    dim: Mapped[str] = mapped_column(String(12), primary_key=True)
    value: Mapped[str] = mapped_column(String(20), primary_key=True)


class ReleasedCell(Base):
    """A cell (or value) of a period that a third party has seen hidden."""

    __tablename__ = "released_cells"
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    cell_key: Mapped[str] = mapped_column(String(120), primary_key=True)
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    withheld: Mapped[int] = mapped_column(Integer, default=0)
