"""reports: generated reports, report templates, backtest series artifacts (issue 14)

Revision ID: 0005_reports
Revises: 0004
Create Date: 2026-12-03 12:30:00
"""
from alembic import op
import sqlalchemy as sa
import cluster.catalog.models


revision = '0005_reports'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reports',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('job_id', sa.String(length=40), nullable=True),
    sa.Column('sha', sa.String(length=64), nullable=True),
    sa.Column('path', sa.String(length=255), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', cluster.catalog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', cluster.catalog.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reports_user_id'), ['user_id'], unique=False)

    op.create_table('report_templates',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('sections', sa.JSON(), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('created_at', cluster.catalog.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('report_templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_templates_user_id'), ['user_id'], unique=False)

    op.create_table('report_schedules',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.String(length=40), nullable=False),
    sa.Column('cron', sa.String(length=120), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('trading_days_only', sa.Boolean(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('checked_until', cluster.catalog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', cluster.catalog.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('report_schedules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_schedules_user_id'), ['user_id'], unique=False)

    op.create_table('report_schedule_runs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('schedule_id', sa.String(length=40), nullable=False),
    sa.Column('scheduled_for', cluster.catalog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('report_id', sa.String(length=40), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('smtp_reply', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', cluster.catalog.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', cluster.catalog.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['schedule_id'], ['report_schedules.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('schedule_id', 'scheduled_for', name='uq_report_schedule_run_time')
    )
    with op.batch_alter_table('report_schedule_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_schedule_runs_schedule_id'), ['schedule_id'], unique=False)

    with op.batch_alter_table('backtests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('series_sha', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('series_path', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('backtests', schema=None) as batch_op:
        batch_op.drop_column('series_path')
        batch_op.drop_column('series_sha')
    with op.batch_alter_table('report_schedule_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_schedule_runs_schedule_id'))
    op.drop_table('report_schedule_runs')
    with op.batch_alter_table('report_schedules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_schedules_user_id'))
    op.drop_table('report_schedules')
    with op.batch_alter_table('report_templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_templates_user_id'))
    op.drop_table('report_templates')
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reports_user_id'))
    op.drop_table('reports')
