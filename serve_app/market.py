"""The replica's market-data provider (``SIGMA_MARKET_DATA``) and its health probe."""

from __future__ import annotations

import datetime as dt

from cluster.market import market_provider
from serve_app.state import AppState


def get_provider(state: AppState):
    """The replica's provider: the platform's one for its settings (``cluster.market``)."""
    return market_provider(state.settings)


def market_health(state: AppState) -> dict:
    """A real quote for SPY from the configured provider (unhealthy without one, the error
    naming the ticker and the file or source), and what demo seeding or the batch could not
    price (``skipped``: degraded, the service answers without it)."""
    from cluster.market import skipped_report

    detail: dict = {"provider": state.settings.market_data}
    skipped = skipped_report(state.settings)
    if skipped:
        detail["skipped"] = skipped
        count = sum(len(v.get("items", [])) for v in skipped.values())
        detail["degraded"] = f"{count} holding(s) could not be priced ({', '.join(sorted(skipped))})"
    try:
        quote = get_provider(state).latest_quote(["SPY"])["SPY"]
    except Exception as exc:  # noqa: BLE001 - reported, with what was skipped
        detail["unhealthy"] = f"{type(exc).__name__}: {exc}"
        return detail
    if not quote or not (quote.get("last") or 0) > 0:
        detail["unhealthy"] = "provider returned no price for SPY"
        return detail
    detail["spy_last"] = quote.get("last")
    return detail


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
    from compute.errors import MarketDataUnavailable
    from compute.marketdata import MarketDataError

    from serve_app.errors import ApiError

    provider = get_provider(state)
    try:
        return fn(provider), provider.last_cache_status
    except MarketDataError as exc:
        message = str(exc)
        lowered = message.lower()
        if isinstance(exc, MarketDataUnavailable):
            # the source is broken, not the request: 503 naming the ticker and the file
            raise ApiError(503, "MARKET_DATA_UNAVAILABLE", f"market data unavailable: {message}", field="symbol") from exc
        status, code = (404, "NOT_FOUND") if any(w in lowered for w in ("no data", "not found", "no daily bars", "no minute bars")) \
            else (400, "INVALID_PARAMETER")
        raise ApiError(status, code, message, field="symbol") from exc


def fetch_quotes(state: AppState, symbols: list[str]) -> tuple[dict, str | None]:
    """Quotes of ``symbols``; with several, a symbol the source cannot serve (lacking, or its
    file unreadable) is listed in ``missing`` with a warning naming it and why (``meta.warnings``)
    rather than failing the others; alone, it answers 404 or 503 naming it."""
    from compute.marketdata import MarketDataError
    from services.portfolio.service import BOOK_WARNINGS

    def call(provider):
        try:
            raw = provider.latest_quote(symbols)
        except MarketDataError:
            if len(symbols) == 1:
                raise
            raw, problems = {}, []
            for symbol in symbols:
                try:
                    raw.update(provider.latest_quote([symbol]))
                except MarketDataError as exc:
                    problems.append((symbol, exc))
            if len(problems) == len(symbols):
                raise problems[0][1] from None
            sink = BOOK_WARNINGS.get()
            if sink is not None:
                sink.extend(f"no quote for {symbol}: {exc}" for symbol, exc in problems)
        source = getattr(provider, "source", "unknown")
        return {"quotes": [{"symbol": s, **raw[s], "source": source, "as_of": raw[s].get("timestamp")}
                           for s in symbols if s in raw],
                "missing": [s for s in symbols if s not in raw]}

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
            "source": getattr(provider, "source", "unknown"),
            "as_of": provider.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "pricing": getattr(provider, "chain_pricing", "model"),
        }

    return _provider_call(state, call)


#: Most bars one GET /market/bars answers (30+ years of daily bars; ~2 months of minutes).
MAX_BARS = 20_000
BARS_PER_SESSION = {"1d": 1, "1h": 7, "15min": 26, "5min": 78, "1min": 390}


def fetch_bars(state: AppState, symbol: str, start: dt.date, end: dt.date | None, freq: str) -> tuple[dict, str | None]:
    """Daily or intraday bars of ``symbol`` for the sessions ``start``..``end`` (default: today
    in New York) with where they come from (``source``) and when they were read (``as_of``);
    400 naming ``start``/``end`` for a span outside the calendar or over ``MAX_BARS`` bars."""
    from compute.marketdata import calendar
    from serve_app.errors import invalid

    first, last = calendar.all_sessions().index[[0, -1]]
    if end is None:
        end = min(calendar.to_session_date(get_provider(state).now()).date(), last.date())
    for field, day in (("start", start), ("end", end)):
        if not first.date() <= day <= last.date():
            raise invalid(field, f"{day} is outside the calendar range {first.date()}..{last.date()}")
    if start > end:
        raise invalid("start", f"{start} is after end {end}")
    expected = len(calendar.sessions(start, end)) * BARS_PER_SESSION[freq]
    if expected > MAX_BARS:
        raise invalid("start", f"{start}..{end} at {freq} is up to {expected} bars; at most {MAX_BARS} per request "
                               "(narrow the span or use a coarser freq)")

    def call(provider):
        as_of = provider.now()
        if freq == "1d":
            bars = provider.daily_bars(symbol, start, end)
        else:
            bars = provider.intraday_bars(symbol, start, end, freq=freq)
        stamps = bars.index.strftime("%Y-%m-%dT%H:%M:%SZ")
        rows = [{"timestamp": t, "open": float(o), "high": float(h), "low": float(lo), "close": float(c),
                 "volume": float(v)}
                for t, o, h, lo, c, v in zip(stamps, bars["open"], bars["high"], bars["low"], bars["close"],
                                             bars["volume"])]
        return {"symbol": symbol, "freq": freq, "start": str(start), "end": str(end), "count": len(rows),
                "bars": rows, "source": getattr(provider, "source", "unknown"),
                "as_of": as_of.strftime("%Y-%m-%dT%H:%M:%SZ")}

    return _provider_call(state, call)
