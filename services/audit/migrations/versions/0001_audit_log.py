"""Audit log: entries, stored subtree hashes, tree head, signed checkpoints, parties.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("idx", BigId, autoincrement=False, nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor_oin", sa.String(length=20), nullable=False),
        sa.Column("recorded_by", sa.String(length=20), nullable=False),
        sa.Column("provider", sa.String(length=8), nullable=True),
        sa.Column("period", sa.String(length=7), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_audit_entries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_audit_entries_idempotency_key")),
    )
    op.create_index("ix_audit_entries_kind", "audit_entries", ["kind", "idx"])
    op.create_index("ix_audit_entries_period", "audit_entries", ["period", "idx"])
    op.create_index("ix_audit_entries_provider_period", "audit_entries", ["provider", "period", "idx"])
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("idx", BigId, autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_audit_nodes")),
    )
    op.create_table(
        "audit_tree_head",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("compact_range", sa.LargeBinary(), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_tree_head")),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("tree_size", BigId, autoincrement=False, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_audit_checkpoints")),
    )
    op.create_table(
        "parties",
        sa.Column("oin", sa.String(length=20), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("agb", sa.String(length=8), nullable=True),
        sa.Column("gemeente_code", sa.String(length=6), nullable=True),
        sa.PrimaryKeyConstraint("oin", name=op.f("pk_parties")),
        sa.UniqueConstraint("agb", name=op.f("uq_parties_agb")),
        sa.UniqueConstraint("gemeente_code", name=op.f("uq_parties_gemeente_code")),
    )


def downgrade() -> None:
    op.drop_table("parties")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_tree_head")
    op.drop_table("audit_nodes")
    op.drop_index("ix_audit_entries_provider_period", table_name="audit_entries")
    op.drop_index("ix_audit_entries_period", table_name="audit_entries")
    op.drop_index("ix_audit_entries_kind", table_name="audit_entries")
    op.drop_table("audit_entries")
