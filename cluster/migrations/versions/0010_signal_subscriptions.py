"""live signal subscriptions (issue 16)

Revision ID: 0010_signal_subscriptions
Revises: 0009_ui_events
Create Date: 2026-12-03 18:30:00
"""
from alembic import op
import sqlalchemy as sa
import cluster.catalog.models


revision = '0010_signal_subscriptions'
down_revision = '0009_ui_events'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signal_subscriptions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('model_pk', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=80), nullable=False),
    sa.Column('pack_id', sa.String(length=32), nullable=False),
    sa.Column('portfolio_id', sa.String(length=40), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('checked_until', cluster.catalog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_bar_close', cluster.catalog.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.String(length=16), nullable=True),
    sa.Column('last_signal_id', sa.String(length=40), nullable=True),
    sa.Column('last_result', sa.JSON(), nullable=True),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('signals_generated', sa.Integer(), nullable=False),
    sa.Column('created_at', cluster.catalog.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['model_pk'], ['lab_models.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'model_pk', name='uq_signal_subscription_model')
    )
    with op.batch_alter_table('signal_subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signal_subscriptions_model_pk'), ['model_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_signal_subscriptions_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('signal_subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signal_subscriptions_user_id'))
        batch_op.drop_index(batch_op.f('ix_signal_subscriptions_model_pk'))
    op.drop_table('signal_subscriptions')
