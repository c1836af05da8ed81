"""Files provider: layout, validation errors naming file/row/rule, cache hit/miss/TTL."""

import numpy as np
import pandas as pd
import pytest

from compute.marketdata import MarketDataError, make_provider

DAILY_CSV = """timestamp,open,high,low,close,volume
2024-07-01,100,101,99,100.5,1000
2024-07-02,100.5,102,100,101.5,1100
2024-07-03,101.5,102.5,101,102,900
2024-07-05,102,103,101.5,102.5,1200
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_reads_daily_csv_and_minute_parquet(tmp_path):
    write(tmp_path / "daily" / "ABC.csv", DAILY_CSV)
    stamps = pd.date_range("2024-07-03 13:25", "2024-07-03 17:10", freq="1min", tz="UTC")
    rng = np.random.default_rng(0)
    close = 100 + np.cumsum(rng.normal(0, 0.05, len(stamps)))
    minute = pd.DataFrame({"timestamp": stamps, "open": close, "high": close + 0.02,
                           "low": close - 0.02, "close": close, "volume": 10.0})
    (tmp_path / "minute").mkdir()
    minute.to_parquet(tmp_path / "minute" / "ABC.parquet", index=False)
    write(tmp_path / "reference.csv", "ticker,name,sector,asset_class\nABC,Abc Corp,Tech,equity\n")

    p = make_provider(f"files:file://{tmp_path}")
    daily = p.daily_bars("abc", "2024-07-01", "2024-07-10")
    assert list(daily.columns) == ["open", "high", "low", "close", "volume"]
    assert daily.index[0] == pd.Timestamp("2024-07-01 13:30", tz="UTC")
    assert len(daily) == 4 and p.last_cache_status is None
    bars = p.intraday_bars("ABC", "2024-07-03", "2024-07-03")
    # 09:25 ET pre-market and anything after the 13:00 half-day close are dropped.
    assert bars.index[0] == pd.Timestamp("2024-07-03 13:30", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2024-07-03 16:59", tz="UTC")
    hourly = p.intraday_bars("ABC", "2024-07-03", "2024-07-03", freq="1h")
    assert len(hourly) == 4 and hourly["volume"].sum() == bars["volume"].sum()
    assert p.reference("ABC")["name"] == "Abc Corp"
    assert p.reference("AAPL")["name"] == "Apple Inc."
    quote = p.latest_quote(["ABC"])["ABC"]
    assert quote["last"] == 102.5 and quote["change"] == pytest.approx(0.5)
    assert p.data_version.startswith("files-v1:")


@pytest.mark.parametrize("row, bad_line, rule", [
    # a duplicated date has its own rule since issue 16 (it was "sorted ascending and unique")
    (3, "2024-07-02,100.5,102,100,101.5,1100", "column timestamp: duplicated date 2024-07-02 (also row 2)"),
    (2, "2024-07-02,-1,102,100,101.5,1100", "prices must be positive"),
    (2, "2024-07-02,100.5,101,100,101.5,1100", "high must be >= max(open, close)"),
    (2, "2024-07-02,100.5,102,101,100.7,1100", "low must be <= min(open, close)"),
    (2, "2024-07-02,100.5,102,100,101.5,-5", "volume must be non-negative"),
])
def test_validation_errors_name_file_row_and_rule(tmp_path, row, bad_line, rule):
    lines = DAILY_CSV.strip().splitlines()
    if rule.startswith("column timestamp: duplicated"):
        lines.insert(3, bad_line)
    else:
        lines[row] = bad_line
    write(tmp_path / "daily" / "BAD.csv", "\n".join(lines) + "\n")
    p = make_provider(f"files:{tmp_path}")
    with pytest.raises(MarketDataError) as err:
        p.daily_bars("BAD", "2024-07-01", "2024-07-10")
    message = str(err.value)
    assert "daily/BAD.csv" in message and f"row {row}:" in message and rule in message


def test_unsorted_and_missing_files(tmp_path):
    lines = DAILY_CSV.strip().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    write(tmp_path / "daily" / "UNS.csv", "\n".join(lines) + "\n")
    p = make_provider(f"files:{tmp_path}")
    # rejections name the column too since issue 16, and unsorted rows have their own rule
    with pytest.raises(MarketDataError, match=r"UNS.csv: row 2: column timestamp: unsorted: 2024-07-01 comes after"):
        p.daily_bars("UNS", "2024-07-01", "2024-07-10")
    with pytest.raises(MarketDataError, match="no daily bars for NOPE"):
        p.daily_bars("NOPE", "2024-07-01", "2024-07-10")
    write(tmp_path / "daily" / "HOL.csv", DAILY_CSV.replace("2024-07-05", "2024-07-04"))
    with pytest.raises(MarketDataError, match="row 4: column timestamp: 2024-07-04 is not an NYSE session"):
        p.daily_bars("HOL", "2024-07-01", "2024-07-10")


class FakeClock:
    def __init__(self, now=1_800_000_000.0):     # 2027-01-15: after every bar in the files
        self.now = now

    def __call__(self):
        return self.now


def test_cache_hit_partial_miss_and_ttl_expiry(tmp_path):
    write(tmp_path / "data" / "daily" / "ABC.csv", DAILY_CSV)
    clock = FakeClock()
    cache_url = f"file://{tmp_path}/cache"
    p = make_provider(f"files:{tmp_path}/data", cache_url=cache_url, cache_ttl_s=3600, clock=clock)
    first = p.daily_bars("ABC", "2024-07-01", "2024-07-02")
    assert p.last_cache_status == "miss" and len(first) == 2
    assert list((tmp_path / "cache" / "marketdata").rglob("ABC.parquet"))
    # Changing the source proves the next answers come from the cache.
    write(tmp_path / "data" / "daily" / "ABC.csv", DAILY_CSV.replace("100.5,1000", "100.7,1000"))
    clock.now += 1800
    again = p.daily_bars("ABC", "2024-07-01", "2024-07-02")
    assert p.last_cache_status == "hit"
    pd.testing.assert_frame_equal(again, first, check_freq=False)
    wider = p.daily_bars("ABC", "2024-07-01", "2024-07-05")
    assert p.last_cache_status == "partial" and len(wider) == 4
    assert wider["close"].iloc[0] == 100.5            # cached part kept
    clock.now += 1801                                 # older than the 1 h TTL
    fresh = p.daily_bars("ABC", "2024-07-01", "2024-07-02")
    assert p.last_cache_status == "miss" and fresh["close"].iloc[0] == 100.7
    clock.now += 60
    p.daily_bars("ABC", "2024-07-02", "2024-07-02")
    assert p.last_cache_status == "hit"
