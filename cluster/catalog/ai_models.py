"""AI agent tables (portfolio spec 9): confirmations of ``/ai/execute`` plans, saved agent
contexts, workflows and their run log. The agent audit trail reuses ``audit_events``
(``cluster.catalog.models.AuditEvent``: its ``agent_id``, ``session_id``, ``route`` and
``status`` columns)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cluster.catalog.models import Base, new_id, utcnow


class AIConfirmation(Base):
    """A plan ``/ai/execute`` returned with ``confirmation_required``: applied once by
    ``POST /ai/execute/{id}/confirm`` before ``expires_at`` (single use, per user)."""

    __tablename__ = "ai_confirmations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("confirm"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    intent: Mapped[str] = mapped_column(String(40))
    parameters: Mapped[dict] = mapped_column(default=dict)
    plan: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending used
    agent_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    result: Mapped[dict | None] = mapped_column(nullable=True)


class AIContext(Base):
    """An agent's saved context, one per user, agent, agent session and context type."""

    __tablename__ = "ai_contexts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str] = mapped_column(String(128))
    session_id: Mapped[str] = mapped_column(String(128))
    context_type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("user_id", "agent_id", "session_id", "context_type", name="uq_ai_context"),)


class AIWorkflow(Base):
    """A workflow: a cron trigger and a list of actions run as one job per fire time."""

    __tablename__ = "ai_workflows"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("wf"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    cron: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    actions: Mapped[list] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    checked_until: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AIWorkflowRun(Base):
    """The run log: one row per fire time (claimed before any work; unique per workflow and
    time) or manual run, with each action's outcome."""

    __tablename__ = "ai_workflow_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("wfrun"))
    workflow_id: Mapped[str] = mapped_column(ForeignKey("ai_workflows.id", ondelete="CASCADE"), index=True)
    scheduled_for: Mapped[dt.datetime] = mapped_column()
    trigger: Mapped[str] = mapped_column(String(16), default="schedule")  # schedule manual
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued running completed failed
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    results: Mapped[list] = mapped_column(default=list)
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)

    __table_args__ = (UniqueConstraint("workflow_id", "scheduled_for", name="uq_ai_workflow_run_time"),)
