"""Synthetic provider: determinism, calendar, intraday/daily consistency, factor structure."""

import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from compute.marketdata import (
    FACTOR_PROXIES,
    FACTORS,
    OPTION_CHAIN_COLUMNS,
    STYLE_FACTORS,
    MarketDataError,
    make_provider,
)
from compute.marketdata import calendar
from compute.marketdata.factors import CORRELATION, DAILY_VOL

SNIPPET = """
import json, sys
from compute.marketdata import make_provider
p = make_provider("synthetic", seed=7)
d = p.daily_bars("AAPL", "2023-03-01", "2023-03-10")
m = p.intraday_bars("ZZTOP", "2023-03-02", "2023-03-02", freq="15min")
print(json.dumps({"daily": d.round(10).values.tolist(), "minute": m.round(10).values.tolist(),
                  "index": [str(t) for t in d.index]}))
"""


@pytest.fixture(scope="module")
def provider():
    return make_provider("synthetic", seed=7)


def test_identical_bars_in_a_separate_process(provider):
    out = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"},
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    other = json.loads(out.stdout.strip().splitlines()[-1])
    daily = provider.daily_bars("AAPL", "2023-03-01", "2023-03-10")
    minute = provider.intraday_bars("ZZTOP", "2023-03-02", "2023-03-02", freq="15min")
    assert other["index"] == [str(t) for t in daily.index]
    assert other["daily"] == daily.round(10).values.tolist()
    assert other["minute"] == minute.round(10).values.tolist()


def test_bar_does_not_depend_on_requested_range(provider):
    long = provider.daily_bars("MSFT", "2010-01-01", "2024-12-31")
    short = provider.daily_bars("MSFT", "2024-06-03", "2024-06-07")
    pd.testing.assert_frame_equal(long.loc[short.index], short)
    week = provider.intraday_bars("MSFT", "2024-06-03", "2024-06-07")
    day = provider.intraday_bars("MSFT", "2024-06-05", "2024-06-05")
    pd.testing.assert_frame_equal(week.loc[day.index], day)


def test_seed_changes_the_universe():
    a = make_provider("synthetic", seed=1).daily_bars("AAPL", "2024-01-02", "2024-03-01")
    b = make_provider("synthetic", seed=2).daily_bars("AAPL", "2024-01-02", "2024-03-01")
    assert not np.allclose(a["close"].to_numpy()[1:], b["close"].to_numpy()[1:])


def test_holiday_has_no_bars_and_half_day_closes_at_1300(provider):
    daily = provider.daily_bars("SPY", "2024-07-01", "2024-07-08")
    dates = [t.tz_convert("America/New_York").date() for t in daily.index]
    assert dt.date(2024, 7, 4) not in dates
    assert dates == [dt.date(2024, 7, d) for d in (1, 2, 3, 5, 8)]
    assert all(t.tz_convert("America/New_York").strftime("%H:%M") == "09:30" for t in daily.index)
    assert len(provider.intraday_bars("SPY", "2024-07-04", "2024-07-04")) == 0

    minutes = provider.intraday_bars("SPY", "2024-11-29", "2024-11-29")
    local = minutes.index.tz_convert("America/New_York")
    assert len(minutes) == 210
    assert local[0].strftime("%H:%M") == "09:30" and local[-1].strftime("%H:%M") == "12:59"
    assert calendar.session_close("2024-11-29").tz_convert("America/New_York").hour == 13
    hourly = provider.intraday_bars("SPY", "2024-11-29", "2024-11-29", freq="1h")
    assert [t.strftime("%H:%M") for t in hourly.index.tz_convert("America/New_York")] == [
        "09:30", "10:30", "11:30", "12:30"]


def test_regular_session_minutes_and_dst(provider):
    winter = provider.intraday_bars("AAPL", "2024-01-10", "2024-01-10")
    summer = provider.intraday_bars("AAPL", "2024-07-10", "2024-07-10")
    assert len(winter) == len(summer) == 390
    assert winter.index[0] == pd.Timestamp("2024-01-10 14:30", tz="UTC")
    assert summer.index[0] == pd.Timestamp("2024-07-10 13:30", tz="UTC")
    assert summer.index[-1] == pd.Timestamp("2024-07-10 19:59", tz="UTC")


@pytest.mark.parametrize("ticker", ["AAPL", "TSLA", "VIX", "FXNAX", "QWERTY"])
def test_minutes_aggregate_exactly_to_daily(provider, ticker):
    start, end = "2024-11-25", "2024-12-06"   # includes the 2024-11-29 half day
    daily = provider.daily_bars(ticker, start, end)
    minutes = provider.intraday_bars(ticker, start, end)
    session = minutes.index.tz_convert("America/New_York").normalize()
    grouped = minutes.groupby(session).agg(open=("open", "first"), high=("high", "max"),
                                           low=("low", "min"), close=("close", "last"),
                                           volume=("volume", "sum"))
    assert len(grouped) == len(daily)
    np.testing.assert_array_equal(grouped.to_numpy(), daily.to_numpy())
    assert (minutes["high"] >= minutes[["open", "close"]].max(axis=1)).all()
    assert (minutes["low"] <= minutes[["open", "close"]].min(axis=1)).all()
    # Each minute opens where the previous one closed, inside a session.
    same_day = session[1:] == session[:-1]
    np.testing.assert_array_equal(minutes["open"].to_numpy()[1:][same_day],
                                  minutes["close"].to_numpy()[:-1][same_day])


@pytest.mark.parametrize("freq", ["5min", "15min", "1h"])
def test_resampled_bars_aggregate_exactly(provider, freq):
    minutes = provider.intraday_bars("NVDA", "2024-03-04", "2024-03-08")
    bars = provider.intraday_bars("NVDA", "2024-03-04", "2024-03-08", freq=freq)
    # Reference grouping with pandas: bucket start = open + k * freq within each session.
    step = pd.Timedelta(freq)
    local = minutes.index.tz_convert("America/New_York")
    open_ = local.normalize() + pd.Timedelta(hours=9, minutes=30)
    start = open_ + ((local - open_) // step) * step
    ref = minutes.groupby(start.tz_convert("UTC")).agg(
        open=("open", "first"), high=("high", "max"), low=("low", "min"),
        close=("close", "last"), volume=("volume", "sum"))
    np.testing.assert_array_equal(ref.index.asi8, bars.index.asi8)
    np.testing.assert_array_equal(ref.to_numpy(), bars.to_numpy())
    assert bars["volume"].sum() == provider.daily_bars("NVDA", "2024-03-04", "2024-03-08")["volume"].sum()


def test_volume_profile_is_u_shaped(provider):
    minutes = provider.intraday_bars("AMZN", "2024-02-01", "2024-04-30")
    local = minutes.index.tz_convert("America/New_York")
    by_minute = minutes["volume"].groupby(local.hour * 60 + local.minute).mean()
    first, middle, last = by_minute.iloc[:30].mean(), by_minute.iloc[165:225].mean(), by_minute.iloc[-30:].mean()
    assert first > 1.8 * middle and last > 1.8 * middle


def test_bars_are_valid_ohlc():
    # The whole generated horizon, seen from a clock after it (bars end at "now").
    after_horizon = pd.Timestamp("2036-01-02", tz="UTC").timestamp()
    provider = make_provider("synthetic", seed=7, clock=lambda: after_horizon)
    daily = provider.daily_bars("PTON", "2000-01-01", "2035-12-31")
    assert len(daily) > 8000 and daily.index.is_monotonic_increasing
    assert (daily[["open", "high", "low", "close"]] > 0).all().all()
    assert (daily["high"] >= daily[["open", "close"]].max(axis=1)).all()
    assert (daily["low"] <= daily[["open", "close"]].min(axis=1)).all()
    assert daily.dtypes.eq(np.float64).all() and daily.index.name == "timestamp"
    assert str(daily.index.tz) == "UTC"


def test_factor_correlations_and_vols_match_configuration(provider):
    f = provider.factor_returns("2000-01-01", "2024-12-31")
    assert list(f.columns) == list(FACTORS) and len(f) > 6000
    n = len(f)
    # Fat tails and GARCH widen the sampling error of a correlation beyond 1/sqrt(n); 6/sqrt(n)
    # (~0.075) still rejects any mis-specified entry of the matrix.
    np.testing.assert_allclose(f.corr().to_numpy(), CORRELATION, atol=6 / np.sqrt(n))
    # One GARCH multiplier scales every factor: the vol *ratios* are sharp, while the common
    # level wanders with the persistent variance process (a 25-year sample of g has a mean
    # noticeably different from 1), hence the looser absolute check.
    std = f.std().to_numpy()
    np.testing.assert_allclose(std / std[0], DAILY_VOL / DAILY_VOL[0], rtol=0.05)
    np.testing.assert_allclose(std, DAILY_VOL, rtol=0.25)
    kurt = f["market"].kurt()
    assert kurt > 1.0   # fat tails (normal = 0)
    absret = f["market"].abs()
    assert absret.autocorr(1) > 0.1   # volatility clustering


def test_style_etfs_are_market_plus_their_factor(provider):
    start, end = "2010-01-01", "2024-12-31"
    factors = provider.factor_returns(start, end)
    spy = provider.daily_bars("SPY", start, end)["close"].pct_change().iloc[1:]
    np.testing.assert_allclose(spy.to_numpy(), factors["market"].iloc[1:].to_numpy(), atol=1e-12)
    for style in STYLE_FACTORS:
        etf = provider.daily_bars(FACTOR_PROXIES[style], start, end)["close"].pct_change().iloc[1:]
        spread = etf - spy
        assert np.corrcoef(spread, factors[style].iloc[1:])[0, 1] > 0.99


@pytest.mark.parametrize("ticker", ["AAPL", "JPM", "XOM", "QQQ", "UNKNOWNCO"])
def test_regression_on_etf_spreads_recovers_true_loadings(provider, ticker):
    start, end = "2005-01-01", "2024-12-31"
    closes = {t: provider.daily_bars(t, start, end)["close"]
              for t in [ticker, "SPY", *(FACTOR_PROXIES[s] for s in STYLE_FACTORS), "TLT", "USO"]}
    rets = pd.DataFrame(closes).pct_change().dropna()
    X = pd.DataFrame({"market": rets["SPY"]})
    for style in STYLE_FACTORS:
        X[style] = rets[FACTOR_PROXIES[style]] - rets["SPY"]
    X["rates"] = -rets["TLT"] / 17.0   # TLT = -17 x yield change (+ 20 bp noise)
    X["oil"] = rets["USO"]
    fit = sm.OLS(rets[ticker], sm.add_constant(X)).fit(cov_type="HC1")
    true = provider.true_loadings(ticker)
    for factor in X.columns:
        err = abs(fit.params[factor] - true[factor])
        # Within 4.5 robust standard errors (plus a small allowance for the proxies' noise).
        assert err < 4.5 * fit.bse[factor] + 0.02 * max(1.0, abs(true[factor])), (
            factor, fit.params[factor], true[factor], fit.bse[factor])


def test_reference_data_and_price_levels(provider):
    spy = provider.reference("SPY")
    assert spy["asset_class"] == "etf" and spy["is_etf"] and "S&P 500" in spy["name"]
    assert provider.reference("FXNAX")["asset_class"] == "mutual_fund"
    assert provider.reference("GLD")["asset_class"] == "commodity"
    assert provider.reference("VIX")["asset_class"] == "index"
    aapl = provider.reference("aapl")
    assert aapl == {"ticker": "AAPL", "name": "Apple Inc.", "sector": "Technology",
                    "asset_class": "equity", "is_etf": False}
    unknown = provider.reference("QWERTY")
    assert unknown["asset_class"] == "equity" and unknown["sector"]
    levels = {t: provider.daily_bars(t, "2024-01-02", "2024-12-31")["close"]
              for t in ("SPY", "AAPL")}
    assert 300 < levels["SPY"].min() and levels["SPY"].max() < 750   # anchored at 475
    assert 100 < levels["AAPL"].min() and levels["AAPL"].max() < 350   # anchored at 185
    with pytest.raises(MarketDataError):
        provider.daily_bars("NOT A TICKER!", "2024-01-02", "2024-01-05")
    with pytest.raises(MarketDataError):
        provider.intraday_bars("AAPL", "2024-01-02", "2024-01-05", freq="2min")


def test_latest_quote_uses_the_clock():
    now = pd.Timestamp("2024-06-05 11:15", tz="America/New_York").timestamp()
    p = make_provider("synthetic", seed=3, clock=lambda: now)
    q = p.latest_quote(["AAPL", "spy"])
    assert set(q) == {"AAPL", "SPY"}
    minutes = p.intraday_bars("AAPL", "2024-06-05", "2024-06-05")
    prev_close = p.daily_bars("AAPL", "2024-06-04", "2024-06-04")["close"].iloc[0]
    # Minutes that ended by 11:15:00 ET: the last is 11:14-11:15 (never a bar still forming).
    upto = minutes[minutes.index + pd.Timedelta(minutes=1) <= pd.Timestamp("2024-06-05 15:15", tz="UTC")]
    assert len(upto) == len(minutes) == 105
    a = q["AAPL"]
    assert a["last"] == pytest.approx(upto["close"].iloc[-1], abs=1e-4)
    assert a["volume"] == upto["volume"].sum()
    assert a["bid"] < a["last"] < a["ask"]
    assert a["change"] == pytest.approx(a["last"] - prev_close, abs=1e-3)
    assert a["change_percent"] == pytest.approx(100 * (a["last"] / prev_close - 1), abs=1e-3)
    assert a["timestamp"] == "2024-06-05T15:15:00Z"      # not after the clock's now


def test_option_chain_prices_from_greeks_engine(provider):
    chain = provider.option_chain("SPY", as_of="2024-06-03T11:00", expiries="all", strikes=10)
    assert list(chain.columns) == list(OPTION_CHAIN_COLUMNS)
    expiries = sorted(chain["expiry"].unique())
    assert expiries[0] == dt.date(2024, 6, 3)                       # 0DTE
    assert dt.date(2024, 6, 4) in expiries and dt.date(2024, 6, 21) in expiries
    assert chain.groupby("expiry")["strike"].nunique().eq(10).all()
    assert (chain["bid"] <= chain["mid"]).all() and (chain["mid"] <= chain["ask"]).all()
    assert chain["symbol"].iloc[0].startswith("SPY240603")
    calls = chain[chain["right"] == "C"]
    assert ((calls["delta"] > 0) & (calls["delta"] < 1)).all()
    # Put-call parity on mids within the spread (European BSM).
    front = chain[chain["expiry"] == dt.date(2024, 6, 21)].pivot(index="strike", columns="right",
                                                                 values="mid")
    spot = chain["underlying_price"].iloc[0]
    diff = front["C"] - front["P"] - (spot - front.index.to_numpy())
    assert diff.abs().max() < 3.0
    # Put skew: lower strikes carry higher IV on a monthly expiry.
    month = chain[(chain["expiry"] == dt.date(2024, 6, 21)) & (chain["right"] == "P")]
    assert month["iv"].iloc[0] > month["iv"].iloc[-1]
    again = provider.option_chain("SPY", as_of="2024-06-03T11:00", expiries="all", strikes=10)
    pd.testing.assert_frame_equal(chain, again)
    with pytest.raises(MarketDataError):
        provider.option_chain("FXNAX")
