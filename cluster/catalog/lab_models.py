"""Lab tables: models, matrices, trainings, backtests, sweeps, leaderboard results, webhooks."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cluster.catalog.models import Base, new_id, utcnow


class LabModel(Base):
    """A user's signal model made from a pack template; ``model_id`` is unique per user."""

    __tablename__ = "lab_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(80))
    pack_id: Mapped[str] = mapped_column(String(32), index=True)
    template_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(160), nullable=True)
    risk_profile: Mapped[str] = mapped_column(String(16), default="Balanced")
    config: Mapped[dict] = mapped_column(default=dict)
    metrics: Mapped[dict | None] = mapped_column(nullable=True)  # latest backtest metrics
    lineage: Mapped[dict | None] = mapped_column(nullable=True)  # matrix_sha, config_sha, weights_sha, code_version
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("user_id", "model_id", name="uq_lab_model_user_model_id"),)


class Matrix(Base):
    """A feature matrix: ``matrix_sha`` hashes the inputs; ``content_sha`` the Parquet bytes."""

    __tablename__ = "matrices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("lab_models.id", ondelete="CASCADE"), index=True)
    matrix_sha: Mapped[str] = mapped_column(String(64), index=True)
    content_sha: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(255))
    rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    description: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("model_pk", "matrix_sha", name="uq_matrix_model_sha"),)


class Training(Base):
    """One training run of a model on a matrix; weights live in the artifact store by SHA."""

    __tablename__ = "trainings"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("train"))
    model_pk: Mapped[int] = mapped_column(ForeignKey("lab_models.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    matrix_sha: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict] = mapped_column(default=dict)
    config_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    weights_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    weights_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    metrics: Mapped[dict | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class Backtest(Base):
    __tablename__ = "backtests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("bt"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("lab_models.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    matrix_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    config: Mapped[dict] = mapped_column(default=dict)
    risk_profile: Mapped[str] = mapped_column(String(16), default="Balanced")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    metrics: Mapped[dict | None] = mapped_column(nullable=True)
    folds: Mapped[list | None] = mapped_column(nullable=True)
    gate: Mapped[dict | None] = mapped_column(nullable=True)
    fills_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    fills_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # per-bar series (Parquet: equity, returns, drawdown, position, benchmark, fold); issue 14
    series_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    series_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class Sweep(Base):
    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sweep"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("lab_models.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    risk_profile: Mapped[str] = mapped_column(String(16), default="Balanced")
    tag: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)
    grid: Mapped[dict] = mapped_column(default=dict)
    total_configs: Mapped[int] = mapped_column(Integer)
    done_configs: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    best: Mapped[dict | None] = mapped_column(nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class SweepChunk(Base):
    """A finished chunk of a sweep: stored as it arrives, so a crash keeps it and a re-run skips it."""

    __tablename__ = "sweep_chunks"

    sweep_id: Mapped[str] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True)
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    n_configs: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LeaderboardEntry(Base):
    """A ranked result: one per backtest and one per sweep configuration.

    The headline metrics are columns so that filtering and sorting happen in SQL; the full set
    sits in ``metrics``.
    """

    __tablename__ = "leaderboard"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("res"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("lab_models.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(80))
    pack_id: Mapped[str] = mapped_column(String(32))
    backtest_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    sweep_id: Mapped[str | None] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), nullable=True, index=True)
    config_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tag: Mapped[str | None] = mapped_column(String(80), nullable=True)
    risk_profile: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict] = mapped_column(default=dict)
    metrics: Mapped[dict] = mapped_column(default=dict)
    gate_pass: Mapped[bool] = mapped_column(Boolean, default=False)
    gate_reasons: Mapped[list] = mapped_column(default=list)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    sharpe: Mapped[float | None] = mapped_column(Float, nullable=True)
    deflated_sharpe: Mapped[float | None] = mapped_column(Float, nullable=True)
    cum_ret: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_drawdown: Mapped[float | None] = mapped_column(Float, nullable=True)
    win_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    trades: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("sweep_id", "config_index", name="uq_leaderboard_sweep_config"),
        Index("ix_leaderboard_user_model", "user_id", "model_id"),
    )


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("wh"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list] = mapped_column(default=list)
    #: Needed in clear to sign deliveries; never returned by the API.
    secret: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("dlv"))
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending delivered failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class Signal(Base):
    """A live trading signal: a trained model's call on the latest complete bar.

    ``price`` is the reference (the scored bar's close); the order is for the next bar's open
    (``entry_at``), with a bracket (``stop``, ``target``) and a time stop (``expires_at``).
    ``status``: active until the time stop has passed and the outcome is settled on market data
    (``filled``: ``exit_price``, ``exit_at``, ``exit_reason``, ``realized_return``), or
    ``cancelled``. One signal per model and bar.
    """

    __tablename__ = "signals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sig"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("lab_models.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(80))
    pack_id: Mapped[str] = mapped_column(String(32), index=True)
    training_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    ticker: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    bar_time: Mapped[dt.datetime] = mapped_column()
    entry_at: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    score: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    expected_return: Mapped[float] = mapped_column(Float)
    stop: Mapped[float] = mapped_column(Float)
    target: Mapped[float] = mapped_column(Float)
    details: Mapped[dict] = mapped_column(default=dict)
    exit_price: Mapped[float | None] = mapped_column(Float, nullable=True)
    exit_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    exit_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    realized_return: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("model_pk", "bar_time", name="uq_signal_model_bar"),)


class SignalSubscription(Base):
    """A model subscribed to live signals: the platform scheduler scores it at each bar close
    of its pack's cadence (NYSE sessions) and settles its open signals
    (``services.lab.subscriptions``). ``checked_until``: bar closes up to this instant are
    done (a close is handled once, whatever the restarts). One subscription per model."""

    __tablename__ = "signal_subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sub"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("lab_models.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(80))
    pack_id: Mapped[str] = mapped_column(String(32))
    #: the portfolio whose value sizes the signals (None: the user's default portfolio, if any)
    portfolio_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    checked_until: Mapped[dt.datetime] = mapped_column()
    last_bar_close: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_status: Mapped[str | None] = mapped_column(String(16), nullable=True)  # generated no_signal failed
    last_signal_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_result: Mapped[dict | None] = mapped_column(nullable=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    signals_generated: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("user_id", "model_pk", name="uq_signal_subscription_model"),)
