"""outcome aggregates: period freshness, materialised cells, domains, released pattern

Revision ID: 0002_outcome_aggregates
Revises: 0001_trajectory_store
Create Date: 2026-11-23 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_outcome_aggregates"
down_revision: str | None = "0001_trajectory_store"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "aggregate_periods",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("dirty_seq", sa.Integer(), nullable=False),
        sa.Column("computed_seq", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("observed_on", sa.Date(), nullable=True),
        sa.Column("released_seq", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("period", name=op.f("pk_aggregate_periods")),
    )
    op.create_table(
        "outcome_cells",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("cell_key", sa.String(length=120), nullable=False),
        sa.Column("view", sa.String(length=12), nullable=False),
        sa.Column("gemeente", sa.String(length=6), nullable=True),
        sa.Column("pc4", sa.String(length=4), nullable=True),
        sa.Column("provider_agb", sa.String(length=8), nullable=True),
        sa.Column("freely_accessible", sa.String(length=5), nullable=True),
        sa.Column("sector", sa.String(length=20), nullable=True),
        sa.Column("hulpvorm", sa.String(length=2), nullable=True),
        sa.Column("age_band", sa.String(length=5), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("layout", sa.Integer(), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("withheld", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("period", "cell_key", name=op.f("pk_outcome_cells")),
    )
    with op.batch_alter_table("outcome_cells", schema=None) as batch_op:
        batch_op.create_index("ix_outcome_cells_period_gemeente", ["period", "gemeente"], unique=False)
        batch_op.create_index("ix_outcome_cells_period_provider", ["period", "provider_agb"], unique=False)
    op.create_table(
        "period_domains",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("dim", sa.String(length=12), nullable=False),
        sa.Column("value", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("period", "dim", "value", name=op.f("pk_period_domains")),
    )
    op.create_table(
        "released_cells",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("cell_key", sa.String(length=120), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("withheld", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("period", "cell_key", name=op.f("pk_released_cells")),
    )


def downgrade() -> None:
    op.drop_table("released_cells")
    op.drop_table("period_domains")
    with op.batch_alter_table("outcome_cells", schema=None) as batch_op:
        batch_op.drop_index("ix_outcome_cells_period_provider")
        batch_op.drop_index("ix_outcome_cells_period_gemeente")
    op.drop_table("outcome_cells")
    op.drop_table("aggregate_periods")
