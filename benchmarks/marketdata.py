"""Synthetic market-data generation speed (JSON lines, see docs/spec/design.md).

daily: 10 years of daily bars for one ticker, cold (full-history generation of a ticker not
seen before) and warm (memoised slice).  minute: one year of 1-minute bars (98k bars, exact
aggregation to the daily bars).  resample: one year of 1-minute bars to 5-minute bars, our
numba kernel vs pandas ``groupby`` on the same frame (the peer).
files_csv_30y: a CSV of 30 years of daily OHLCV bars (1993-2022, 7,555 rows) read and
validated by the files provider from a cold provider (target < 0.2 s), and a ``date,close``
series of the same span.
"""

from __future__ import annotations

import time

import numpy as np
from _common import emit, timings  # noqa: E402


def main():
    import pandas as pd

    from compute.marketdata import make_provider
    from compute.marketdata.base import resample_minutes

    p = make_provider("synthetic", seed=0)
    # Warm the JIT (and the factor model) before timing.
    p.daily_bars("WARM", "2015-01-01", "2024-12-31")
    p.intraday_bars("WARM", "2024-01-02", "2024-01-05", freq="5min")

    counter = iter(range(10_000))
    cold_ms = []
    for _ in range(20):
        ticker = f"BENCH{next(counter)}"
        t0 = time.perf_counter()
        bars = p.daily_bars(ticker, "2015-01-01", "2024-12-31")
        cold_ms.append((time.perf_counter() - t0) * 1e3)
    emit("marketdata.daily_bars_10y", "cold_median", float(np.median(cold_ms)), "ms", len(bars),
         note="new ticker: generates 2000-2035 history then slices")
    times, _ = timings(lambda: p.daily_bars("AAPL", "2015-01-01", "2024-12-31"), 50)
    median = float(np.median(times))
    emit("marketdata.daily_bars_10y", "warm_median", median * 1e3, "ms", len(bars))

    times = []
    for k in range(3):
        t0 = time.perf_counter()
        minutes = p.intraday_bars(f"MIN{k}", "2024-01-01", "2024-12-31")
        times.append(time.perf_counter() - t0)
    emit("marketdata.minute_bars_1y", "median", float(np.median(times)), "s", len(minutes))

    ours = float(np.median(timings(lambda: resample_minutes(minutes, "5min"), 7)[0]))
    local = minutes.index.tz_convert("America/New_York")
    open_ = local.normalize() + pd.Timedelta(hours=9, minutes=30)
    key = (open_ + ((local - open_) // pd.Timedelta("5min")) * pd.Timedelta("5min"))

    def pandas_peer():
        return minutes.groupby(key).agg(open=("open", "first"), high=("high", "max"),
                                        low=("low", "min"), close=("close", "last"),
                                        volume=("volume", "sum"))

    peer = float(np.median(timings(pandas_peer, 7)[0]))
    emit("marketdata.resample_1y_5min", "sigma_median", ours * 1e3, "ms", len(minutes))
    emit("marketdata.resample_1y_5min", "pandas_groupby_median", peer * 1e3, "ms",
         len(minutes), peer="pandas groupby (bucket keys precomputed)")
    files_csv_30y()


def files_csv_30y():
    """A 30-year daily CSV through the files provider, cold (a new provider each time)."""
    import tempfile
    from pathlib import Path

    import pandas as pd

    from compute.marketdata import calendar, make_provider

    days = calendar.sessions("1993-01-04", "2022-12-30").index
    rng = np.random.default_rng(0)
    close = np.round(20 * np.exp(np.cumsum(rng.normal(0.0003, 0.012, len(days)))), 4)
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "daily").mkdir()
        pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "open": close, "high": close * 1.01,
                      "low": close * 0.99, "close": close, "volume": 1e6}).to_csv(
            Path(root) / "daily" / "OHLCV.csv", index=False)
        pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), "Adj Close": close}).to_csv(
            Path(root) / "daily" / "CLOSE.csv", index=False)
        make_provider(f"files:{root}").load("daily", "OHLCV")  # JIT and calendar warm
        for ticker in ("OHLCV", "CLOSE"):
            def load():
                return make_provider(f"files:{root}").load("daily", ticker)
            times, bars = timings(load, 15)
            emit("marketdata.files_csv_30y", f"{ticker.lower()}_median", float(np.median(times)), "s",
                 len(bars), target="< 0.2 s", best=round(min(times), 4))


if __name__ == "__main__":
    main()
