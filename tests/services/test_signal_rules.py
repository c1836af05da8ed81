"""The signal bracket settled by hand: entry at the first bar's open, the stop checked before
the target within a bar, gaps exit at the open, else the last close before the time stop."""

import pandas as pd
import pytest

from services.lab.signals import settle_outcome


def _bars(rows):
    index = pd.date_range("2024-03-04 14:31", periods=len(rows), freq="1min", tz="UTC")
    return pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=index)


def test_long_hits_the_target():
    bars = _bars([(100.0, 100.5, 99.5, 100.2), (100.2, 101.0, 100.0, 100.9), (100.9, 104.2, 100.8, 103.9)])
    out = settle_outcome(bars, 1, stop=98.0, target=104.0)
    assert out["exit_reason"] == "target" and out["exit_price"] == 104.0 and out["exit_at"] == bars.index[2]
    assert out["realized_return"] == pytest.approx(0.04)


def test_a_bar_spanning_both_levels_is_a_stop():
    bars = _bars([(100.0, 100.5, 99.5, 100.2), (100.2, 104.5, 97.5, 101.0)])
    out = settle_outcome(bars, 1, stop=98.0, target=104.0)
    assert out["exit_reason"] == "stop" and out["exit_price"] == 98.0
    assert out["realized_return"] == pytest.approx(-0.02)


def test_short_gapping_through_its_stop_exits_at_the_open():
    bars = _bars([(50.0, 50.2, 49.8, 50.1), (52.0, 52.5, 51.9, 52.2)])
    out = settle_outcome(bars, -1, stop=51.0, target=48.0)
    assert out["exit_reason"] == "stop" and out["exit_price"] == 52.0
    assert out["realized_return"] == pytest.approx(-(52.0 / 50.0 - 1))


def test_time_stop_exits_at_the_last_close_and_no_bars_no_outcome():
    bars = _bars([(100.0, 100.5, 99.5, 100.2), (100.2, 100.6, 99.9, 100.4)])
    out = settle_outcome(bars, -1, stop=102.0, target=97.0)
    assert out["exit_reason"] == "time" and out["exit_price"] == 100.4 and out["exit_at"] == bars.index[-1]
    assert out["realized_return"] == pytest.approx(-0.004)
    assert settle_outcome(bars.iloc[:0], 1, 98.0, 104.0) is None
