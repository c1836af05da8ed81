"""Pricing a book of positions: marks, P&L, exposures and Greeks per position (pure, no Ray).

``price_positions(positions, provider, as_of=None)`` takes one row per holding and the
compute market-data provider and returns the same rows with market data and risk columns.

Pricing instant
    ``as_of`` None: now. Stocks are marked at the provider's latest quote (``last``); option
    chains are requested at the same instant. ``as_of`` given: the close of the last NYSE
    session on or before that date (daily close for stocks, the chain at that close).

Option marks and volatility
    An option listed in the provider's chain (same OCC symbol) is marked at the chain mid and
    its Greeks use the chain's implied vol (``vol_source='chain_iv'``). Otherwise the option is
    priced with Black-Scholes-Merton at the underlying's realised volatility (close-to-close
    log returns over ``realised_window`` sessions, annualised with sqrt(252);
    ``vol_source='realised'``). Without either, price and Greeks are NaN (``vol_source``
    None) - never invented numbers.

Time to expiry
    Years = seconds from the pricing instant to the expiry session's close / (365 x 86400),
    the clock the chain uses (mibian's calendar-day convention, with fractional days).
    Expired options (T <= 0) are worth their intrinsic value at the underlying's close on the
    expiry session and carry zero Greeks and zero exposure.

Units (per position, signed by direction; quantity in shares or contracts)
    market_value       = quantity x price x multiplier
    cost_basis         = quantity x entry_price x multiplier;  pnl = market_value - cost_basis;
    pnl_percent        = 100 x pnl / |cost_basis|
    notional_exposure  = stocks: market value; options: quantity x multiplier x underlying price
                         (the underlying notional the contracts control; 0 once expired)
    delta..rho         = per-share BSM Greeks (mibian units: theta per calendar day, vega and
                         rho per 1 point); stocks: delta 1, other Greeks NaN
    position_<greek>   = per-share Greek x quantity x multiplier (stocks: delta = quantity,
                         others 0)
    dollar_delta       = position_delta x underlying price
    delta_exposure     = delta-adjusted notional: stocks = market value, options =
                         delta x quantity x 100 x underlying price (= dollar_delta)
    daily_change       = stocks: quantity x (last - previous close); options NaN (no
                         previous option mark is kept)
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from compute.greeks import bsm_greeks
from compute.instruments import OPTION_MULTIPLIER, expiry_year_fraction
from compute.marketdata import calendar
from compute.marketdata.base import MarketDataError
from compute.marketdata.reference import profile
from compute.memo import ProviderMemo

INPUT_COLUMNS = ("position_id", "symbol", "underlying", "type", "quantity", "entry_price", "strike",
                 "expiry", "option_right", "multiplier", "strategy", "tags")
OPTION_TYPES = frozenset({"LC", "LP", "SC", "SP"})
TRADING_DAYS_PER_YEAR = 252.0
VOL_SOURCE_CHAIN = "chain_iv"
VOL_SOURCE_REALISED = "realised"
GREEKS = ("delta", "gamma", "theta", "vega", "rho")


def empty_positions() -> pd.DataFrame:
    """A positions frame with the input columns and no rows."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in INPUT_COLUMNS})


def pricing_instant(as_of, now: pd.Timestamp | None = None) -> tuple[pd.Timestamp, pd.Timestamp | None]:
    """(instant in UTC, session date or None): for None, the minute ``now`` is in (quotes are
    the last ended minute's, so a live book is priced as of that minute: every pricing in the
    same minute, in any process, gives the same figures); else the last close at or before
    ``as_of`` that has happened by ``now`` (a session still trading has no close yet)."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    if as_of is None:
        return now.floor("min"), None
    ts = pd.Timestamp(as_of)
    if ts.tzinfo is None and isinstance(as_of, dt.datetime):
        ts = ts.tz_localize("UTC")
    session = calendar.session_on_or_before(ts if ts.tzinfo is None else ts.tz_convert(calendar.NEW_YORK))
    close = calendar.session_close(session)
    while close > now or (ts.tzinfo is not None and close > ts):
        session = calendar.previous_session(session)
        close = calendar.session_close(session)
    return close, session


def _expiry_close(expiry) -> pd.Timestamp:
    return calendar.session_close(calendar.session_on_or_before(pd.Timestamp(expiry)))


def _close_on_or_before(provider, ticker: str, day: pd.Timestamp, lookback_days: int = 15) -> tuple[float, float]:
    """(close, previous close) of the last session on or before ``day``; NaN when missing."""
    bars = provider.daily_bars(ticker, (day - pd.Timedelta(days=lookback_days)).date(), day.date())
    closes = bars["close"].to_numpy(np.float64) if bars is not None else np.array([])
    if closes.size == 0:
        return math.nan, math.nan
    return float(closes[-1]), float(closes[-2]) if closes.size > 1 else math.nan


def realised_vol(provider, ticker: str, day: pd.Timestamp, window: int) -> float:
    """Annualised close-to-close volatility of the last ``window`` daily log returns up to ``day``."""
    start = (day - pd.Timedelta(days=int(window * 1.6) + 15)).date()
    try:
        bars = provider.daily_bars(ticker, start, day.date())
    except MarketDataError:
        return math.nan
    closes = bars["close"].to_numpy(np.float64)[-(window + 1):]
    if closes.size < max(3, window // 2) or np.any(closes <= 0):
        return math.nan
    returns = np.diff(np.log(closes))
    return float(np.std(returns, ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR))


def _underlying_snapshot(provider, underlyings: list[str], session) -> dict[str, dict]:
    """Per underlying: price, prev_close, name, sector, asset_class, dividend_yield."""
    out: dict[str, dict] = {}
    quotes: dict = {}
    if session is None and underlyings:
        try:
            quotes = provider.latest_quote(underlyings)
        except MarketDataError:
            quotes = {}
            if len(underlyings) > 1:  # one bad ticker fails the batch call: ask per ticker
                for u in underlyings:
                    try:
                        quotes.update(provider.latest_quote([u]))
                    except MarketDataError:
                        pass
    for u in underlyings:
        try:
            ref = provider.reference(u) or {}
        except MarketDataError:
            ref = {}
        price = prev = math.nan
        error = None
        if session is None:
            q = quotes.get(u)
            if q and q.get("last"):
                price = float(q["last"])
                change = q.get("change")
                prev = price - float(change) if change is not None else math.nan
        if not price > 0:
            try:
                day = session if session is not None else pd.Timestamp.now(tz=calendar.NEW_YORK).tz_localize(None).normalize()
                price, prev = _close_on_or_before(provider, u, day)
            except (MarketDataError, ValueError) as exc:
                price = prev = math.nan
                error = str(exc)
            if not price > 0 and error is None:
                error = f"no price for {u}"
        out[u] = {
            "error": error,
            "price": price,
            "prev_close": prev,
            "name": ref.get("name"),
            "sector": ref.get("sector"),
            "asset_class": ref.get("asset_class"),
            "dividend_yield": dividend_yield(provider, u, ref),
        }
    return out


def dividend_yield(provider, ticker: str, ref: dict | None = None) -> float:
    """Continuous dividend yield for option pricing: the provider's reference value when it
    gives one; else, for providers whose chains are modelled by ``compute.marketdata.options``
    (synthetic, files), the yield those chains were priced with; else 0."""
    if ref and ref.get("dividend_yield") is not None:
        return float(ref["dividend_yield"])
    if str(getattr(provider, "data_version", "")).startswith("polygon"):
        return 0.0
    try:
        return float(profile(ticker).dividend_yield)
    except MarketDataError:
        return 0.0


#: Chain marks per provider: a chain at a given session close or minute does not change, so a
#: book priced again in the same minute (a modeling session's every edit) reuses them.
_MARKS = ProviderMemo(512)


def _chain_marks(provider, underlying: str, expiry: dt.date, instant: pd.Timestamp, session) -> dict[str, tuple[float, float]]:
    """OCC symbol -> (mid, iv) of one expiry of the chain; empty when the chain has none
    (kept per provider, underlying, expiry, instant and the provider's data version)."""
    key = (underlying, expiry, session.date() if session is not None else instant, getattr(provider, "data_version", ""))
    return _MARKS.get_or_build(provider, key,
                               lambda: _chain_marks_uncached(provider, underlying, expiry, instant, session))


def _chain_marks_uncached(provider, underlying: str, expiry: dt.date, instant: pd.Timestamp, session):
    try:
        chain = provider.option_chain(underlying, as_of=session.date() if session is not None else instant,
                                      expiries=[expiry])
    except (MarketDataError, ValueError, KeyError):
        return {}
    if chain is None or len(chain) == 0:
        return {}
    return {s: (float(m), float(v)) for s, m, v in zip(chain["symbol"], chain["mid"], chain["iv"])}


def price_positions(positions: pd.DataFrame, provider, as_of: dt.datetime | None = None, rate: float = 0.045,
                    realised_window: int = 30) -> pd.DataFrame:
    """Mark every position and add P&L, exposure and Greek columns (see module docstring)."""
    frame = positions.reset_index(drop=True).copy()
    for column in INPUT_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    n = len(frame)
    instant, session = pricing_instant(as_of, provider.now())
    underlyings = sorted({str(u) for u in frame["underlying"]})
    snap = _underlying_snapshot(provider, underlyings, session)

    types = frame["type"].astype(str).to_numpy()
    is_option = np.isin(types, list(OPTION_TYPES))
    quantity = frame["quantity"].to_numpy(np.float64)
    entry = frame["entry_price"].to_numpy(np.float64)
    multiplier = np.where(is_option, float(OPTION_MULTIPLIER), 1.0)
    given_mult = pd.to_numeric(frame["multiplier"], errors="coerce").to_numpy(np.float64)
    multiplier = np.where(np.isfinite(given_mult) & (given_mult > 0), given_mult, multiplier)
    spot = np.array([snap[str(u)]["price"] for u in frame["underlying"]], dtype=np.float64)
    prev_close = np.array([snap[str(u)]["prev_close"] for u in frame["underlying"]], dtype=np.float64)
    div_yield = np.array([snap[str(u)]["dividend_yield"] for u in frame["underlying"]], dtype=np.float64)

    price = np.where(is_option, np.nan, spot)
    iv = np.full(n, np.nan)
    vol_source = np.full(n, None, dtype=object)
    tte = np.full(n, np.nan)
    expired = np.zeros(n, dtype=bool)
    strike = pd.to_numeric(frame["strike"], errors="coerce").to_numpy(np.float64)
    is_call = frame["option_right"].astype(str).str.upper().eq("C").to_numpy()
    greek_cols = {g: np.where(is_option, np.nan, np.nan) for g in GREEKS}
    greek_cols["delta"] = np.where(is_option, np.nan, 1.0)

    opt_idx = np.flatnonzero(is_option)
    if opt_idx.size:
        expiries = [pd.Timestamp(frame.at[i, "expiry"]).date() for i in opt_idx]
        closes = {e: _expiry_close(e) for e in set(expiries)}
        tte[opt_idx] = expiry_year_fraction(np.array([(closes[e] - instant).total_seconds() for e in expiries]))
        expired[opt_idx] = tte[opt_idx] <= 0.0
        marks: dict[tuple[str, dt.date], dict] = {}
        realised: dict[str, float] = {}
        vol_day = session if session is not None else instant.tz_convert(calendar.NEW_YORK).tz_localize(None).normalize()
        sigma = np.full(opt_idx.size, np.nan)
        S = spot[opt_idx].copy()
        for k, i in enumerate(opt_idx):
            u, e = str(frame.at[i, "underlying"]), expiries[k]
            if expired[i]:
                # Settled at the underlying's close on the expiry session.
                try:
                    S[k], _ = _close_on_or_before(provider, u, calendar.session_on_or_before(pd.Timestamp(e)))
                except (MarketDataError, ValueError):
                    S[k] = math.nan
                continue
            if (u, e) not in marks:
                marks[(u, e)] = _chain_marks(provider, u, e, instant, session)
            listed = marks[(u, e)].get(str(frame.at[i, "symbol"]))
            if listed is not None and listed[1] > 0:
                price[i], sigma[k] = listed
                vol_source[i] = VOL_SOURCE_CHAIN
                continue
            if u not in realised:
                realised[u] = realised_vol(provider, u, vol_day, realised_window)
            if realised[u] > 0:
                sigma[k] = realised[u]
                vol_source[i] = VOL_SOURCE_REALISED
        T = np.where(expired[opt_idx], 0.0, tte[opt_idx])
        sig = np.where(expired[opt_idx], 0.2, sigma)  # any positive vol: T <= 0 gives intrinsic, zeros
        result = bsm_greeks(S, strike[opt_idx], T, rate, div_yield[opt_idx], sig, is_call[opt_idx])
        theoretical = np.asarray(result.price, np.float64)
        listed_mask = vol_source[opt_idx] == VOL_SOURCE_CHAIN
        price[opt_idx] = np.where(listed_mask, price[opt_idx], theoretical)
        iv[opt_idx] = np.where(expired[opt_idx], np.nan, sigma)
        for g in GREEKS:
            greek_cols[g][opt_idx] = np.asarray(getattr(result, g), np.float64)

    market_value = quantity * price * multiplier
    cost_basis = quantity * entry * multiplier
    pnl = market_value - cost_basis
    with np.errstate(divide="ignore", invalid="ignore"):
        pnl_percent = np.where(np.abs(cost_basis) > 0, 100.0 * pnl / np.abs(cost_basis), np.nan)
    size = quantity * multiplier
    position = {}
    for g in GREEKS:
        position[g] = np.where(is_option, greek_cols[g] * size, quantity if g == "delta" else 0.0)
    notional = np.where(is_option, np.where(expired, 0.0, size * spot), market_value)
    dollar_delta = position["delta"] * spot
    delta_exposure = np.where(is_option, dollar_delta, market_value)
    daily_change = np.where(is_option, np.nan, quantity * (spot - prev_close) * multiplier)

    out = frame
    out["name"] = [snap[str(u)]["name"] for u in frame["underlying"]]
    out["sector"] = [snap[str(u)]["sector"] for u in frame["underlying"]]
    out["asset_class"] = [("option" if o else snap[str(u)]["asset_class"]) for u, o in zip(frame["underlying"], is_option)]
    out["multiplier"] = multiplier
    out["underlying_price"] = spot
    out["underlying_prev_close"] = prev_close
    out["dividend_yield"] = div_yield
    out["price"] = price
    out["iv"] = iv
    out["vol_source"] = vol_source
    out["time_to_expiry"] = tte
    out["expired"] = expired
    out["market_value"] = market_value
    out["cost_basis"] = cost_basis
    out["pnl"] = pnl
    out["pnl_percent"] = pnl_percent
    out["notional_exposure"] = notional
    for g in GREEKS:
        out[g] = greek_cols[g]
    for g in GREEKS:
        out[f"position_{g}"] = position[g]
    out["dollar_delta"] = dollar_delta
    out["delta_exposure"] = delta_exposure
    out["daily_change"] = daily_change
    with np.errstate(divide="ignore", invalid="ignore"):
        out["daily_change_percent"] = np.where(is_option, np.nan, 100.0 * (spot / prev_close - 1.0))
    out.attrs["as_of"] = instant.to_pydatetime()
    out.attrs["rate"] = rate
    #: underlying -> why it has no price (its positions' figures are NaN, left out of totals)
    out.attrs["missing_data"] = {u: snap[u]["error"] for u in underlyings if snap[u].get("error")}
    return out
