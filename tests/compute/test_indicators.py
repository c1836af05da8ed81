"""Indicators against textbook tables, hand computations and independent pandas references."""

import numpy as np
import pandas as pd
import pytest

from compute import indicators as ind

# StockCharts ChartSchool "Relative Strength Index" worked table (14-day RSI); the closes are the
# spreadsheet's 4-decimal values, the RSI column as printed there (2 decimals).
RSI_CLOSES = [44.3389, 44.0902, 44.1497, 43.6124, 44.2778, 44.8318, 45.0923, 45.4210, 45.8840,
              46.0826, 45.8936, 46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116,
              46.2222, 45.6439, 46.2122, 46.2521, 45.7137, 46.4515, 45.7835, 45.3548, 44.0288,
              44.1783, 44.2181, 44.5672, 43.4205, 42.6628, 43.1314]
RSI_STOCKCHARTS = [70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71,
                   50.42, 39.99, 41.46, 41.87, 45.46, 37.30, 33.08, 37.77]

# StockCharts "Moving Averages" worked table: 10-day SMA and EMA.
MA_CLOSES = [22.27, 22.19, 22.08, 22.17, 22.18, 22.13, 22.23, 22.43, 22.24, 22.29, 22.15, 22.39,
             22.38, 22.61, 23.36, 24.05, 23.75, 23.83, 23.95, 23.63, 23.82, 23.87, 23.65, 23.19,
             23.10, 23.33, 22.68, 23.10, 22.40, 22.17]
EMA10_STOCKCHARTS = [22.22, 22.21, 22.24, 22.27, 22.33, 22.52, 22.80, 22.97, 23.13, 23.28,
                     23.34, 23.43, 23.51, 23.54, 23.47, 23.40, 23.39, 23.26, 23.23, 23.08, 22.92]
SMA10_STOCKCHARTS = [22.22, 22.21, 22.23, 22.26, 22.30, 22.42, 22.61, 22.77, 22.90, 23.08, 23.21,
                     23.38, 23.52, 23.65, 23.71, 23.68, 23.61, 23.51, 23.43, 23.28, 23.13]


def test_rsi_matches_stockcharts_table():
    out = ind.rsi(RSI_CLOSES, 14)
    assert np.all(np.isnan(out[:14]))
    # the table's first row shows 70.53 from unrounded averages; 0.015 covers its rounding
    np.testing.assert_allclose(out[14:], RSI_STOCKCHARTS, atol=0.015)


def test_rsi_first_value_by_hand():
    # first 14 changes: gains sum 3.34, losses sum 1.40 (2-decimal closes) -> RS = 2.3857
    closes = [round(c, 2) for c in RSI_CLOSES[:15]]
    assert ind.rsi(closes, 14)[14] == pytest.approx(100 - 100 / (1 + 3.34 / 1.40), abs=1e-9)


def test_rsi_extremes():
    assert ind.rsi(np.arange(1.0, 20.0), 14)[-1] == 100.0
    assert ind.rsi(np.arange(20.0, 1.0, -1.0), 14)[-1] == 0.0
    assert ind.rsi(np.full(20, 5.0), 14)[-1] == 50.0


def test_sma_and_ema_match_stockcharts_table():
    np.testing.assert_allclose(ind.sma(MA_CLOSES, 10)[9:], SMA10_STOCKCHARTS, atol=0.006)
    np.testing.assert_allclose(ind.ema(MA_CLOSES, 10)[9:], EMA10_STOCKCHARTS, atol=0.01)
    assert np.all(np.isnan(ind.ema(MA_CLOSES, 10)[:9]))


def test_sma_matches_pandas_rolling_mean():
    x = pd.Series(np.random.default_rng(1).normal(size=300).cumsum() + 100)
    pd.testing.assert_series_equal(ind.sma(x, 17), x.rolling(17).mean(), check_names=False)


def test_ema_matches_pandas_ewm_after_sma_seed():
    x = np.random.default_rng(2).normal(size=200).cumsum() + 50
    n = 12
    seeded = pd.Series(np.r_[x[:n].mean(), x[n:]]).ewm(span=n, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(ind.ema(x, n)[n - 1:], seeded, rtol=1e-12)


def test_macd_of_a_ramp_is_the_ema_lag_difference():
    # on close = a + b t an SMA-seeded EMA(n) lags the price by exactly b (n - 1) / 2, so
    # MACD = b ((26 - 1) - (12 - 1)) / 2 = 7 b, its signal is 7 b and the histogram 0
    b = 0.5
    close = 100 + b * np.arange(80.0)
    m = ind.macd(close)
    assert m["macd"].iloc[:25].isna().all() and m["signal"].iloc[:33].isna().all()
    np.testing.assert_allclose(m["macd"].iloc[25:], 7 * b, atol=1e-9)
    np.testing.assert_allclose(m["signal"].iloc[33:], 7 * b, atol=1e-9)
    np.testing.assert_allclose(m["hist"].iloc[33:], 0.0, atol=1e-9)


def test_bollinger_by_hand():
    close = np.array([1.0, 2.0, 3.0, 5.0])
    b = ind.bollinger(close, window=3, k=2.0)
    sd = np.sqrt(2.0 / 3.0)  # population std of (1, 2, 3)
    assert b["mid"][2] == pytest.approx(2.0)
    assert b["upper"][2] == pytest.approx(2.0 + 2 * sd)
    assert b["lower"][2] == pytest.approx(2.0 - 2 * sd)
    assert b["pct_b"][2] == pytest.approx((3.0 - (2 - 2 * sd)) / (4 * sd))
    assert b["width"][2] == pytest.approx(4 * sd / 2.0)
    # window (2, 3, 5): mean 10/3, population variance ((4/3)^2 + (1/3)^2 + (5/3)^2) / 3
    sd2 = np.sqrt((16 + 1 + 25) / 27.0)
    assert b["upper"][3] == pytest.approx(10 / 3 + 2 * sd2)


def test_bollinger_matches_pandas_population_std():
    x = pd.Series(np.random.default_rng(3).normal(size=200).cumsum() + 100)
    b = ind.bollinger(x, 20, 2.5)
    ref_sd = x.rolling(20).std(ddof=0)
    np.testing.assert_allclose(b["upper"], x.rolling(20).mean() + 2.5 * ref_sd, rtol=1e-12)


HLC = dict(high=np.array([10.0, 11.0, 12.0, 11.5, 12.5]),
           low=np.array([9.0, 10.0, 10.5, 10.0, 11.0]),
           close=np.array([9.5, 10.8, 11.0, 10.2, 12.2]))


def test_true_range_and_atr_by_hand():
    # TR: 1.0 (h-l), max(1, 1.5, 0.5), max(1.5, 1.2, 0.3), max(1.5, 0.5, 1.0), max(1.5, 2.3, 0.8)
    np.testing.assert_allclose(ind.true_range(**HLC), [1.0, 1.5, 1.5, 1.5, 2.3])
    atr = ind.atr(**HLC, window=3)
    assert np.isnan(atr[:2]).all()
    assert atr[2] == pytest.approx(4.0 / 3.0)
    assert atr[3] == pytest.approx((4.0 / 3.0 * 2 + 1.5) / 3)
    assert atr[4] == pytest.approx((atr[3] * 2 + 2.3) / 3)


def test_adx_by_hand():
    # +DM: 1, 1, 0, 1; -DM: 0, 0, 0.5, 0; TR: 1.5, 1.5, 1.5, 2.3 (bars 1..4), window 2
    # bar 2: TR 3.0, +DM 2, -DM 0 -> +DI 66.67, -DI 0, DX 100
    # bar 3: TR 3 - 1.5 + 1.5 = 3, +DM 2 - 1 + 0 = 1, -DM 0.5 -> DI 33.33 / 16.67, DX 33.33
    # ADX(3) = (100 + 33.33) / 2; bar 4: TR 3.8, +DM 1.5, -DM 0.25 -> DX 71.43
    a = ind.adx(**HLC, window=2)
    assert a["plus_di"][2] == pytest.approx(200 / 3)
    assert a["minus_di"][2] == pytest.approx(0.0)
    assert a["plus_di"][3] == pytest.approx(100 / 3)
    assert a["minus_di"][3] == pytest.approx(50 / 3)
    assert np.isnan(a["adx"][:3]).all()
    assert a["adx"][3] == pytest.approx((100 + 100 / 3) / 2)
    pdi, mdi = 100 * 1.5 / 3.8, 100 * 0.25 / 3.8
    dx4 = 100 * (pdi - mdi) / (pdi + mdi)
    assert a["plus_di"][4] == pytest.approx(pdi)
    assert a["adx"][4] == pytest.approx(((100 + 100 / 3) / 2 + dx4) / 2)


def test_obv_by_hand():
    out = ind.obv([10, 11, 10.5, 10.5, 12], [100, 200, 150, 120, 300])
    np.testing.assert_allclose(out, [0, 200, 50, 50, 350])


def test_cmf_by_hand():
    # MFM (11.5 in 10..12) = 0.5 -> MFV 50; MFM (10.5) = -0.5 -> MFV -150; CMF = -100 / 400
    out = ind.cmf([12, 12, 12], [10, 10, 12], [11.5, 10.5, 12], [100, 300, 50], window=2)
    assert np.isnan(out[0])
    assert out[1] == pytest.approx(-0.25)
    assert out[2] == pytest.approx(-150 / 350)  # high == low counts as MFM 0


def test_vwap_session_resets_and_rolling():
    h = np.array([11.0, 12.0, 13.0, 21.0])
    lo = np.array([9.0, 10.0, 11.0, 19.0])
    c = np.array([10.0, 11.0, 12.0, 20.0])
    v = np.array([100.0, 300.0, 100.0, 50.0])
    out = ind.vwap(h, lo, c, v, sessions=np.array([1, 1, 1, 2]))
    assert out[0] == pytest.approx(10.0)
    assert out[1] == pytest.approx((10 * 100 + 11 * 300) / 400)
    assert out[2] == pytest.approx((10 * 100 + 11 * 300 + 12 * 100) / 500)
    assert out[3] == pytest.approx(20.0)  # new session starts afresh
    roll = ind.vwap(h, lo, c, v, window=2)
    assert np.isnan(roll[0])
    assert roll[3] == pytest.approx((12 * 100 + 20 * 50) / 150)
    with pytest.raises(ValueError):
        ind.vwap(h, lo, c, v)


def test_session_ids_use_new_york_dates():
    idx = pd.DatetimeIndex(["2024-03-08 20:30", "2024-03-09 00:30", "2024-03-11 13:30"], tz="UTC")
    ids = ind.session_ids(idx)
    assert ids[0] == ids[1] != ids[2]  # 00:30 UTC is still 19:30 on the 8th in New York


def test_keltner_is_ema_plus_minus_k_atr():
    rng = np.random.default_rng(4)
    close = 100 + rng.normal(size=100).cumsum()
    high, low = close + rng.uniform(0, 1, 100), close - rng.uniform(0, 1, 100)
    kc = ind.keltner(high, low, close, window=20, k=2.0, atr_window=10)
    np.testing.assert_allclose(kc["mid"], ind.ema(close, 20), equal_nan=True)
    np.testing.assert_allclose((kc["upper"] - kc["mid"])[19:],
                               2 * ind.atr(high, low, close, 10)[19:], rtol=1e-9)
    assert kc["upper"][:19].isna().all()


def test_returns_by_hand():
    np.testing.assert_allclose(ind.simple_returns([100, 110, 99], 1), [np.nan, 0.1, -0.1])
    np.testing.assert_allclose(ind.log_returns([100, 110, 121], 2), [np.nan, np.nan, np.log(1.21)])


def test_rolling_volatility_matches_numpy_std_of_log_returns():
    close = 100 * np.exp(np.random.default_rng(5).normal(0, 0.01, 60).cumsum())
    vol = ind.rolling_volatility(close, 20, periods_per_year=252)
    lr = np.diff(np.log(close))
    assert np.isnan(vol[:20]).all()
    assert vol[20] == pytest.approx(np.std(lr[:20], ddof=1) * np.sqrt(252))
    assert vol[59] == pytest.approx(np.std(lr[-20:], ddof=1) * np.sqrt(252))


def test_momentum_score_against_pandas_reference():
    close = pd.Series(100 * np.exp(np.random.default_rng(6).normal(0, 0.01, 120).cumsum()))

    def z(x):
        return (x - x.rolling(20).mean()) / x.rolling(20).std(ddof=1)

    ref = 0.7 * (z(close.pct_change(1)) + z(close.pct_change(3))) / 2 \
        + 0.3 * (ind.rsi(close, 14) - 50) / 50
    pd.testing.assert_series_equal(ind.momentum_score(close), ref, check_names=False, rtol=1e-9)


def test_hour_and_weekday_in_new_york_across_dst():
    idx = pd.DatetimeIndex(["2024-03-08 14:30", "2024-03-11 13:30", "2024-01-02 20:00"], tz="UTC")
    np.testing.assert_array_equal(ind.hour_of_day(idx), [9, 9, 15])
    np.testing.assert_array_equal(ind.weekday(idx), [4, 0, 1])
    with pytest.raises(ValueError):
        ind.hour_of_day(pd.DatetimeIndex(["2024-01-02 20:00"]))


def test_realised_implied_spread():
    close = 100 * 1.01 ** np.arange(30)  # constant log return: realised vol 0
    iv = np.full(30, 0.2)
    spread = ind.realised_implied_spread(close, iv, window=10)
    np.testing.assert_allclose(spread[10:], -0.2, atol=1e-9)
    noisy = 100 * np.exp(np.random.default_rng(7).normal(0, 0.01, 30).cumsum())
    s = ind.realised_implied_spread(noisy, iv, 10, 252)
    np.testing.assert_allclose(s, ind.rolling_volatility(noisy, 10, 252) - 0.2)


def test_series_in_series_out():
    close = pd.Series(MA_CLOSES, index=pd.date_range("2024-01-01", periods=30, tz="UTC"))
    out = ind.ema(close, 10)
    assert isinstance(out, pd.Series) and out.index.equals(close.index)


def _bars(n, seed=8):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(rng.normal(0, 0.01, n).cumsum())
    high = close * (1 + rng.uniform(0, 0.01, n))
    low = close * (1 - rng.uniform(0, 0.01, n))
    vol = rng.uniform(1e5, 2e5, n)
    return high, low, close, vol


INDICATOR_CALLS = {
    "returns": lambda h, l, c, v, s: ind.simple_returns(c, 3),
    "log_returns": lambda h, l, c, v, s: ind.log_returns(c, 1),
    "sma": lambda h, l, c, v, s: ind.sma(c, 20),
    "ema": lambda h, l, c, v, s: ind.ema(c, 20),
    "rsi": lambda h, l, c, v, s: ind.rsi(c, 14),
    "macd": lambda h, l, c, v, s: ind.macd(c).to_numpy(),
    "bollinger": lambda h, l, c, v, s: ind.bollinger(c).to_numpy(),
    "atr": lambda h, l, c, v, s: ind.atr(h, l, c, 14),
    "adx": lambda h, l, c, v, s: ind.adx(h, l, c, 14).to_numpy(),
    "obv": lambda h, l, c, v, s: ind.obv(c, v),
    "cmf": lambda h, l, c, v, s: ind.cmf(h, l, c, v, 20),
    "vwap_session": lambda h, l, c, v, s: ind.vwap(h, l, c, v, sessions=s),
    "vwap_rolling": lambda h, l, c, v, s: ind.vwap(h, l, c, v, window=20),
    "keltner": lambda h, l, c, v, s: ind.keltner(h, l, c).to_numpy(),
    "volatility": lambda h, l, c, v, s: ind.rolling_volatility(c, 20, 252),
    "momentum": lambda h, l, c, v, s: ind.momentum_score(c),
    "rv_iv": lambda h, l, c, v, s: ind.realised_implied_spread(c, 0.2 + 0.01 * np.sin(
        np.arange(len(c))), 20),
}


@pytest.mark.parametrize("name", sorted(INDICATOR_CALLS))
def test_no_look_ahead(name):
    h, lo, c, v = _bars(400)
    sessions = np.arange(400) // 7
    full = np.asarray(INDICATOR_CALLS[name](h, lo, c, v, sessions), dtype=float)
    for cut in (60, 250):
        past = np.asarray(INDICATOR_CALLS[name](h[:cut], lo[:cut], c[:cut], v[:cut],
                                                sessions[:cut]), dtype=float)
        np.testing.assert_array_equal(past, full[:cut])
    assert np.isfinite(full[-1]).all()
