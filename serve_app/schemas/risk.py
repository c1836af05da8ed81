"""Risk analytics (portfolio spec 6.1-6.7), P&L attribution (5.3) and Greeks (6.2, 6.3)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from compute.limits import MAX_ABS_QUANTITY, MAX_PRICE, MAX_STRIKE
from serve_app.schemas.common import Meta, Number, ServiceBody, Timestamp
from serve_app.schemas.positions import PricedContract


class RiskMeta(Meta):
    """Where the figures come from: the daily batch (fresh for the current holdings) or live."""

    source: Literal["batch", "live"]
    as_of: str | None = None
    computed_at: Timestamp | None = None
    age_seconds: Number = None
    batch_run_id: str | None = Field(None, description="with source=batch")


class FactorMeta(RiskMeta):
    view: str
    period: str
    window: int | None = None
    equity: Number = None
    regression_start: str | None = None
    regression_end: str | None = None
    additional_factors: list[dict[str, Any]] | None = Field(None, description="rates and oil, from proxies")
    warnings: list[str] = Field(default_factory=list)


class FactorDefinition(BaseModel):
    factor_name: str
    etf_ticker: str | None = None
    description: str | None = None
    calculation_method: str | None = None
    display_order: int | None = None


class FactorExposure(BaseModel):
    factor_name: str
    exposure: Number = Field(None, description="fraction of equity")
    exposure_dollars: Number = None
    positions_without_betas: int | None = None
    calculation_method: str | None = None
    exposure_visual: dict[str, Any] | None = None


class PositionFactors(BaseModel):
    position_id: str
    ticker: str | None = None
    underlying: str | None = None
    factor_exposures: dict[str, Number]
    exposure_dollars: dict[str, Number] | None = None
    regression_stats: dict[str, Any] | None = Field(None, description="r_squared, data_points, limited_history, window")
    t_stats: dict[str, Number] | None = None
    additional_factor_betas: dict[str, Number] | None = None


class PositionFactorReport(BaseModel):
    positions: list[PositionFactors]
    window: int | None = None
    as_of: str | None = None


class VarFigure(BaseModel):
    method: str
    level: float
    horizon_days: int
    return_: Number = Field(None, alias="return", description="as a decimal (negative: a loss)")
    dollars: Number = None


class RiskOverview(BaseModel):
    view: str
    period: str
    as_of: str | None = None
    equity: Number = None
    observations: int | None = None
    positions: int | None = None
    metrics: dict[str, dict[str, Any]] = Field(description="beta, annualized_volatility, position_correlation, "
                                               "max_drawdown, var_1d, expected_shortfall")
    var: dict[str, Any] | None = Field(None, description="the VaR family on the same history")
    ai_risk_summary: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)


class VarReport(BaseModel):
    view: str
    as_of: str | None = None
    equity: Number = None
    levels: list[float] | None = None
    es_level: Number = None
    horizons_days: list[int] | None = None
    history_observations: int | None = None
    var: list[VarFigure]
    expected_shortfall: list[VarFigure]
    monte_carlo: dict[str, Any] | None = Field(None, description="factor Monte Carlo results per horizon")
    warnings: list[str] = Field(default_factory=list)


class ScenarioTemplate(BaseModel):
    id: str
    name: str
    shocks: dict[str, float]
    parameters: dict[str, float] | None = None


class CustomScenario(BaseModel):
    name: str = Field("Custom scenario", min_length=1, max_length=120)
    parameters: dict[str, Annotated[float, Field(strict=True)]] = Field(..., description="factor shocks, e.g. {'spy_change': -0.1, 'rate_change': 0.0025}")


class ScenarioRequest(BaseModel):
    scenario_ids: list[str] = Field(default_factory=list, max_length=50)
    custom_scenario: CustomScenario | None = None


class ScenarioResult(BaseModel):
    id: str
    name: str
    shocks: dict[str, Number]
    pnl: Number = None
    pnl_percent: Number = None
    by_type: dict[str, dict[str, Number]] = Field(default_factory=dict)
    worst_positions: list[dict[str, Any]] = Field(default_factory=list)
    positions_unmoved: list[Any] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ScenarioReport(BaseModel):
    view: str
    as_of: str | None = None
    equity: Number = None
    scenarios: list[ScenarioResult]
    warnings: list[str] = Field(default_factory=list)


class AttributionRow(BaseModel):
    id: str
    ticker: str
    position_type: str
    pnl: Number = None
    pnl_percent: Number = None
    contribution_percent: Number = None


class Attribution(BaseModel):
    date: str | None = None
    group_by: Literal["position", "tag", "type"]
    total_pl: Number = None
    positions: list[AttributionRow]
    by_type: dict[str, dict[str, Number]]
    by_tag: dict[str, dict[str, Any]] | None = Field(None, description="with groupBy=tag")
    previous_date: str | None = None
    equity: Number = None


class AttributionMeta(Meta):
    source: Literal["live"]
    as_of: str | None = None


class GreekTotals(BaseModel):
    delta: Number = None
    gamma: Number = None
    theta: Number = None
    vega: Number = None
    rho: Number = None
    dollar_delta: Number = None
    dollar_gamma_1pct: Number = Field(None, description="second-order P&L of a 1 % move")


class GammaVisual(BaseModel):
    gamma_status: Literal["success", "warning", "danger", "info"]
    gamma_message: str
    gamma_pnl_1pct_over_equity: Number = None


class CurrentGreeks(GreekTotals):
    visual: GammaVisual


class GreekChanges(BaseModel):
    delta: Number = None
    gamma: Number = None
    theta: Number = None
    vega: Number = None
    rho: Number = None
    gamma_percent: Number = None


class AfterExpiry(GreekTotals):
    expiry: str
    contracts_expiring: int
    changes: GreekChanges


class PortfolioGreeks(BaseModel):
    portfolio_id: str
    as_of: Timestamp
    view: Literal["portfolio", "longs", "shorts"]
    current: CurrentGreeks
    option_count: int
    vol_sources: dict[str, int]
    warnings: list[str]
    after_expiry: AfterExpiry | None = Field(None, description="null without live options; absent with include_after_expiry=false")


class HypotheticalPosition(BaseModel):
    ticker: str = Field(min_length=1, description="stock ticker or OCC symbol; with type, strike and expiration for options")
    quantity: float = Field(ge=-MAX_ABS_QUANTITY, le=MAX_ABS_QUANTITY, description="non-zero; negative for shorts")
    type: str | None = Field(None, description="LONG, SHORT, LC, LP, SC or SP (any case)")
    strike: float | None = Field(None, gt=0, le=MAX_STRIKE)
    expiration: str | None = Field(None, description="YYYY-MM-DD")
    price: float | None = Field(None, gt=0, le=MAX_PRICE)


class HypotheticalRequest(BaseModel):
    positions: list[HypotheticalPosition] = Field(min_length=1, description="at most 2,000 (sync) or 100,000 (async)")


class HypotheticalGreeks(BaseModel):
    positions: list[PricedContract] = Field(description="the contracts priced now")
    totals: GreekTotals
    warnings: list[str]


HypotheticalBody = ServiceBody(HypotheticalRequest, examples=[
    {"positions": [{"ticker": "AAPL", "type": "LC", "quantity": 20, "strike": 200, "expiration": "2025-12-19"}]}])
