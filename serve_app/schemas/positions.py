"""Positions (portfolio spec 5.1, 5.2, 2.2): the catalog row, the priced record, lists and groups."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from compute.limits import MAX_ABS_QUANTITY, MAX_PRICE, MAX_STRIKE
from serve_app.schemas.common import Number, PageMeta, ServiceBody, Timestamp

PositionType = Literal["LONG", "SHORT", "LC", "LP", "SC", "SP"]


class NewPosition(BaseModel):
    """A stock by ticker, an option by OCC symbol, or an option by ticker with ``type``,
    ``strike`` and ``expiration``. The quantity's sign is the direction and must agree with
    the type (LONG/LC/LP positive, SHORT/SC/SP negative)."""

    ticker: str = Field(min_length=1, description="ticker (1-10 letters, digits, '.', '-') or OCC option symbol")
    quantity: float = Field(ge=-MAX_ABS_QUANTITY, le=MAX_ABS_QUANTITY, description="shares or contracts; non-zero, negative for shorts")
    type: str | None = Field(None, description="LONG, SHORT, LC, LP, SC or SP (any case); default: from the symbol "
                             "and the quantity's sign")
    price: float = Field(gt=0, le=MAX_PRICE, description="entry price per share (per contract's share price for options)")
    strike: float | None = Field(None, gt=0, le=MAX_STRIKE, description="for options given by ticker")
    expiration: str | None = Field(None, description="YYYY-MM-DD, for options given by ticker")
    entry_date: str | None = Field(None, description="YYYY-MM-DD, not in the future (default today)")
    tags: list[str] | str | None = Field(None, description="tag names (created when new), at most 80 characters each")
    strategy: str | None = Field(None, max_length=120)
    ai_metadata: dict[str, Any] | None = None


class PositionPatch(BaseModel):
    """Any of the fields, at least one; other fields cannot be changed."""

    quantity: float | None = Field(None, ge=-MAX_ABS_QUANTITY, le=MAX_ABS_QUANTITY, description="non-zero, same sign as the position's type")
    entry_price: float | None = Field(None, gt=0, le=MAX_PRICE)
    price: float | None = Field(None, gt=0, le=MAX_PRICE, description="same as entry_price")
    strategy: str | None = Field(None, max_length=120, description="null clears it")


class Position(BaseModel):
    """A position as stored (POST, PATCH, GET /positions/{id})."""

    id: str
    portfolio_id: str
    ticker: str
    underlying: str
    type: PositionType
    quantity: float
    entry_price: float | None = None
    entry_date: str | None = None
    strike: float | None = None
    expiration: str | None = None
    option_right: Literal["C", "P"] | None = None
    multiplier: int
    strategy: str | None = None
    tags: list[str]
    ai_metadata: dict[str, Any] | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class Greeks(BaseModel):
    delta: Number = None
    gamma: Number = None
    theta: Number = None
    vega: Number = None
    rho: Number = None


class PricedContract(BaseModel):
    """A position or contract priced now; every figure is null when its inputs are missing."""

    ticker: str | None = None
    underlying: str | None = None
    name: str | None = None
    type: PositionType | None = None
    quantity: Number = None
    price: Number = None
    value: Number = Field(None, description="market value (shorts negative)")
    entry_price: Number = None
    cost_basis: Number = None
    pnl: Number = None
    pnl_percent: Number = None
    daily_change: Number = None
    tags: list[str] | None = None
    strategy: str | None = None
    sector: str | None = None
    asset_class: str | None = None
    underlying_price: Number = None
    notional_exposure: Number = None
    delta_exposure: Number = None
    strike: Number = None
    expiration: str | None = None
    time_to_expiry: Number = Field(None, description="years")
    expired: bool | None = None
    iv: Number = None
    vol_source: str | None = Field(None, description="implied, realised, or null when none is known")
    greeks: Greeks | None = Field(None, description="per share")
    position_greeks: Greeks | None = Field(None, description="for the whole position")
    dollar_delta: Number = None


class RiskMetrics(BaseModel):
    """Spec 5.1: beta vs SPY of the underlying and the position's share of portfolio variance
    (Euler allocation over the last 252 sessions; sums to 1 over the book)."""

    beta: Number = None
    risk_contribution: Number = None


class PricedPosition(PricedContract):
    """A position priced now (spec 5.1). With ``fields=``, only those fields and ``id``."""

    id: str
    risk_metrics: RiskMetrics | None = None


class LongShort(BaseModel):
    long: Number = None
    short: Number = None
    gross: Number = None
    net: Number = None


class GroupExposure(BaseModel):
    notional: LongShort
    delta: LongShort


class PositionsSummary(BaseModel):
    total_positions: int
    total_value: Number = None
    gross_exposure: Number = None
    net_exposure: Number = None
    delta_gross_exposure: Number = None
    delta_net_exposure: Number = None


class PositionGroupIds(BaseModel):
    group: str | None = Field(description="null: positions without one")
    count: int
    total_value: Number = None
    total_pnl: Number = None
    exposure: GroupExposure | None = None
    positions: list[str] = Field(description="position ids")


class PositionList(BaseModel):
    positions: list[PricedPosition]
    summary: PositionsSummary
    groups: list[PositionGroupIds] | None = Field(None, description="with groupBy")


class PositionGroup(BaseModel):
    group: str | None
    count: int
    total_value: Number = None
    total_pnl: Number = None
    exposure: GroupExposure | None = None
    positions: list[PricedPosition]


class PositionsGrouped(BaseModel):
    group_by: str
    groups: list[PositionGroup]
    total_positions: int


class Strategy(BaseModel):
    name: str
    count: int
    total_value: Number = None
    total_pnl: Number = None
    exposure: GroupExposure | None = None
    positions: list[PricedPosition]


class Unassigned(BaseModel):
    count: int
    positions: list[PricedPosition]


class Strategies(BaseModel):
    strategies: list[Strategy]
    unassigned: Unassigned


PositionsMeta = PageMeta

NewPositionBody = ServiceBody(NewPosition, examples=[
    {"ticker": "AAPL", "type": "LONG", "quantity": 500, "price": 178.5, "tags": ["#tech"]}])
PositionPatchBody = ServiceBody(PositionPatch, examples=[{"quantity": 600, "strategy": "core"}])
