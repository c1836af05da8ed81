"""The replica's market-data provider (``SIGMA_MARKET_DATA``) and its health probe."""

from __future__ import annotations

import datetime as dt

from cluster.market import market_provider
from serve_app.state import AppState


def get_provider(state: AppState):
    """The replica's provider: the platform's one for its settings (``cluster.market``)."""
    return market_provider(state.settings)


def market_health(state: AppState) -> dict:
    """A real quote for SPY from the configured provider."""
    provider = get_provider(state)
    quote = provider.latest_quote(["SPY"])["SPY"]
    if not quote or not (quote.get("last") or 0) > 0:
        raise RuntimeError("provider returned no price for SPY")
    return {"provider": state.settings.market_data, "spy_last": quote.get("last")}


def ticker_health(state: AppState, ticker: str) -> dict:
    """Last update and data quality (share of recent sessions with a valid bar) for one ticker."""
    provider = get_provider(state)
    now = provider.now()
    end = now.date()
    start = end - dt.timedelta(days=45)
    bars = provider.daily_bars(ticker, start, end)
    from compute.marketdata.calendar import session_close, sessions

    # Only sessions that have closed can have a daily bar.
    expected = int((sessions(start, end)["close"] <= now).sum())
    valid = 0 if bars is None or bars.empty else int(
        ((bars["close"] > 0) & (bars["high"] >= bars[["open", "close"]].max(axis=1)) & (bars["low"] <= bars[["open", "close"]].min(axis=1))).sum()
    )
    quality = round(min(1.0, valid / expected), 4) if expected else 0.0
    # The last bar is complete at its session's close: that is when the data was last updated.
    last = None if bars is None or bars.empty else session_close(bars.index[-1]).isoformat()
    status = "healthy" if quality >= 0.95 else ("degraded" if quality > 0 else "unhealthy")
    return {"status": status, "last_update": last, "data_quality": quality, "provider": state.settings.market_data}


def _provider_call(state: AppState, fn):
    """Run a provider call; its input errors become 400/404 naming the symbol, never a 500."""
    from compute.marketdata import MarketDataError

    from serve_app.errors import ApiError

    provider = get_provider(state)
    try:
        return fn(provider), provider.last_cache_status
    except MarketDataError as exc:
        message = str(exc)
        status, code = (404, "NOT_FOUND") if "no data" in message.lower() or "not found" in message.lower() else (400, "INVALID_PARAMETER")
        raise ApiError(status, code, message, field="symbol") from exc


def fetch_quotes(state: AppState, symbols: list[str]) -> tuple[dict, str | None]:
    def call(provider):
        raw = provider.latest_quote(symbols)
        return {"quotes": [{"symbol": s, **raw[s]} for s in symbols if s in raw], "missing": [s for s in symbols if s not in raw]}

    return _provider_call(state, call)


def fetch_option_chain(state: AppState, symbol: str, expiries, strikes: int | None) -> tuple[dict, str | None]:
    def call(provider):
        chain = provider.option_chain(symbol, expiries=expiries, strikes=strikes)
        contracts = chain.assign(expiry=chain["expiry"].map(lambda d: d.isoformat())).to_dict(orient="records")
        return {
            "symbol": symbol,
            "underlying_price": float(chain["underlying_price"].iloc[0]) if len(chain) else None,
            "expiries": sorted({c["expiry"] for c in contracts}),
            "count": len(contracts),
            "contracts": contracts,
        }

    return _provider_call(state, call)
