"""AI agent APIs: confirmations, contexts, workflows and their runs; agent columns on audit_events

Revision ID: 0008_ai_agent
Revises: 0007_modeling
Create Date: 2026-12-03 15:15:00
"""
from alembic import op
import sqlalchemy as sa
import cluster.catalog.models


revision = '0008_ai_agent'
down_revision = '0007_modeling'
branch_labels = None
depends_on = None

UTC = cluster.catalog.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agent_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('session_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('route', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('status', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_audit_events_agent_id'), ['agent_id'], unique=False)
    op.create_table('ai_confirmations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('intent', sa.String(length=40), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('plan', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('agent_id', sa.String(length=128), nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('expires_at', UTC, nullable=False),
    sa.Column('used_at', UTC, nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ai_confirmations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ai_confirmations_user_id'), ['user_id'], unique=False)
    op.create_table('ai_contexts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.String(length=128), nullable=False),
    sa.Column('session_id', sa.String(length=128), nullable=False),
    sa.Column('context_type', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'agent_id', 'session_id', 'context_type', name='uq_ai_context')
    )
    with op.batch_alter_table('ai_contexts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ai_contexts_user_id'), ['user_id'], unique=False)
    op.create_table('ai_workflows',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('cron', sa.String(length=120), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('checked_until', UTC, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ai_workflows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ai_workflows_user_id'), ['user_id'], unique=False)
    op.create_table('ai_workflow_runs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('workflow_id', sa.String(length=40), nullable=False),
    sa.Column('scheduled_for', UTC, nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('job_id', sa.String(length=40), nullable=True),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.Column('finished_at', UTC, nullable=True),
    sa.ForeignKeyConstraint(['workflow_id'], ['ai_workflows.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('workflow_id', 'scheduled_for', name='uq_ai_workflow_run_time')
    )
    with op.batch_alter_table('ai_workflow_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ai_workflow_runs_workflow_id'), ['workflow_id'], unique=False)


def downgrade() -> None:
    for table, index in (('ai_workflow_runs', 'workflow_id'), ('ai_workflows', 'user_id'), ('ai_contexts', 'user_id'),
                         ('ai_confirmations', 'user_id')):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_{index}'))
        op.drop_table(table)
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_agent_id'))
        for column in ('status', 'route', 'session_id', 'agent_id'):
            batch_op.drop_column(column)
