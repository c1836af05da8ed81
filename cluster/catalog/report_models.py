"""Report tables (portfolio spec 8): generated reports and user report templates."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cluster.catalog.models import Base, new_id, utcnow


class Report(Base):
    """One generated report: its request, its job, and the stored file (by content SHA-256).

    ``sha``/``path`` are set only once the whole file is in the artifact store, in the same
    commit that marks the report ``completed``: a report is never listed half written."""

    __tablename__ = "reports"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("rpt"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(8))
    params: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class ReportTemplate(Base):
    """A user's report template (spec 8.2): a type, its sections and a period."""

    __tablename__ = "report_templates"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("tpl"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(8), default="pdf")
    sections: Mapped[list] = mapped_column(default=list)
    period: Mapped[str] = mapped_column(String(16), default="1d")
    params: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReportSchedule(Base):
    """A report sent by e-mail on a cron schedule (spec 8.3), in the user's time zone."""

    __tablename__ = "report_schedules"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sched"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    template_id: Mapped[str] = mapped_column(String(40))
    cron: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    trading_days_only: Mapped[bool] = mapped_column(default=True)
    email: Mapped[str] = mapped_column(String(254))
    params: Mapped[dict] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    #: fire times up to here have been handled (sent, failed or skipped): catch-up starts after it
    checked_until: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReportScheduleRun(Base):
    """The run log: one row per fire time, claimed before any work (unique per schedule and
    time), so a fire time is never sent twice whatever the restarts."""

    __tablename__ = "report_schedule_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("srun"))
    schedule_id: Mapped[str] = mapped_column(ForeignKey("report_schedules.id", ondelete="CASCADE"), index=True)
    scheduled_for: Mapped[dt.datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|sent|failed|skipped
    report_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    smtp_reply: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)

    __table_args__ = (UniqueConstraint("schedule_id", "scheduled_for", name="uq_report_schedule_run_time"),)
