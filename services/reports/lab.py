"""Lab pictures: a backtest's charts from its stored series frame.

A completed backtest's series never changes (it is stored by its SHA-256), so its rendered charts
are kept per process (``backtest_chart_bytes``, an LRU of ``CHART_CACHE_SIZE`` images) and in the
artifact store under the series' SHA (``chart_artifact_path``): a chart viewed again, in any
replica, or a tearsheet generated again, is not drawn again. A backtest's job draws its charts
before it completes (``prerender_backtest_charts``), so their first view is a read.
"""

from __future__ import annotations

import hashlib
import json
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


def chart_artifact_path(series_sha: str, name: str, fmt: str, *, title: str = "", window: int = 63,
                        level: float = 0.95) -> str:
    """Where a drawn backtest chart is kept in the artifact store: under its series' SHA-256,
    named by what it draws (chart, title, window, level, format)."""
    what = json.dumps([name, title, int(window), round(float(level), 6), fmt])
    return f"charts/{series_sha}/{name}-{hashlib.sha256(what.encode()).hexdigest()[:16]}.{fmt}"


def backtest_chart_bytes(series_sha: str, name: str, load_bars: Callable[[], pd.DataFrame], fmt: str, *,
                         title: str = "", window: int = 63, level: float = 0.95, opaque: bool = False,
                         store=None) -> bytes:
    """``backtest_chart`` rendered (``fmt`` png or svg; ``opaque``: the RGB PNG the reports
    embed): from this process's cache, else from ``store`` (an ``ArtifactStore``: drawn once
    for every replica and worker, e.g. by ``prerender_backtest_charts`` when the backtest
    completed), else drawn now and kept in both; ``load_bars`` is called only to draw."""
    key = (series_sha, name, title, int(window), float(level), fmt, opaque)
    with _chart_lock:
        hit = _chart_cache.get(key)
        if hit is not None:
            _chart_cache.move_to_end(key)
            return hit
    if opaque:  # the PDF's opaque PNG: the API's PNG (drawn ahead, or drawn now and kept) made opaque
        data = charts.opaque_png(backtest_chart_bytes(series_sha, name, load_bars, "png", title=title, window=window,
                                                      level=level, store=store))
    else:
        data = _stored_or_drawn(series_sha, name, load_bars, fmt, title, window, level, store)
    with _chart_lock:
        _chart_cache[key] = data
        while len(_chart_cache) > CHART_CACHE_SIZE:
            _chart_cache.popitem(last=False)
    return data


def _stored_or_drawn(series_sha, name, load_bars, fmt, title, window, level, store) -> bytes:
    from cluster.artifacts import ArtifactConflict, ArtifactError

    path = chart_artifact_path(series_sha, name, fmt, title=title, window=window, level=level)
    if store is not None:
        try:
            return store.get(path)
        except ArtifactError:  # not drawn yet (or unreadable: drawn again below)
            pass
    data = charts.render(backtest_chart(name, load_bars(), title=title, window=window, level=level), fmt)
    if store is not None:
        try:
            store.put(data, path=path)
        except ArtifactConflict:  # drawn meanwhile by another process: the same chart
            pass
    return data


def prerender_backtest_charts(store, series_sha: str, load_bars: Callable[[], pd.DataFrame], title: str) -> None:
    """Draw a completed backtest's charts (PNG, default window and level) into ``store``, the
    series loaded once; a failure is only logged (each chart is then drawn at its first view).
    The backtest's job calls it before it completes: a chart or tearsheet asked for right after
    completion (the dashboard shows the equity chart at once) reads what is drawn instead of
    drawing it again beside a background draw (measured: a tearsheet right after a backtest took
    1.8 s with a background draw, 0.3 s with this)."""
    import logging

    bars: list = []

    def once() -> pd.DataFrame:
        if not bars:
            bars.append(load_bars())
        return bars[0]

    try:
        for name in BACKTEST_CHARTS:
            backtest_chart_bytes(series_sha, name, once, "png", title=title, store=store)
    except Exception:  # noqa: BLE001 - drawing ahead only saves time
        logging.getLogger("sigma.reports").exception("drawing the charts of series %s ahead failed", series_sha)
