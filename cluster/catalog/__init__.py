"""The catalog: every row Sigma keeps (SQLAlchemy 2; SQLite by default, PostgreSQL for a cluster)."""

from cluster.catalog import ai_models, lab_models, portfolio_models, proforma_models, report_models, ui_models  # noqa: F401 - register the tables on Base
from cluster.catalog.db import Catalog, get_catalog, owned_row, prepare_catalog, upgrade_schema
from cluster.catalog.lab_models import (
    Backtest,
    LabModel,
    LeaderboardEntry,
    Matrix,
    Signal,
    SignalSubscription,
    Sweep,
    SweepChunk,
    Training,
    Webhook,
    WebhookDelivery,
)
from cluster.catalog.models import AuditEvent, Base, Job, User
from cluster.catalog.ai_models import AIConfirmation, AIContext, AIWorkflow, AIWorkflowRun
from cluster.catalog.proforma_models import ModelingSession
from cluster.catalog.portfolio_models import AlertRule, BatchResult, BatchRun, Portfolio, Position, PositionTag, Snapshot, Tag
from cluster.catalog.report_models import Report, ReportSchedule, ReportScheduleRun, ReportTemplate
from cluster.catalog.ui_models import UIEvent

__all__ = [
    "owned_row", "prepare_catalog",
    "AIConfirmation", "AIContext", "AIWorkflow", "AIWorkflowRun", "AlertRule", "AuditEvent", "Backtest", "Base", "BatchResult", "BatchRun", "Catalog", "Job", "LabModel", "LeaderboardEntry",
    "Matrix", "ModelingSession", "Portfolio", "Position", "PositionTag", "Report", "ReportSchedule", "ReportScheduleRun", "ReportTemplate", "Signal", "SignalSubscription",
    "Snapshot", "Sweep", "SweepChunk", "Tag", "Training", "UIEvent", "User",
    "Webhook", "WebhookDelivery", "get_catalog", "upgrade_schema",
]
