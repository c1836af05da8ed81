"""Option chains priced with Black-Scholes-Merton on a volatility smile and term structure.

Shared by every provider that has no option feed of its own (synthetic, files): the provider
supplies the spot, the current and long-run at-the-money volatility and the dividend yield;
this module lists expiries and strikes, builds the implied-volatility surface, prices through
:func:`compute.greeks.bsm_greeks` and adds a bid/ask spread and deterministic open interest and
volume.

Surface (T in years, k = ln(K / F) the log-moneyness to the forward F = S e^{(r-q)T}):

    atm(T)^2 = lr^2 + (now^2 - lr^2) (1 - e^{-K T}) / (K T)      K = 6 / year
    x        = k / (atm(T) sqrt(T))                               standardized moneyness, |x| <= 4
    iv(K, T) = atm(T) (1 + skew x + curvature x^2)                floored at 0.4 atm(T)

Equities and equity ETFs carry a put skew (skew -0.08); volatility indices a call skew.

Expiries listed: daily (every session, 0DTE included) for SPY, QQQ and IWM over the next ten
sessions; weekly Fridays for six weeks; standard monthlies (third Friday) for twelve months;
January LEAPS for the next two years.  An expiry falling on a holiday moves to the session
before.  Strikes: a grid around spot (step 1 for the daily-expiry ETFs, else by price level)
spanning about four standard deviations to expiry.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from compute.greeks import bsm_greeks
from compute.instruments import TRADING_SECONDS_PER_YEAR, expiry_year_fraction, format_occ
from compute.marketdata import calendar
from compute.marketdata.base import OPTION_CHAIN_COLUMNS, MarketDataError
from compute.marketdata.factors import seed_words

RISK_FREE_RATE = 0.045
DAILY_EXPIRY_UNDERLYINGS = frozenset({"SPY", "QQQ", "IWM"})
TERM_STRUCTURE_SPEED = 6.0
MIN_TIME_TO_EXPIRY = 60.0 / TRADING_SECONDS_PER_YEAR   # one minute: a 0DTE at the bell still has time value


def strike_step(underlying: str, spot: float) -> float:
    """Listed strike spacing for an underlying at ``spot``."""
    if underlying in DAILY_EXPIRY_UNDERLYINGS:
        return 1.0
    for limit, step in ((25.0, 0.5), (50.0, 1.0), (200.0, 2.5), (500.0, 5.0)):
        if spot < limit:
            return step
    return 10.0


def _on_or_before_session(day: pd.Timestamp) -> pd.Timestamp:
    return calendar.session_on_or_before(day)


def listed_expiries(underlying: str, as_of: pd.Timestamp) -> list[dt.date]:
    """Expiry dates listed at ``as_of`` (UTC timestamp), excluding any already expired."""
    today = calendar.to_session_date(as_of)
    found: set[pd.Timestamp] = set()
    if underlying in DAILY_EXPIRY_UNDERLYINGS:
        found.update(calendar.next_sessions(today, 10))
    friday = today + pd.Timedelta(days=(4 - today.weekday()) % 7)
    for week in range(6):
        found.add(_on_or_before_session(friday + pd.Timedelta(weeks=week)))
    for months in range(13):
        first = (today.replace(day=1) + pd.DateOffset(months=months))
        third_friday = first + pd.Timedelta(days=(4 - first.weekday()) % 7 + 14)
        found.add(_on_or_before_session(third_friday))
    for years in (1, 2):
        first = pd.Timestamp(year=today.year + years, month=1, day=1)
        found.add(_on_or_before_session(first + pd.Timedelta(days=(4 - first.weekday()) % 7 + 14)))
    live = [d for d in sorted(found) if calendar.session_close(d) > as_of]
    return [d.date() for d in live]


def atm_term_vol(now_vol: float, long_run_vol: float, years: np.ndarray) -> np.ndarray:
    """At-the-money volatility for each maturity, decaying from ``now_vol`` to ``long_run_vol``."""
    kt = TERM_STRUCTURE_SPEED * np.maximum(years, 1e-9)
    weight = (1.0 - np.exp(-kt)) / kt
    return np.sqrt(long_run_vol**2 + (now_vol**2 - long_run_vol**2) * weight)


def smile_vol(atm: np.ndarray, log_moneyness: np.ndarray, years: np.ndarray,
              skew: float, curvature: float = 0.03) -> np.ndarray:
    """Implied volatility on the smile around ``atm`` (see module docstring)."""
    x = np.clip(log_moneyness / (atm * np.sqrt(np.maximum(years, 1e-9))), -4.0, 4.0)
    return np.maximum(atm * (1.0 + skew * x + curvature * x * x), 0.4 * atm)


def _select_expiries(listed: list[dt.date], expiries) -> list[dt.date]:
    if expiries is None:
        return listed[:1]
    if isinstance(expiries, str):
        if expiries.lower() != "all":
            try:
                wanted = [pd.Timestamp(expiries).date()]
            except ValueError:
                raise MarketDataError(f"invalid expiry {expiries!r}; use 'all' or YYYY-MM-DD") from None
            return _select_expiries(listed, wanted)
        return listed
    wanted = {pd.Timestamp(e).date() for e in expiries}
    missing = sorted(wanted - set(listed))
    if missing:
        raise MarketDataError(
            "expiry not listed: " + ", ".join(d.isoformat() for d in missing)
            + f" (listed: {', '.join(d.isoformat() for d in listed[:8])}, ...)"
        )
    return sorted(wanted)


def build_option_chain(underlying: str, spot: float, as_of: pd.Timestamp, now_vol: float,
                       long_run_vol: float, dividend_yield: float, activity: float,
                       expiries=None, strikes: int | None = None, skew: float = -0.08,
                       seed: int = 0, rate: float = RISK_FREE_RATE) -> pd.DataFrame:
    """Price a chain for ``underlying`` at ``as_of`` (UTC).

    ``expiries``: None = the nearest listed expiry, "all", one date or a list of dates.
    ``strikes``: the N strikes nearest spot per expiry (None = the full listed grid).
    ``activity`` scales open interest and volume (e.g. the underlying's share volume / 1000).
    Returns OPTION_CHAIN_COLUMNS sorted by expiry, strike, right; iv and delta are decimals,
    expiry a ``datetime.date``.
    """
    if not spot > 0:
        raise MarketDataError(f"no positive price for {underlying} at {as_of}")
    chosen = _select_expiries(listed_expiries(underlying, as_of), expiries)
    step = strike_step(underlying, spot)
    frames = []
    for expiry in chosen:
        close = calendar.session_close(expiry)
        years = max(expiry_year_fraction((close - as_of).total_seconds()), MIN_TIME_TO_EXPIRY)
        atm = float(atm_term_vol(now_vol, long_run_vol, np.array([years]))[0])
        width = min(max(4.0 * atm * np.sqrt(years) + 0.03, 0.05), 0.6)
        lo = np.ceil(spot * (1.0 - width) / step)
        hi = np.floor(spot * (1.0 + width) / step)
        grid = np.arange(max(lo, 1.0), hi + 1.0) * step
        if strikes is not None:
            if strikes <= 0:
                raise MarketDataError("strikes must be a positive integer")
            nearest = np.argsort(np.abs(grid - spot), kind="stable")[:strikes]
            grid = np.sort(grid[nearest])
        grid = np.round(grid, 3)
        n = grid.shape[0]
        strike = np.concatenate([grid, grid])
        is_call = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
        forward = spot * np.exp((rate - dividend_yield) * years)
        iv = smile_vol(np.full(2 * n, atm), np.log(strike / forward), np.full(2 * n, years), skew)
        greeks = bsm_greeks(spot, strike, years, rate, dividend_yield, iv, is_call)
        price = np.maximum(np.asarray(greeks.price, np.float64), 0.0)
        half_spread = np.maximum(0.005, 0.02 * price)
        bid = np.floor(np.maximum(price - half_spread, 0.0) * 100.0) / 100.0
        ask = np.maximum(np.ceil((price + half_spread) * 100.0) / 100.0, 0.01)
        # Open interest peaks at the money and in the monthly cycle; volume turns over a
        # fraction of it, most of all on the expiry day.
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
            seed_words(seed, "options", underlying, calendar.to_session_date(as_of).date(),
                       expiry))))
        standardized = np.log(strike / forward) / (atm * np.sqrt(years))
        moneyness_weight = np.exp(-0.5 * (standardized / 1.5) ** 2)
        is_monthly = 15 <= expiry.day <= 21 and expiry.weekday() in (3, 4)
        oi = np.floor(activity * (3.0 if is_monthly else 1.0) * moneyness_weight
                      * np.exp(0.5 * rng.standard_normal(2 * n)))
        turnover = 2.0 if years < 1.5 / 365.0 else 0.15
        volume = np.floor(np.maximum(oi, activity * 0.05 * moneyness_weight) * turnover
                          * np.exp(0.5 * rng.standard_normal(2 * n)))
        frames.append(pd.DataFrame({
            "symbol": [format_occ(underlying, expiry, "C" if c else "P", k)
                       for c, k in zip(is_call, strike)],
            "underlying": underlying,
            "expiry": expiry,
            "strike": strike,
            "right": np.where(is_call, "C", "P"),
            "bid": bid,
            "ask": ask,
            "mid": np.round((bid + ask) / 2.0, 4),
            "iv": iv,
            "delta": np.asarray(greeks.delta, np.float64),
            "open_interest": oi.astype(np.int64),
            "volume": volume.astype(np.int64),
            "underlying_price": float(spot),
        }))
    if not frames:
        return pd.DataFrame({c: [] for c in OPTION_CHAIN_COLUMNS})
    chain = pd.concat(frames, ignore_index=True)
    return chain.sort_values(["expiry", "strike", "right"], kind="stable").reset_index(drop=True)[
        list(OPTION_CHAIN_COLUMNS)]
