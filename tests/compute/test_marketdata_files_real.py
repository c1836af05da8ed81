"""Files provider with the files people have (issue 16): Yahoo-style CSVs, ``date,close``
series back to 1990, long tables, Parquet with a date index; every rejection names file,
row, column and rule, and nothing is kept from a rejected file."""

import numpy as np
import pandas as pd
import pytest

from compute.backtest import BacktestConfig, run_backtest
from compute.marketdata import MarketDataError, make_provider
from compute.marketdata import calendar


def _sessions(start="1990-01-02", end="2022-12-30"):
    return calendar.sessions(start, end).index


def _closes(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.round(20 * np.exp(np.cumsum(rng.normal(0.0003, 0.012, n))), 4)


def test_close_only_series_back_to_1990(tmp_path):
    days = _sessions()
    close = _closes(len(days))
    (tmp_path / "daily").mkdir()
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "close": close}).to_csv(
        tmp_path / "daily" / "OLD.csv", index=False)
    p = make_provider(f"files:{tmp_path}")
    bars = p.daily_bars("OLD", "1990-01-02", "2022-12-30")
    assert len(bars) == len(days) == 8_315
    assert bars.index[0] == pd.Timestamp("1990-01-02 14:30", tz="UTC")  # 09:30 New York, winter
    np.testing.assert_array_equal(bars["close"].to_numpy(), close)
    # flagged: no open/high/low/volume in the file; bars carry the close in every price
    assert p.missing_columns("OLD") == ["open", "high", "low", "volume"]
    assert (bars["open"] == bars["close"]).all() and (bars["volume"] == 0).all()
    # a backtest on closes alone: a signal at close t fills at close t + 1
    score = np.ones(len(bars))
    res = run_backtest(bars["open"], bars["close"], score,
                       BacktestConfig(value=0.5, long_only=True, fees_bps=0, slippage_bps=0))
    assert res.metrics["cum_return"] == pytest.approx(close[-1] / close[1] - 1, rel=1e-9)


def test_yahoo_csv_long_table_and_parquet_index(tmp_path):
    days = _sessions("2020-01-02", "2020-03-31")
    close = _closes(len(days), seed=1)
    (tmp_path / "daily").mkdir()
    yahoo = pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), "Open": close, "High": close * 1.01,
                          "Low": close * 0.99, "Close": close, "Adj Close": close * 0.9, "Volume": 1000})
    yahoo.to_csv(tmp_path / "daily" / "YHO.csv", index=False)
    # a long table with adj_close only, two tickers interleaved
    long = pd.concat([pd.DataFrame({"ticker": t, "date": days.strftime("%Y-%m-%d"), "adj_close": close * k})
                      for t, k in (("AAA", 1.0), ("bbb", 2.0))]).sort_values("date", kind="stable")
    long.to_csv(tmp_path / "daily.csv", index=False)
    # Parquet with a DatetimeIndex named Date
    frame = pd.DataFrame({"Close": close, "Volume": 5.0}, index=pd.DatetimeIndex(days, name="Date"))
    frame.to_parquet(tmp_path / "daily" / "PQI.parquet")

    p = make_provider(f"files:{tmp_path}")
    y = p.daily_bars("YHO", "2020-01-02", "2020-03-31")
    np.testing.assert_array_equal(y["close"].to_numpy(), close)  # close wins over Adj Close
    assert p.missing_columns("YHO") == []
    a = p.daily_bars("AAA", "2020-01-02", "2020-03-31")
    b = p.daily_bars("BBB", "2020-01-02", "2020-03-31")
    np.testing.assert_array_equal(a["close"].to_numpy(), close)
    np.testing.assert_allclose(b["close"].to_numpy(), close * 2.0)
    assert p.missing_columns("BBB") == ["open", "high", "low", "volume"]
    q = p.daily_bars("PQI", "2020-01-02", "2020-03-31")
    np.testing.assert_array_equal(q["close"].to_numpy(), close)
    assert (q["volume"] == 5.0).all() and p.missing_columns("PQI") == ["open", "high", "low"]
    # quotes and chains say where they come from (issue 16 item 7): files, model-priced chains
    assert (p.source, p.chain_pricing) == ("files", "model")
    with pytest.raises(MarketDataError, match="no daily bars for CCC"):
        p.daily_bars("CCC", "2020-01-02", "2020-03-31")


DAILY = "date,close\n2024-07-01,10\n2024-07-02,11\n2024-07-03,12\n2024-07-05,13\n"


@pytest.mark.parametrize("text, row, column, rule", [
    (DAILY.replace("2024-07-03", "2024-07-02"), 3, "date", "duplicated date 2024-07-02 (also row 2)"),
    (DAILY.replace("2024-07-01,10\n2024-07-02,11", "2024-07-02,11\n2024-07-01,10"), 2, "date",
     "unsorted: 2024-07-01 comes after 2024-07-02"),
    (DAILY.replace("2024-07-05", "2024-07-04"), 4, "date", "2024-07-04 is not an NYSE session"),
    (DAILY.replace("2024-07-01", "1989-12-29"), 1, "date", "outside the calendar range 1990-01-02"),
    (DAILY.replace(",12\n", ",0\n"), 3, "close", "prices must be positive"),
    (DAILY.replace(",11\n", ",-11\n"), 2, "close", "prices must be positive"),
    (DAILY.replace("2024-07-05", "2024-08-01"), 4, "date",
     "19 sessions missing between 2024-07-03 and 2024-08-01 (more than max_gap_sessions=10)"),
    ("date,open,close\n2024-07-01,1,2\n", None, None, "missing column(s) high, low, volume"),
    ("day,price\n2024-07-01,1\n", None, None, "missing column(s) a date column"),
])
def test_daily_rejections_name_file_row_column_and_rule(tmp_path, text, row, column, rule):
    (tmp_path / "daily").mkdir()
    (tmp_path / "daily" / "BAD.csv").write_text(text)
    cache = tmp_path / "cache"
    p = make_provider(f"files:{tmp_path}", cache_url=f"file://{cache}")
    with pytest.raises(MarketDataError) as err:
        p.daily_bars("BAD", "2024-07-01", "2024-07-31")
    message = str(err.value)
    assert "daily/BAD.csv" in message and rule in message
    if row is not None:
        assert f"BAD.csv: row {row}: column {column}: " in message
    # nothing kept from the rejected file: not memoised, nothing in the bar cache
    assert not p._loaded
    assert not cache.exists() or not any(f.is_file() for f in cache.rglob("*"))
    (tmp_path / "daily" / "BAD.csv").write_text(DAILY)
    assert len(p.daily_bars("BAD", "2024-07-01", "2024-07-31")) == 4


MINUTE_ZONED = "timestamp,open,high,low,close,volume\n" + "".join(
    f"2024-07-01T13:{m:02d}:00Z,10,10.5,9.5,10,100\n" for m in range(30, 35))


def test_intraday_stamps_need_a_zone_or_a_setting(tmp_path):
    (tmp_path / "minute").mkdir()
    naive = MINUTE_ZONED.replace(":00Z", ":00").replace("T13:", "T09:")
    (tmp_path / "minute" / "NAV.csv").write_text(naive)
    (tmp_path / "minute" / "MIX.csv").write_text(MINUTE_ZONED.replace("13:32:00Z", "13:32:00", 1))
    (tmp_path / "minute" / "ZON.csv").write_text(MINUTE_ZONED)
    p = make_provider(f"files:{tmp_path}")
    with pytest.raises(MarketDataError, match=r"NAV.csv: row 1: column timestamp: naive intraday time stamp"):
        p.intraday_bars("NAV", "2024-07-01", "2024-07-01")
    with pytest.raises(MarketDataError, match=r"MIX.csv: row 3: column timestamp: mixed time zones"):
        p.intraday_bars("MIX", "2024-07-01", "2024-07-01")
    zoned = p.intraday_bars("ZON", "2024-07-01", "2024-07-01")
    assert zoned.index[0] == pd.Timestamp("2024-07-01 13:30", tz="UTC") and len(zoned) == 5
    # naive stamps in New York time, with the setting: the same bars
    ny = make_provider(f"files:{tmp_path}", intraday_tz="America/New_York")
    pd.testing.assert_frame_equal(ny.intraday_bars("NAV", "2024-07-01", "2024-07-01"), zoned)


def test_features_that_a_close_only_series_cannot_feed():
    from compute.features import feature_bar_inputs, resolve_features

    # textbook definitions: ATR uses high/low, OBV volume, GAP the open; RSI and SMA closes only
    inputs = {f.name: feature_bar_inputs(f) for f in resolve_features(["ATR14", "OBV", "GAP", "RSI14", "SMA20"])}
    assert inputs == {"ATR14": ("high", "low"), "OBV20": ("volume",), "GAP": ("open",), "RSI14": (), "SMA20": ()}
