"""The pseudonymised trajectory store, owned by the aggregate service alone.

What is here is what the spec allows and nothing more: a pseudonymous person
key, the provider, PC4 (never the full postcode), gemeente, age at end and age
band (never a birth date), care type, dates, termination reason, legal basis
and the measurements. Rows are purged when their retention ends.

Child rows (measurements, goals) are keyed by (provider, recordId) rather than
a generated id, so a whole batch inserts with ``executemany`` and no round trip
per record.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ttp.db import NAMING
from ttp.registry import parties_table
from ttp.timestamps import UTCDateTime


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


parties = parties_table(Base.metadata)


class Person(Base):
    """A pseudonymous person: the link between trajectories of one client (indicator 3.2)."""

    __tablename__ = "persons"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


class PersonPseudonym(Base):
    """Pseudonyms of a person under each HMAC key version still in use (rotation keeps linkage)."""

    __tablename__ = "person_pseudonyms"
    key_version: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), index=True)


class Trajectory(Base):
    """One ended trajectory, minimised."""

    __tablename__ = "trajectories"
    provider_agb: Mapped[str] = mapped_column(String(8), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    key_version: Mapped[int] = mapped_column(SmallInteger)
    bsn_known: Mapped[bool] = mapped_column(Boolean)
    #: Delivered with the protocol's unborn-child code (999999999); counted apart from no BSN.
    unborn: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    trajectory_ref: Mapped[str] = mapped_column(String(64))
    pc4: Mapped[str] = mapped_column(String(4))
    gemeente: Mapped[str] = mapped_column(String(6))
    age_at_end: Mapped[int] = mapped_column(SmallInteger)
    age_band: Mapped[str] = mapped_column(String(5))
    sector: Mapped[str] = mapped_column(String(20))
    freely_accessible: Mapped[bool] = mapped_column(Boolean)
    hulpvorm: Mapped[str] = mapped_column(String(2))
    referrer: Mapped[str] = mapped_column(String(2))
    started_in_crisis: Mapped[bool] = mapped_column(Boolean)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    period: Mapped[str] = mapped_column(String(7))
    termination_reason: Mapped[str] = mapped_column(String(2))
    legal_basis: Mapped[str] = mapped_column(String(24))
    consent_by: Mapped[str | None] = mapped_column(String(10), nullable=True)
    batch_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_trajectories_period_gemeente", "period", "gemeente"),
        Index("ix_trajectories_period_provider", "period", "provider_agb"),
        Index("ix_trajectories_person_start", "person_id", "start_date"),
    )


class Measurement(Base):
    """One informant's answers at the end of a trajectory."""

    __tablename__ = "measurements"
    provider_agb: Mapped[str] = mapped_column(String(8), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    informant: Mapped[str] = mapped_column(String(8), primary_key=True)
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    without_help: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    problem_change: Mapped[str | None] = mapped_column(String(24), nullable=True)
    goal_overall: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    #: The trajectory's period, repeated so a recompute reads a period's answers without a join.
    period: Mapped[str] = mapped_column(String(7))

    __table_args__ = (
        ForeignKeyConstraint(
            ["provider_agb", "record_id"],
            ["trajectories.provider_agb", "trajectories.record_id"],
            ondelete="CASCADE",
        ),
        Index("ix_measurements_period", "period"),
    )


class GoalScore(Base):
    """Attainment of one agreed goal (indicator 3.4 per goal)."""

    __tablename__ = "goal_scores"
    provider_agb: Mapped[str] = mapped_column(String(8), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    informant: Mapped[str] = mapped_column(String(8), primary_key=True)
    goal_index: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    score: Mapped[int] = mapped_column(SmallInteger)
    #: The trajectory's period (as for measurements).
    period: Mapped[str] = mapped_column(String(7))

    __table_args__ = (
        ForeignKeyConstraint(
            ["provider_agb", "record_id"],
            ["trajectories.provider_agb", "trajectories.record_id"],
            ondelete="CASCADE",
        ),
        Index("ix_goal_scores_period", "period"),
    )


class TrajectoryBatch(Base):
    """Two-phase delivery of one ingest batch: prepared, then committed once audited.

    A prepared batch holds only its classification and the hash of its
    records' ids and content hashes; the rows arrive with the commit and are
    stored in one transaction. The per-record outcome is kept so a resend of
    the same batch gets the same receipt (idempotency), not "all duplicates".
    """

    __tablename__ = "trajectory_batches"
    provider_agb: Mapped[str] = mapped_column(String(8), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10))
    outcome: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    committed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Digest of the batch's (recordId, contentHash) pairs, as in ingest's ``batch-received`` entry.
    records_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: When the ``batch-committed`` entry was durable in the log; null = still to append (an outbox).
    commit_logged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Withdrawal(Base):
    """A withdrawal, two-phase: prepared (which rows will go), audited, then committed (rows deleted).

    A consent withdrawal names a person (``person_id``): a record of this
    person from this provider may not come back under consent given on or
    before ``withdrawn_on``, from the moment it is prepared. A withdrawal of
    named records (a period re-delivery without them) has no person.
    ``request_hash`` identifies the request, so a resend finds its withdrawal
    and gets the same rows, the same log entry and one deletion.
    """

    __tablename__ = "withdrawals"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    provider_agb: Mapped[str] = mapped_column(String(8), index=True)
    person_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), index=True,
                                                  nullable=True)
    trajectory_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    withdrawn_on: Mapped[dt.date] = mapped_column(Date)
    removed: Mapped[int] = mapped_column(Integer)
    withdrawal_id: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    state: Mapped[str] = mapped_column(String(10), default="committed")
    record_ids: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    periods: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    committed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
