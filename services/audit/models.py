"""The audit log's tables, owned by the audit service alone.

* ``audit_entries``: one row per leaf, with the exact bytes that were hashed
  and the leaf hash, plus filter columns (provider, period, kind) copied out
  of the entry so auditors can query without parsing JSON.
* ``audit_nodes``: hashes of complete perfect subtrees at every
  ``NODE_STRIDE``-th level. A node at another level is at most
  ``2**(NODE_STRIDE-1)`` stored hashes away, so proofs and roots of any past
  size read a handful of rows and never rehash the log, while the log stores
  only about one extra row per ``2**NODE_STRIDE - 1`` leaves.
* ``audit_tree_head``: a single row, the current size, root, compact range and
  signed checkpoint. Every append locks it, which serialises writers across
  processes as well as within one.
* ``audit_checkpoints``: every checkpoint the log signed, so an auditor can
  fetch the one for any size a receipt mentions.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, MetaData, SmallInteger, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ttp.db import NAMING
from ttp.registry import parties_table
from ttp.timestamps import UTCDateTime

#: Levels of the tree whose complete nodes are stored (every 4th: 4, 8, 12, ...).
NODE_STRIDE = 4


BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


parties = parties_table(Base.metadata)


class Entry(Base):
    """One leaf of the log."""

    __tablename__ = "audit_entries"
    idx: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    actor_oin: Mapped[str] = mapped_column(String(20))
    recorded_by: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str | None] = mapped_column(String(8), nullable=True)
    period: Mapped[str | None] = mapped_column(String(7), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    body: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_audit_entries_provider_period", "provider", "period", "idx"),
        Index("ix_audit_entries_kind", "kind", "idx"),
        Index("ix_audit_entries_period", "period", "idx"),
    )


class Node(Base):
    """Hash of the complete perfect subtree ``(level, idx)``, for stored levels only."""

    __tablename__ = "audit_nodes"
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    idx: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class TreeHead(Base):
    """The one current head of the log; its row lock is the single-writer lock."""

    __tablename__ = "audit_tree_head"
    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    compact_range: Mapped[bytes] = mapped_column(LargeBinary)
    checkpoint: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SignedCheckpoint(Base):
    """A checkpoint the log signed, by tree size."""

    __tablename__ = "audit_checkpoints"
    tree_size: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
