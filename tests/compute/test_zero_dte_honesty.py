"""Same-day options must not be a money machine: data, chain and backtest share one clock."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from compute.backtest import BacktestConfig, run_options_backtest
from compute.instruments import expiry_year_fraction
from compute.marketdata import make_provider


def test_expiry_clock_is_trading_time_within_a_day_and_calendar_beyond():
    assert expiry_year_fraction(2.5 * 3600) == pytest.approx(2.5 / (252 * 6.5))
    assert expiry_year_fraction(2 * 86400) == pytest.approx(2 / 365)
    assert expiry_year_fraction(-86400.0) == pytest.approx(-1 / 365)  # expired a day ago
    np.testing.assert_allclose(expiry_year_fraction(np.array([3600.0, 86400.0 * 30])), [1 / (252 * 6.5), 30 / 365])


@pytest.fixture(scope="module")
def spy_hourly():
    provider = make_provider("synthetic", seed=7)
    return provider, provider.intraday_bars("SPY", dt.date(2024, 1, 2), dt.date(2024, 3, 28), freq="1h")


def test_synthetic_intraday_volatility_matches_daily(spy_hourly):
    """Hourly bars must not move more than the daily bars imply (no zig-zag through high/low)."""
    provider = make_provider("synthetic", seed=7)
    hourly = provider.intraday_bars("SPY", dt.date(2023, 1, 3), dt.date(2023, 12, 29), freq="1h")
    daily = provider.daily_bars("SPY", dt.date(2023, 1, 3), dt.date(2023, 12, 29))
    session = hourly.index.tz_convert("America/New_York").normalize()
    # Intraday variance per session (sum of squared hourly log returns within each session)
    # against the variance of open-to-close daily returns: equal in expectation for a diffusion.
    logret = np.log(hourly["close"]).groupby(session).diff()
    first = ~session.duplicated()
    logret[first] = np.log(hourly["close"][first] / hourly["open"][first])
    intraday_var = float((logret**2).groupby(session).sum().mean())
    oc_var = float((np.log(daily["close"] / daily["open"]) ** 2).mean())
    assert 0.8 < intraday_var / oc_var < 1.3


def test_random_signals_lose_money_on_zero_dte(spy_hourly):
    """Buying same-day options on coin flips pays premium, spread and fees: it must lose."""
    provider, bars = spy_hourly
    chain = provider.option_chain("SPY", as_of=dt.datetime(2024, 2, 1, 13, 30), expiries=None, strikes=3)
    atm_iv = float(chain["iv"].median())
    cfg = BacktestConfig(kind="thresholds", value=0.55, allowed_hours=(13, 14, 15), fees_bps=5, slippage_bps=5,
                         periods_per_year=252 * 7)
    results = []
    for seed in range(4):
        score = np.random.default_rng(seed).uniform(0, 1, len(bars))
        res = run_options_backtest(bars["open"].to_numpy(), bars["close"].to_numpy(), score, cfg,
                                   index=bars.index, implied_vol=atm_iv)
        results.append(res.metrics["cum_return"])
    assert all(r < 0 for r in results), results
