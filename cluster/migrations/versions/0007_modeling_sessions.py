"""modeling sessions (ProForma)

Revision ID: 0007_modeling
Revises: 0006_users_audit
Create Date: 2026-12-03 12:30:00
"""
from alembic import op
import sqlalchemy as sa
import cluster.catalog.models


revision = '0007_modeling'
down_revision = '0006_users_audit'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('modeling_sessions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('portfolio_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('original', sa.JSON(), nullable=False),
    sa.Column('modified', sa.JSON(), nullable=False),
    sa.Column('cash', sa.Float(), nullable=False),
    sa.Column('created_at', cluster.catalog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', cluster.catalog.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('modeling_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_modeling_sessions_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('modeling_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_modeling_sessions_user_id'))
    op.drop_table('modeling_sessions')
