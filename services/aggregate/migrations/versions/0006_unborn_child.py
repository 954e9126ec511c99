"""trajectories of an unborn child are counted apart

The CBS Informatieprotocol has two BSN codes that are not a BSN: 000000000 (no
or unknown BSN) and 999999999 (an unborn child). Both are linked by the
fallback key (``bsn_known`` false); ``unborn`` tells the second apart so the
outputs can count them separately. Rows stored before were all delivered
with 999999999 meaning "unknown", so they stay false.

Revision ID: 0006_unborn_child
Revises: 0005_keyed_content_hash
Create Date: 2026-12-08 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_unborn_child"
down_revision: str | None = "0005_keyed_content_hash"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trajectories") as batch:
        batch.add_column(sa.Column("unborn", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("trajectories") as batch:
        batch.drop_column("unborn")
