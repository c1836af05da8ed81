"""A backtest's charts drawn ahead into the artifact store (services.reports.lab): drawn once for
every process, read back without the series, and the same bytes a first view would draw."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cluster.artifacts import ArtifactStore
from services.reports import charts
from services.reports import lab


def _series(n=300):
    rng = np.random.default_rng(3)
    r = rng.normal(0.0005, 0.01, n)
    equity = 10_000 * np.cumprod(1 + r)
    return pd.DataFrame({"timestamp": pd.date_range("2022-01-03", periods=n, freq="B", tz="America/New_York"),
                         "equity": equity, "returns": r, "drawdown": equity / np.maximum.accumulate(equity) - 1,
                         "position": np.sign(rng.normal(size=n)), "benchmark_return": rng.normal(0, 0.01, n),
                         "fold": np.repeat([0, 1, 2], [100, 100, n - 200])})


def test_charts_drawn_ahead_are_read_back_without_the_series(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    bars = _series()
    loads = []
    lab.prerender_backtest_charts(store, "a" * 64, lambda: loads.append(1) or bars, "SPY_swing")
    assert loads == [1]  # the series is loaded once for every chart
    for name in lab.BACKTEST_CHARTS:
        path = lab.chart_artifact_path("a" * 64, name, "png", title="SPY_swing")
        drawn = charts.render(lab.backtest_chart(name, bars, title="SPY_swing"), "png")
        assert store.get(path) == drawn  # the chart of this series and title
        lab._chart_cache.clear()  # another process: nothing in memory
        got = lab.backtest_chart_bytes("a" * 64, name, lambda: (_ for _ in ()).throw(AssertionError("drawn again")),
                                       "png", title="SPY_swing", store=store)
        assert got == drawn
    # another title or window is another picture: drawn on its first view and kept
    other = lab.backtest_chart_bytes("a" * 64, "rolling", lambda: bars, "png", title="SPY_swing", window=21, store=store)
    assert store.exists(lab.chart_artifact_path("a" * 64, "rolling", "png", title="SPY_swing", window=21))
    assert other != store.get(lab.chart_artifact_path("a" * 64, "rolling", "png", title="SPY_swing"))


def test_the_pdfs_opaque_png_is_the_api_png_without_alpha(tmp_path):
    """A tearsheet embeds the chart drawn for the API made opaque: the same pixels as drawing the
    figure straight to RGB (the figure's background is opaque), no alpha channel, 150 dpi."""
    import io

    from PIL import Image

    store = ArtifactStore(f"file://{tmp_path}/store")
    bars = _series()
    for name in ("equity", "monthly"):
        lab._chart_cache.clear()
        opaque = lab.backtest_chart_bytes("b" * 64, name, lambda: bars, "png", title="T", opaque=True, store=store)
        image = Image.open(io.BytesIO(opaque))
        assert image.mode == "RGB" and round(image.info["dpi"][0]) == charts.DPI
        direct = Image.open(io.BytesIO(charts.render_rgb_png(lab.backtest_chart(name, bars, title="T"))))
        assert np.array_equal(np.asarray(image), np.asarray(direct))
        assert store.exists(lab.chart_artifact_path("b" * 64, name, "png", title="T"))  # kept for the API too
