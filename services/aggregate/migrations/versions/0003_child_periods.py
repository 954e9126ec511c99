"""measurements and goal scores carry their trajectory's period

A recompute copies one period's answers out of the store (``columnar.py``);
with the period on the row that is an index range scan instead of a join with
the trajectories. Existing rows take their trajectory's period.

Revision ID: 0003_child_periods
Revises: 0002_outcome_aggregates
Create Date: 2026-12-04 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_child_periods"
down_revision: str | None = "0002_outcome_aggregates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("measurements", "goal_scores")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("period", sa.String(length=7), nullable=True))
        op.execute(
            f"UPDATE {table} SET period = (SELECT t.period FROM trajectories t "
            f"WHERE t.provider_agb = {table}.provider_agb AND t.record_id = {table}.record_id)"
        )
        with op.batch_alter_table(table) as batch:
            batch.alter_column("period", existing_type=sa.String(length=7), nullable=False)
        op.create_index(op.f(f"ix_{table}_period"), table, ["period"])


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(op.f(f"ix_{table}_period"), table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("period")
