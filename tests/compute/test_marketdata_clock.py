"""No provider serves a bar, quote or chain stamped after the clock's "now".

The clock is frozen before the open, during the session and after the close of a real
session (2026-12-02, a Wednesday); session times come from exchange_calendars directly,
not from Sigma's calendar module.
"""

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from compute.marketdata import MarketDataError, make_provider

DAY = pd.Timestamp("2026-12-02")
PREV = pd.Timestamp("2026-12-01")
XNYS = xcals.get_calendar("XNYS", start="2026-09-01", end="2026-12-31")
OPEN = XNYS.session_open(DAY)            # 14:30 UTC
CLOSE = XNYS.session_close(DAY)          # 21:00 UTC

BEFORE_OPEN = pd.Timestamp("2026-12-02 01:36", tz="UTC")      # the failing CI run's hour
DURING = OPEN + pd.Timedelta(minutes=30, seconds=30)          # 10:00:30 New York
AFTER_CLOSE = CLOSE + pd.Timedelta(minutes=30)


def frozen(spec, when, **kwargs):
    return make_provider(spec, clock=lambda: when.timestamp(), **kwargs)


def daily_open(day):
    return XNYS.session_open(day)


@pytest.mark.parametrize("now, last_session", [
    (BEFORE_OPEN, PREV), (DURING, PREV), (AFTER_CLOSE, DAY)])
def test_synthetic_daily_bars_only_for_closed_sessions(now, last_session):
    p = frozen("synthetic", now)
    bars = p.daily_bars("AAPL", "2026-11-20", DAY.date())
    assert bars.index[-1] == daily_open(last_session)
    assert (bars.index <= now).all()
    # The bars that remain are unchanged by the clock (range-independent history).
    later = frozen("synthetic", pd.Timestamp("2026-12-10", tz="UTC"))
    full = later.daily_bars("AAPL", "2026-11-20", DAY.date())
    pd.testing.assert_frame_equal(bars, full.loc[bars.index])


@pytest.mark.parametrize("freq, during_count, after_count", [
    ("1min", 30, 390), ("5min", 6, 78), ("15min", 2, 26), ("1h", 0, 7)])
def test_synthetic_intraday_bars_only_when_ended(freq, during_count, after_count):
    assert len(frozen("synthetic", BEFORE_OPEN).intraday_bars("MSFT", DAY.date(), DAY.date(), freq)) == 0
    during = frozen("synthetic", DURING).intraday_bars("MSFT", DAY.date(), DAY.date(), freq)
    assert len(during) == during_count
    step = pd.Timedelta(freq)
    assert (during.index + step <= DURING).all()
    after = frozen("synthetic", AFTER_CLOSE).intraday_bars("MSFT", DAY.date(), DAY.date(), freq)
    assert len(after) == after_count
    # The last hourly bar (15:30-16:00 ET) counts as ended at the close, not at 16:30.
    assert after.index[-1] < CLOSE


def test_synthetic_quotes_and_chains_never_after_now():
    before = frozen("synthetic", BEFORE_OPEN)
    q = before.latest_quote(["SPY"])["SPY"]
    assert pd.Timestamp(q["timestamp"]) == XNYS.session_close(PREV)
    after_close = frozen("synthetic", AFTER_CLOSE).daily_bars("SPY", PREV.date(), PREV.date())
    assert q["last"] == pytest.approx(float(after_close["close"].iloc[-1]), abs=1e-4)

    during = frozen("synthetic", DURING)
    q = during.latest_quote(["SPY"])["SPY"]
    stamp = pd.Timestamp(q["timestamp"])
    assert stamp <= DURING and stamp == OPEN + pd.Timedelta(minutes=30)
    minutes = during.intraday_bars("SPY", DAY.date(), DAY.date())
    assert q["last"] == pytest.approx(float(minutes["close"].iloc[-1]), abs=1e-4)
    assert q["volume"] == pytest.approx(float(minutes["volume"].sum()))

    # In the first minute no minute bar has ended: the quote is the opening print.
    first = frozen("synthetic", OPEN + pd.Timedelta(seconds=20)).latest_quote(["SPY"])["SPY"]
    day_bar = frozen("synthetic", AFTER_CLOSE).daily_bars("SPY", DAY.date(), DAY.date())
    assert pd.Timestamp(first["timestamp"]) == OPEN
    assert first["last"] == pytest.approx(float(day_bar["open"].iloc[0]), abs=1e-4)

    chain = during.option_chain("SPY")
    assert np.allclose(chain["underlying_price"], q["last"], atol=1e-3)
    with pytest.raises(MarketDataError, match="future"):
        before.option_chain("SPY", as_of=DAY.date().isoformat())
    with pytest.raises(MarketDataError, match="future"):
        during.option_chain("SPY", as_of="2026-12-02 10:05")


def test_files_provider_drops_rows_after_now(tmp_path):
    """A file that holds a row for a session still to come (or still trading) is served only
    up to now, whatever the file says."""
    sessions = XNYS.sessions_in_range("2026-10-01", "2026-12-03")
    n = len(sessions)
    close = 100.0 + np.arange(n, dtype=float)
    frame = pd.DataFrame({"timestamp": [s.date().isoformat() for s in sessions],
                          "open": close, "high": close + 1, "low": close - 1, "close": close,
                          "volume": 1000.0})
    (tmp_path / "daily").mkdir()
    frame.to_csv(tmp_path / "daily" / "ABC.csv", index=False)
    for now, last in ((BEFORE_OPEN, PREV), (DURING, PREV), (AFTER_CLOSE, DAY)):
        p = frozen(f"files:file://{tmp_path}", now)
        bars = p.daily_bars("ABC", "2026-11-01", "2026-12-03")
        assert bars.index[-1] == daily_open(last)
        quote = p.latest_quote(["ABC"])["ABC"]
        assert pd.Timestamp(quote["timestamp"]) == XNYS.session_close(last)
        assert quote["last"] == close[list(sessions).index(last)]
        chain = p.option_chain("ABC")
        assert np.allclose(chain["underlying_price"], quote["last"])
