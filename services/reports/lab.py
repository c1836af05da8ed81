"""Lab pictures: a backtest's charts from its stored series frame.

A completed backtest's series never changes (it is stored by its SHA-256), so its rendered charts
are kept per process (``backtest_chart_bytes``, an LRU of ``CHART_CACHE_SIZE`` images): a chart
viewed again, or a tearsheet generated again, is not drawn again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from services.reports import charts

BACKTEST_CHARTS = ("equity", "monthly", "rolling", "distribution", "position")


def periods_per_year(timestamps) -> float:
    """Bars per year of a series, from its span (252 for daily bars, ~7x that for hourly)."""
    t = pd.DatetimeIndex(timestamps)
    if len(t) < 2:
        return 252.0
    sessions = len(np.unique(t.tz_convert("America/New_York").date if t.tz is not None else t.date))
    per_session = len(t) / max(sessions, 1)
    return 252.0 * max(per_session, 1.0)


def backtest_chart(name: str, bars: pd.DataFrame, *, title: str = "", window: int = 63, level: float = 0.95) -> Figure:
    """One of :data:`BACKTEST_CHARTS` for a series frame (``services.lab.backtests.series_frame``)."""
    t = bars["timestamp"]
    if name == "equity":
        return charts.equity_underwater(t, bars["equity"], bars["benchmark_return"], title=f"{title} equity and drawdown")
    if name == "monthly":
        return charts.monthly_heatmap(t, bars["returns"], title=f"{title} monthly returns")
    if name == "rolling":
        return charts.rolling_sharpe_vol(t, bars["returns"], window, periods_per_year(t),
                                         title=f"{title} rolling Sharpe and volatility")
    if name == "distribution":
        return charts.return_distribution(bars["returns"], level, title=f"{title} bar returns")
    if name == "position":
        return charts.position_path(t, bars["position"], title=f"{title} position (long +1, short -1)")
    raise ValueError(f"unknown chart {name!r}")


CHART_CACHE_SIZE = 256
_chart_cache: "OrderedDict[tuple, bytes]" = OrderedDict()
_chart_lock = threading.Lock()


def backtest_chart_bytes(series_sha: str, name: str, load_bars: Callable[[], pd.DataFrame], fmt: str, *,
                         title: str = "", window: int = 63, level: float = 0.95, opaque: bool = False) -> bytes:
    """``backtest_chart`` rendered (``fmt`` png or svg; ``opaque``: the RGB PNG the reports
    embed), from the cache when this series' chart was drawn before; ``load_bars`` is called
    only on a miss."""
    key = (series_sha, name, title, int(window), float(level), fmt, opaque)
    with _chart_lock:
        hit = _chart_cache.get(key)
        if hit is not None:
            _chart_cache.move_to_end(key)
            return hit
    fig = backtest_chart(name, load_bars(), title=title, window=window, level=level)
    data = charts.render_rgb_png(fig) if opaque else charts.render(fig, fmt)
    with _chart_lock:
        _chart_cache[key] = data
        while len(_chart_cache) > CHART_CACHE_SIZE:
            _chart_cache.popitem(last=False)
    return data
