"""Market data (portfolio spec section 11): quotes and option chains from the configured provider."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query, Request

from serve_app.deps import CallerDep, StateDep
from serve_app.envelope import envelope
from serve_app.errors import invalid
from serve_app.market import fetch_bars, fetch_option_chain, fetch_quotes
from serve_app.schemas.common import Envelope, IsoDate, error_responses
from serve_app.schemas.market import Bars, OptionChain, Quotes
from compute.instruments import InvalidTicker, normalize_ticker

router = APIRouter(prefix="/market", tags=["market data"])

MAX_SYMBOLS = 100


def parse_symbol(raw: str, field: str) -> str:
    try:
        return normalize_ticker(raw)
    except InvalidTicker:
        raise invalid(field, f"{raw!r} is not a ticker symbol (1-10 letters, digits, '.', '-')") from None


@router.get("/quotes", summary="Latest quotes for up to 100 symbols", response_model=Envelope[Quotes],
            responses=error_responses(400, 401, 404, 429, 503))
def quotes(
    request: Request,
    _: CallerDep,
    state: StateDep,
    symbols: str = Query(..., description="comma-separated tickers, e.g. AAPL,MSFT,SPY"),
):
    parsed = [parse_symbol(s, "symbols") for s in symbols.split(",") if s.strip()]
    if not parsed:
        raise invalid("symbols", "give at least one ticker")
    if len(parsed) > MAX_SYMBOLS:
        raise invalid("symbols", f"at most {MAX_SYMBOLS} symbols per request")
    data, cache_status = fetch_quotes(state, list(dict.fromkeys(parsed)))
    return envelope(request, data, cache_status=cache_status)


@router.get("/options", summary="Option chain: expiries and the strikes nearest the money",
            response_model=Envelope[OptionChain], responses=error_responses(400, 401, 404, 429, 503))
def options(
    request: Request,
    _: CallerDep,
    state: StateDep,
    symbol: str = Query(..., description="underlying ticker"),
    expiry: str = Query("nearest", description="'nearest', 'all', or a date YYYY-MM-DD"),
    strikes: int | None = Query(20, ge=1, le=500, description="strikes nearest the money per expiry and right"),
):
    underlying = parse_symbol(symbol, "symbol")
    if expiry in ("all", "nearest"):
        expiries = "all" if expiry == "all" else None
    else:
        try:
            expiries = [dt.date.fromisoformat(expiry)]
        except ValueError:
            raise invalid("expiry", "use 'nearest', 'all' or a date in YYYY-MM-DD format") from None
    data, cache_status = fetch_option_chain(state, underlying, expiries, strikes)
    return envelope(request, data, cache_status=cache_status)


@router.get("/bars", summary="Daily or intraday bars of one symbol, with their source and as_of",
            response_model=Envelope[Bars], responses=error_responses(400, 401, 404, 429, 503))
def bars(
    request: Request,
    _: CallerDep,
    state: StateDep,
    symbol: str = Query(..., description="ticker"),
    start: IsoDate = Query(..., description="first session, YYYY-MM-DD (the calendar starts 1990-01-02)"),
    end: IsoDate | None = Query(None, description="last session, YYYY-MM-DD (default: today)"),
    freq: str = Query("1d", pattern="^(1d|1h|15min|5min|1min)$", description="1d, 1h, 15min, 5min or 1min"),
):
    ticker = parse_symbol(symbol, "symbol")
    data, cache_status = fetch_bars(state, ticker, start, end, freq)
    return envelope(request, data, cache_status=cache_status)
