"""prepared batches no longer hold their rows

A delivery's first phase classifies the records by their keys; the rows come
with the commit, after their audit entries are durable. Staging every batch's
rows as one large value (written, then cleared at commit) cost about a sixth
of the ingest throughput. A batch prepared but not committed at upgrade time
was never acknowledged; its resend is prepared again.

Revision ID: 0004_no_staged_payload
Revises: 0003_child_periods
Create Date: 2026-12-04 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_no_staged_payload"
down_revision: str | None = "0003_child_periods"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trajectory_batches") as batch:
        batch.drop_column("payload")


def downgrade() -> None:
    with op.batch_alter_table("trajectory_batches") as batch:
        batch.add_column(sa.Column("payload", sa.LargeBinary(), nullable=True))
