"""Report tables (portfolio spec 8): generated reports and user report templates."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
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
