"""batch commits logged through an outbox; withdrawals prepared before they are committed

``trajectory_batches`` gains the batch's records digest and when its
``batch-committed`` log entry was durable (null: still to append), so the log
tells a stored batch from one prepared and abandoned. ``withdrawals`` become
two-phase: the rows a withdrawal will remove are recorded when it is
prepared, the log entry says which, and only the commit deletes them.
Withdrawals before this revision were deleted and logged at once: committed.

Revision ID: 0007_logged_commits
Revises: 0006_unborn_child
Create Date: 2026-12-08 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_logged_commits"
down_revision: str | None = "0006_unborn_child"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trajectory_batches") as batch:
        batch.add_column(sa.Column("records_digest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("commit_logged_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("withdrawals") as batch:
        batch.alter_column("person_id", existing_type=sa.BigInteger(), nullable=True)
        batch.add_column(sa.Column("withdrawal_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("request_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("state", sa.String(10), nullable=False, server_default="committed"))
        batch.add_column(sa.Column("record_ids", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("periods", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_unique_constraint("uq_withdrawals_withdrawal_id", ["withdrawal_id"])
        batch.create_index("ix_withdrawals_request_hash", ["request_hash"])


def downgrade() -> None:
    with op.batch_alter_table("withdrawals") as batch:
        batch.drop_index("ix_withdrawals_request_hash")
        batch.drop_constraint("uq_withdrawals_withdrawal_id", type_="unique")
        for column in ("committed_at", "periods", "record_ids", "state", "request_hash", "withdrawal_id"):
            batch.drop_column(column)
    with op.batch_alter_table("trajectory_batches") as batch:
        batch.drop_column("commit_logged_at")
        batch.drop_column("records_digest")
