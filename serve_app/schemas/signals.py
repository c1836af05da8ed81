"""Live signals (Lab spec "Signals API")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from serve_app.schemas.common import Deleted, IsoDate, Number, Timestamp


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(..., min_length=1, max_length=80)
    as_of: IsoDate | None = Field(None, description="score the newest bar on or before this date (default today)")


class Signal(BaseModel):
    signal_id: str
    model_id: str
    pack_id: str
    ticker: str
    action: str = Field(description="BUY or SELL")
    quantity: Number = None
    price: Number = None
    timestamp: Timestamp | None = Field(None, description="the scored bar")
    entry_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    status: str = Field(description="active, filled, expired or cancelled")
    confidence: Number = None
    score: Number = None
    expected_return: Number = None
    stop: Number = None
    target: Number = None
    training_id: str | None = None
    details: dict[str, Any] | None = None
    exit_price: Number = None
    exit_at: Timestamp | None = None
    exit_reason: str | None = None
    realized_return: Number = None
    created_at: Timestamp | None = None


class Decision(BaseModel):
    model_id: str
    ticker: str
    bar_time: Timestamp
    score: float
    confidence: float
    entry_threshold: float
    confidence_min: float
    training_id: str
    reason: str | None = Field(None, description="why there is no signal")


class Generated(BaseModel):
    signal: Signal | None = Field(description="null when the score does not clear the thresholds")
    created: bool
    decision: Decision


class SignalList(BaseModel):
    items: list[Signal]
    total: int
    limit: int
    offset: int


class SignalMetrics(BaseModel):
    total_signals: int
    filled: int
    success_rate: Number = None
    avg_return: Number = None
    sharpe_live: Number = None


class SignalPeriod(BaseModel):
    start: Timestamp
    end: Timestamp


class SignalLeader(BaseModel):
    model_id: str
    pack_id: str | None = None
    risk_profile: str | None = None
    metrics: SignalMetrics
    period: SignalPeriod


class SignalsLeaderboard(BaseModel):
    items: list[SignalLeader]


# -- subscriptions: live signals on a schedule --------------------------------------------------


class SubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(..., min_length=1, max_length=80, description="one of your trained models")
    portfolio_id: str | None = Field(None, max_length=40,
                                     description="the portfolio whose value sizes the signals (default: your default "
                                                 "portfolio when you have one, else 100,000)")


class Subscription(BaseModel):
    subscription_id: str
    model_id: str
    pack_id: str
    cadence: str = Field(description="daily or hourly: the model is scored at each such bar close (NYSE sessions)")
    portfolio_id: str | None = None
    active: bool
    created_at: Timestamp | None = None
    checked_until: Timestamp | None = Field(None, description="bar closes up to this instant are done")
    next_bar_close: Timestamp | None = Field(None, description="the next bar close the scheduler will score")
    last_bar_close: Timestamp | None = None
    last_status: str | None = Field(None, description="generated, no_signal, existing, waiting (the feed has no bar "
                                                      "of that close yet: retried), no_bar or failed")
    last_signal_id: str | None = None
    last_result: dict[str, Any] | None = Field(None, description="the decision (or the error) of the latest run; "
                                                                 "skipped_closes counts closes missed while down")
    runs: int
    signals_generated: int


class SubscriptionList(BaseModel):
    items: list[Subscription]
    total: int


class SubscriptionDeleted(Deleted):
    subscription_id: str
