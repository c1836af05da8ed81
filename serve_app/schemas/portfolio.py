"""Portfolios: overview, summary, exposures, performance, CSV upload, timeline (spec 4.1-4.4)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from serve_app.schemas.common import Meta, Number, Timestamp
from serve_app.schemas.positions import LongShort


class PortfolioRef(BaseModel):
    id: str
    name: str
    is_default: bool
    cash: Number = None
    base_currency: str


class PortfolioList(BaseModel):
    portfolios: list[PortfolioRef]


class Visual(BaseModel):
    """Spec 3.6 visual indicator: the figure as a decimal of equity and a status."""

    value: Number = Field(None, description="decimal of equity; null without positive equity")
    display: str | None = Field(None, description='e.g. "45%"')
    percentage: int | None = None
    status: Literal["success", "warning", "danger", "info"]
    color: str
    target_range: list[float] | None = None
    limit: Number = None


class ExposureFigure(BaseModel):
    value: Number = None
    visual: Visual


class ExposureWithDelta(ExposureFigure):
    delta_adjusted: ExposureFigure


class Exposures(BaseModel):
    long: ExposureWithDelta
    short: ExposureWithDelta
    gross: ExposureWithDelta
    net: ExposureWithDelta


class ExposureTotals(BaseModel):
    long_exposure: Number = None
    short_exposure: Number = None
    gross_exposure: Number = None
    net_exposure: Number = None


class ExposureCalculations(BaseModel):
    delta: ExposureTotals
    notional: ExposureTotals


class Limits(BaseModel):
    gross_limit: float
    net_target_range: list[float]


class AiInsights(BaseModel):
    primary_risks: list[str]
    opportunities: list[str]
    evidence: dict[str, dict[str, Any]] = Field(description="the numbers behind each flag, by flag")


class PortfolioOverview(BaseModel):
    portfolio_id: str
    name: str
    as_of: Timestamp
    total_value: Number = None
    cash: Number = None
    positions_value: Number = None
    total_pl: Number = None
    total_pl_percent: Number = None
    position_count: int
    exposures: Exposures
    exposure_calculations: ExposureCalculations
    limits: Limits
    ai_insights: AiInsights


class TopPosition(BaseModel):
    id: str
    ticker: str
    type: str
    value: Number = None
    pnl: Number = None
    pnl_percent: Number = None


class PortfolioSummary(BaseModel):
    portfolio_id: str
    as_of: Timestamp
    total_value: Number = None
    cash: Number = None
    total_pl: Number = None
    total_pl_percent: Number = None
    position_count: int
    top_positions: list[TopPosition]
    active_alerts: int | None = None


class ExposureGroup(BaseModel):
    group: str | None
    count: int
    notional: LongShort
    delta: LongShort


class VisualSet(BaseModel):
    long: Visual
    short: Visual
    gross: Visual
    net: Visual


class ExposureVisuals(BaseModel):
    notional: VisualSet
    delta: VisualSet


class PortfolioExposures(BaseModel):
    portfolio_id: str
    as_of: Timestamp
    equity: Number = None
    totals: ExposureCalculations
    visual: ExposureVisuals
    by_type: list[ExposureGroup]
    by_strategy: list[ExposureGroup]
    by_sector: list[ExposureGroup]
    by_tag: list[ExposureGroup]


class PeriodReturn(BaseModel):
    from_: str = Field(alias="from", description="the session the return is measured from")
    change: Number = None
    return_percent: Number = None


class PortfolioPerformance(BaseModel):
    portfolio_id: str
    as_of: Timestamp
    total_value: Number = None
    cost_basis: Number = None
    total_pl: Number = None
    total_pl_percent: Number = None
    daily_change: Number = None
    method: Literal["constant_holdings"]
    returns: dict[str, PeriodReturn] = Field(description="by horizon: 1d, 1w, 1m, ytd (those with history)")
    warnings: list[str]
    history_end: str | None = None


class UploadResult(BaseModel):
    portfolio_id: str
    positions_created: int
    positions_updated: int
    message: str


class UploadResponse(UploadResult):
    """The upload's figures at the top level and again under ``data`` (spec 4.2)."""

    success: Literal[True] = True
    data: UploadResult


class TimelinePoint(BaseModel):
    date: str
    source: Literal["snapshot", "reconstructed"]
    equity: Number = None
    cash: Number = None
    exposure: dict[str, Any] | None = Field(None, description="notional and delta long/short/gross/net, count")
    daily_pnl: Number = None
    daily_return: Number = None
    greeks: dict[str, Number] | None = None
    position_count: dict[str, Any] | None = None


class TimelineSummary(BaseModel):
    sessions: int
    start_equity: Number = None
    end_equity: Number = None
    total_return: Number = None
    max_drawdown: Number = None
    stored_snapshots: int


class Timeline(BaseModel):
    portfolio_id: str
    start: str
    end: str
    points: list[TimelinePoint]
    summary: TimelineSummary


class TimelineMeta(Meta):
    sessions: int
    stored_snapshots: int
