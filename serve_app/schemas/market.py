"""Market data (portfolio spec section 11)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from serve_app.schemas.common import Number


class Quote(BaseModel):
    symbol: str
    bid: Number = None
    ask: Number = None
    last: Number = None
    volume: Number = None
    timestamp: str | None = None
    change: Number = None
    change_percent: Number = None
    source: str | None = Field(None, description="where the quote comes from: synthetic, files or polygon")
    as_of: str | None = Field(None, description="the instant the quote describes (UTC, ISO 8601)")


class Quotes(BaseModel):
    quotes: list[Quote]
    missing: list[str] = Field(description="symbols the provider has no quote for")


class OptionContract(BaseModel):
    symbol: str
    underlying: str
    expiry: str
    strike: float
    right: str
    bid: Number = None
    ask: Number = None
    mid: Number = None
    iv: Number = None
    delta: Number = None
    open_interest: Number = None
    volume: Number = None
    underlying_price: Number = None


class OptionChain(BaseModel):
    symbol: str
    underlying_price: Number = None
    expiries: list[str]
    count: int
    contracts: list[OptionContract]
    source: str | None = Field(None, description="where the underlying's data comes from: synthetic, files or polygon")
    as_of: str | None = Field(None, description="the instant the chain is priced at (UTC, ISO 8601)")
    pricing: str | None = Field(None, description="model: Black-Scholes on a volatility smile (synthetic, files: "
                                "no option quotes there); market: the source's option quotes (polygon)")


class Bar(BaseModel):
    timestamp: str = Field(description="the bar's start (UTC, ISO 8601): the session open for daily bars")
    open: float
    high: float
    low: float
    close: float
    volume: float


class Bars(BaseModel):
    symbol: str
    freq: str = Field(description="1d, 1h, 15min, 5min or 1min")
    start: str = Field(description="first session asked for (YYYY-MM-DD)")
    end: str = Field(description="last session asked for (YYYY-MM-DD)")
    count: int
    bars: list[Bar] = Field(description="every bar of the span that had ended at as_of, oldest first")
    source: str = Field(description="where the bars come from: synthetic, files or polygon")
    as_of: str = Field(description="the instant the bars were read (UTC, ISO 8601): a bar still forming then "
                                   "(a session not yet closed, an hour not yet over) is not included")
