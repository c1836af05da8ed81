"""ProForma (portfolio spec 7, 13): modeling sessions, impact, single trades, hedges, exports."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from serve_app.schemas.common import Number, ServiceBody, Timestamp
from serve_app.schemas.positions import PricedPosition


# -- requests ---------------------------------------------------------------------------------

class NewSession(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    base_portfolio: str = Field("current", description="'current' (the default portfolio) or a portfolio id")


class Modification(BaseModel):
    """Change a quantity (``new_quantity``; 0 closes), close (``action: close``), or add
    (``position_id: "new"`` with ``ticker``, ``quantity`` and for options by ticker ``type``,
    ``strike``, ``expiration``; OCC symbols accepted)."""

    position_id: str = Field(description="a position id of the session, or 'new'")
    new_quantity: float | None = Field(None, description="signed; must keep the side unless allow_flip")
    quantity: float | None = Field(None, description="for new positions (signed); same as new_quantity otherwise")
    action: Literal["modify", "close"] | None = None
    allow_flip: bool | None = Field(None, description="true to let a quantity turn a long into a short or back")
    ticker: str | None = None
    type: str | None = Field(None, description="LONG, SHORT, LC, LP, SC or SP")
    strike: float | None = None
    expiration: str | None = Field(None, description="YYYY-MM-DD")


class Modifications(BaseModel):
    modifications: list[Modification] = Field(min_length=1, max_length=1000)


class TradeRequest(BaseModel):
    symbol: str = Field(min_length=1, description="ticker or OCC option symbol")
    action: Literal["buy", "sell", "sell_short", "buy_to_cover"]
    quantity: float = Field(gt=0, le=1e9, description="shares or contracts")
    include_stress_scenarios: bool = True


class HedgeConstraints(BaseModel):
    max_positions: int = Field(3, ge=1, le=5)
    allowed_instruments: list[Literal["options", "etfs"]] = Field(default_factory=lambda: ["options", "etfs"], min_length=1)


class HedgeRequest(BaseModel):
    risk_to_hedge: str = Field(description="market_beta, sector_<name>, a factor name, delta, gamma, vega or var_95")
    budget: float = Field(gt=0, le=1e9, description="dollars: option premium plus fees, ETF notional")
    constraints: HedgeConstraints = Field(default_factory=HedgeConstraints)
    top: int = Field(3, ge=1, le=10, description="hedges to return")


class ApplyHedge(BaseModel):
    job_id: str = Field(description="a completed hedge job of the caller")
    rank: int = Field(1, ge=1, le=10, description="which hedge of the job (1 = best)")


class TradeItem(BaseModel):
    symbol: str = Field(min_length=1)
    action: str = Field(description="BUY, SELL, SELL_SHORT, BUY_TO_COVER, BUY_TO_OPEN, SELL_TO_CLOSE, SELL_TO_OPEN, BUY_TO_CLOSE")
    quantity: float = Field(gt=0, le=1e9)


class TradesExport(BaseModel):
    trades: list[TradeItem] = Field(min_length=1, max_length=5000)
    format: Literal["csv", "json", "fix"] = "csv"
    broker: Literal["generic"] = "generic"


NewSessionBody = ServiceBody(NewSession, examples=[{"name": "Tech Exposure Reduction", "base_portfolio": "current"}])
ModificationsBody = ServiceBody(Modifications, examples=[{"modifications": [
    {"position_id": "pos_123", "new_quantity": 300},
    {"position_id": "new", "ticker": "SPY", "type": "LP", "quantity": 10, "strike": 420, "expiration": "2027-01-15"}]}])
TradeBody = ServiceBody(TradeRequest, examples=[{"symbol": "MSFT", "action": "buy", "quantity": 200, "include_stress_scenarios": True}])
HedgeBody = ServiceBody(HedgeRequest, examples=[{"risk_to_hedge": "sector_technology", "budget": 5000,
                                                 "constraints": {"max_positions": 3, "allowed_instruments": ["options", "etfs"]}}])
ApplyHedgeBody = ServiceBody(ApplyHedge)
TradesExportBody = ServiceBody(TradesExport, examples=[{"trades": [{"symbol": "AAPL", "action": "SELL", "quantity": 200}],
                                                        "format": "fix", "broker": "generic"}])


# -- answers ----------------------------------------------------------------------------------

class Session(BaseModel):
    session_id: str
    name: str
    status: str
    base_portfolio: str
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    position_count: int
    change_count: int


class SessionList(BaseModel):
    sessions: list[Session]


class Change(BaseModel):
    action: Literal["modify", "close", "add"]
    position_id: str
    symbol: str
    field: Literal["quantity"]
    from_: float = Field(alias="from")
    to: float


class BookFigures(BaseModel):
    """One book's figures (the same engines as GET /portfolio/exposures, /risk/greeks,
    /risk/factors, /risk/var and POST /risk/scenarios); risk sections null when unavailable."""

    total_value: Number = None
    positions_value: Number = None
    cash: Number = None
    position_count: int
    exposures: dict[str, dict[str, Number]] = Field(description="notional|delta -> long|short|gross|net")
    by_sector: dict[str, dict[str, Number]]
    by_tag: dict[str, dict[str, Number]]
    greeks: dict[str, Number]
    factors: dict[str, Number] | None = None
    var: dict[str, Number] | None = Field(None, description="historical_95/99, monte_carlo_95/99: 1-day dollars")
    stress: dict[str, Number] | None = Field(None, description="template id -> P&L dollars")
    warnings: list[str]
    positions: list[PricedPosition] | None = None


class Triple(BaseModel):
    before: Number = None
    after: Number = None
    change: Number = None


class Impact(BaseModel):
    total_value: Triple
    exposures: dict[str, dict[str, Triple]]
    by_sector: dict[str, dict[str, Triple]]
    by_tag: dict[str, dict[str, Triple]]
    greeks: dict[str, Triple]
    factors: dict[str, Triple] | None = None
    var: dict[str, Triple] | None = None
    stress: dict[str, Triple] | None = None
    net_exposure_change: Number = Field(None, description="change of net notional exposure / equity before")
    tech_exposure_change: Number = Field(None, description="change of Technology net exposure / equity before")
    greeks_change: dict[str, Number]
    cash_required: Number = Field(None, description="what the trades cost at current prices (buys positive)")
    warnings: list[str]


class SessionDetail(Session):
    original_portfolio: BookFigures
    modified_portfolio: BookFigures
    changes: list[Change]
    impact: Impact


class TradeImpact(BaseModel):
    trade: dict[str, Any]
    original_portfolio: BookFigures
    modified_portfolio: BookFigures
    changes: list[Change]
    impact: Impact


class Order(BaseModel):
    action: str
    symbol: str
    quantity: float
    order_type: Literal["MARKET", "LIMIT"]
    limit_price: Number = None
    time_in_force: str
    security_type: Literal["EQUITY", "OPTION"]
    underlying: str | None = None
    put_call: Literal["CALL", "PUT"] | None = None
    strike: Number = None
    expiry: str | None = None


class TradeList(BaseModel):
    format: Literal["csv", "json", "fix"]
    trades: list[Order]
    order_count: int
    instructions: str
    file: str
    sha256: str
    size: int
    export_url: str = Field(description="GET it (with the bearer token) to download the file")
    messages: list[str] | None = Field(None, description="FIX: the messages with SOH shown as |")
    session_id: str | None = None
    broker: str | None = None


class PortfolioExport(BaseModel):
    portfolio_id: str
    as_of: str
    include: list[str]
    sections: dict[str, list[dict[str, Any]]]
