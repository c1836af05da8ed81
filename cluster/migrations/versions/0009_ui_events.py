"""ui sync events (spec 10)

Revision ID: 0009_ui_events
Revises: 0008_ai_agent
Create Date: 2026-12-03 15:30:00
"""
from alembic import op
import sqlalchemy as sa
import cluster.catalog.models


revision = '0009_ui_events'
down_revision = '0008_ai_agent'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ui_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('token_fp', sa.String(length=32), nullable=True),
    sa.Column('created_at', cluster.catalog.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ui_events', schema=None) as batch_op:
        batch_op.create_index('ix_ui_events_user_session_id', ['user_id', 'session_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ui_events_token_fp'), ['token_fp'], unique=False)
        batch_op.create_index(batch_op.f('ix_ui_events_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ui_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ui_events_created_at'))
        batch_op.drop_index(batch_op.f('ix_ui_events_token_fp'))
        batch_op.drop_index('ix_ui_events_user_session_id')
    op.drop_table('ui_events')
