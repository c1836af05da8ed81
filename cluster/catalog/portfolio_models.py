"""Portfolio tables: portfolios, positions, tags, snapshots, daily batch runs and their results."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cluster.catalog.models import Base, new_id, utcnow


class Portfolio(Base):
    __tablename__ = "portfolios"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("pf"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    #: The first portfolio of a user is the default one routes use when none is named.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    cash: Mapped[float] = mapped_column(Float, default=0.0)
    base_currency: Mapped[str] = mapped_column(String(3), default="USD")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_portfolio_user_name"),)


class Position(Base):
    """One holding. ``symbol`` is the ticker for stocks and the OCC symbol for options."""

    __tablename__ = "positions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("pos"))
    portfolio_id: Mapped[str] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    underlying: Mapped[str] = mapped_column(String(16), index=True)
    type: Mapped[str] = mapped_column(String(8))  # LONG SHORT LC LP SC SP
    quantity: Mapped[float] = mapped_column(Float)  # signed; contracts for options
    entry_price: Mapped[float] = mapped_column(Float)  # per share, per contract's share price for options
    entry_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    strike: Mapped[float | None] = mapped_column(Float, nullable=True)
    expiry: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    option_right: Mapped[str | None] = mapped_column(String(1), nullable=True)
    multiplier: Mapped[int] = mapped_column(Integer, default=1)
    strategy: Mapped[str | None] = mapped_column(String(120), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    ai_metadata: Mapped[dict | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("portfolio_id", "symbol", name="uq_position_portfolio_symbol"),)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("tag"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    color: Mapped[str | None] = mapped_column(String(16), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_tag_user_name"),)


class PositionTag(Base):
    __tablename__ = "position_tags"

    position_id: Mapped[str] = mapped_column(ForeignKey("positions.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[str] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True)


class Snapshot(Base):
    """End-of-day state of a portfolio (equity, exposures, P&L, Greeks, counts) in ``data``."""

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    portfolio_id: Mapped[str] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"), index=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    data: Mapped[dict] = mapped_column(default=dict)
    batch_run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("portfolio_id", "as_of", name="uq_snapshot_portfolio_date"),)


class BatchRun(Base):
    """One run of the daily batch over every portfolio."""

    __tablename__ = "batch_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("batch"))
    as_of: Mapped[dt.date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running completed partial failed
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # manual schedule
    summary: Mapped[dict | None] = mapped_column(nullable=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class BatchResult(Base):
    """One step (prices, greeks, factors, scenarios, snapshot...) of one portfolio in a batch run.

    Routes serve the latest completed ``result`` per (portfolio, step) and say how old it is.
    """

    __tablename__ = "batch_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("batch_runs.id", ondelete="CASCADE"), index=True)
    portfolio_id: Mapped[str] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running completed failed skipped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict | None] = mapped_column(nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_batch_results_portfolio_step", "portfolio_id", "step"),)


class AlertRule(Base):
    """A user's alert rule: ``condition`` {metric, operator, threshold, sector | tag | ticker}
    evaluated on the priced book (``services.portfolio.alerts``)."""

    __tablename__ = "alert_rules"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("rule"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    condition: Mapped[dict] = mapped_column(default=dict)
    priority: Mapped[str] = mapped_column(String(16), default="high")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
