"""Report store: annotations, shares, disclosed snapshots and disclosures, party registry.

Revision ID: 0001_report_store
Revises: 
Create Date: 2026-11-23 18:14:34.092127
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001_report_store'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('annotations',
    sa.Column('provider_agb', sa.String(length=8), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('indicator', sa.String(length=32), nullable=False),
    sa.Column('story', sa.Text(), nullable=True),
    sa.Column('recognition', sa.Text(), nullable=True),
    sa.Column('explanation', sa.Text(), nullable=True),
    sa.Column('appraisal', sa.Text(), nullable=True),
    sa.Column('needs', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_oin', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('provider_agb', 'period', 'indicator', name=op.f('pk_annotations'))
    )
    op.create_table('disclosed_snapshots',
    sa.Column('provider_agb', sa.String(length=8), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('data_version', sa.String(length=64), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('provider_agb', 'period', 'data_version', name=op.f('pk_disclosed_snapshots'))
    )
    op.create_table('disclosures',
    sa.Column('provider_agb', sa.String(length=8), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('gemeente_code', sa.String(length=6), nullable=False),
    sa.Column('data_version', sa.String(length=64), nullable=False),
    sa.Column('first_served_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('provider_agb', 'period', 'gemeente_code', 'data_version', name=op.f('pk_disclosures'))
    )
    with op.batch_alter_table('disclosures', schema=None) as batch_op:
        batch_op.create_index('ix_disclosures_gemeente', ['gemeente_code'], unique=False)

    op.create_table('parties',
    sa.Column('oin', sa.String(length=20), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('slug', sa.String(length=100), nullable=False),
    sa.Column('agb', sa.String(length=8), nullable=True),
    sa.Column('gemeente_code', sa.String(length=6), nullable=True),
    sa.PrimaryKeyConstraint('oin', name=op.f('pk_parties')),
    sa.UniqueConstraint('agb', name=op.f('uq_parties_agb')),
    sa.UniqueConstraint('gemeente_code', name=op.f('uq_parties_gemeente_code'))
    )
    op.create_table('shares',
    sa.Column('provider_agb', sa.String(length=8), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('gemeente_code', sa.String(length=6), nullable=False),
    sa.Column('first_granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('granted_by_oin', sa.String(length=20), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_oin', sa.String(length=20), nullable=True),
    sa.PrimaryKeyConstraint('provider_agb', 'period', 'gemeente_code', name=op.f('pk_shares'))
    )
    with op.batch_alter_table('shares', schema=None) as batch_op:
        batch_op.create_index('ix_shares_gemeente_period', ['gemeente_code', 'period'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('shares', schema=None) as batch_op:
        batch_op.drop_index('ix_shares_gemeente_period')

    op.drop_table('shares')
    op.drop_table('parties')
    with op.batch_alter_table('disclosures', schema=None) as batch_op:
        batch_op.drop_index('ix_disclosures_gemeente')

    op.drop_table('disclosures')
    op.drop_table('disclosed_snapshots')
    op.drop_table('annotations')

