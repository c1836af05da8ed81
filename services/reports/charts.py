"""Charts drawn server side with matplotlib (Agg, no pyplot): each function takes plain arrays
or frames and returns a ``matplotlib.figure.Figure``; :func:`render` turns one into PNG or SVG
bytes. A ``Figure`` made directly (not through ``pyplot``) holds no global state, so charts are
safe to draw on many threads at once.
"""

from __future__ import annotations

import io
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
# SVG text stays text (searchable, smaller); set once at import, never changed per chart
matplotlib.rcParams["svg.fonttype"] = "none"

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, Formatter, Locator, NullLocator, PercentFormatter  # noqa: E402

from compute import series as series_mod  # noqa: E402
from compute import stats  # noqa: E402

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
#: PNGs for the API and the PDF reports: 150 dpi (the issue's floor for embedded images).
DPI = 150
POS, NEG, LINE, BENCH = "#2a9d8f", "#e76f51", "#264653", "#8d99ae"


def _figure(width: float = 8.0, height: float = 4.0) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


class _MemoLocator(Locator):
    """A locator that recomputes its ticks only when the view or the room for ticks changed.

    The constrained layout measures every axis several times per draw, and a date or auto
    locator recomputes its ticks on each measurement (about a third of a chart's time). The
    ticks are exactly the wrapped locator's: the same view and axis size give the same ticks."""

    def __init__(self, inner: Locator):
        self.inner, self._key, self._locs = inner, None, None

    def set_axis(self, axis):
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def __call__(self):
        key = (*self.axis.get_view_interval(), self.axis.get_tick_space())
        if key != self._key:
            self._key, self._locs = key, self.inner()
        return self._locs

    def tick_values(self, vmin, vmax):
        return self.inner.tick_values(vmin, vmax)

    def nonsingular(self, v0, v1):
        return self.inner.nonsingular(v0, v1)

    def view_limits(self, vmin, vmax):
        return self.inner.view_limits(vmin, vmax)


class _MemoFormatter(Formatter):
    """A formatter that formats a set of tick positions once (labels and offset), as above."""

    def __init__(self, inner: Formatter):
        self.inner, self._key, self._labels, self._offset = inner, None, None, ""

    def set_axis(self, axis):
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def format_ticks(self, values):
        key = tuple(values)
        if key != self._key:
            self._key, self._labels = key, self.inner.format_ticks(values)
            self._offset = self.inner.get_offset()
        return self._labels

    def __call__(self, x, pos=None):
        return self.inner(x, pos)

    def _set_locator(self, locator):  # a date formatter reads its locator's unit: the real one
        self.inner._set_locator(locator.inner if isinstance(locator, _MemoLocator) else locator)

    def get_offset(self):
        return self._offset

    def format_data_short(self, value):
        return self.inner.format_data_short(value)


def _memo_ticks(fig: Figure) -> None:
    """Every axis's ticks and labels computed once per view and size (``_MemoLocator``); axes
    whose ticks are fixed already (categories) are left alone."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            locator = axis.get_major_locator()
            if isinstance(locator, (FixedLocator, NullLocator, _MemoLocator)):
                continue
            axis.set_major_formatter(_MemoFormatter(axis.get_major_formatter()))
            axis.set_major_locator(_MemoLocator(locator))


def render(fig: Figure, fmt: str = "png", dpi: int = DPI) -> bytes:
    """PNG or SVG bytes of a figure (SVG without a date stamp, so equal charts are equal bytes)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}")
    _memo_ticks(fig)
    buf = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    # zlib level 1: a PNG a little larger, encoded several times faster than at level 6
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=metadata, **({"pil_kwargs": {"compress_level": 1}} if fmt == "png" else {}))
    return buf.getvalue()


def render_rgb_png(fig: Figure, dpi: int = DPI) -> bytes:
    """An opaque RGB PNG of a figure (no alpha channel: a PDF then holds one image per chart, no
    soft mask), drawn once and encoded once (the same pixels as ``render`` made opaque)."""
    from PIL import Image

    fig.set_dpi(dpi)
    _memo_ticks(fig)
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", (width, height), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=1, dpi=(dpi, dpi))
    return buf.getvalue()


def opaque_png(png: bytes, dpi: int = DPI) -> bytes:
    """``render``'s PNG made an opaque RGB PNG (the pixels ``render_rgb_png`` draws: a figure's
    background is opaque, so dropping the alpha channel changes no colour), without drawing the
    figure again: a chart drawn for the API goes into a PDF as is."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=1, dpi=(dpi, dpi))
    return buf.getvalue()


def _dates(timestamps) -> np.ndarray:
    """Timestamps as numpy datetime64 (UTC): matplotlib converts those in one vectorised step,
    where a pandas index goes through a Python datetime per bar."""
    return pd.DatetimeIndex(timestamps).to_numpy()


def _empty(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


# --- backtests ------------------------------------------------------------------------------

def equity_underwater(timestamps, equity, benchmark_returns=None, title: str = "Equity and drawdown") -> Figure:
    """Equity curve (with the buy-and-hold benchmark scaled to the same start) above the
    underwater (drawdown) curve."""
    fig = _figure(8, 5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1])
    t = _dates(timestamps)
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        _empty(top)
        _empty(bottom)
        return fig
    top.plot(t, eq, color=LINE, lw=1.3, label="strategy")
    if benchmark_returns is not None:
        b = np.nan_to_num(np.asarray(benchmark_returns, dtype=np.float64))
        top.plot(t, eq[0] / (1 + b[0]) * np.cumprod(1 + b), color=BENCH, lw=1.0, label="buy and hold")
        top.legend(loc="upper left", frameon=False)
    top.set_title(title)
    top.set_ylabel("equity ($)")
    top.grid(alpha=0.3)
    dd = series_mod.drawdown(eq)
    bottom.fill_between(t, dd, 0, color=NEG, alpha=0.6, lw=0)
    bottom.yaxis.set_major_formatter(PercentFormatter(1.0))
    bottom.set_ylabel("drawdown")
    bottom.grid(alpha=0.3)
    return fig


def monthly_heatmap(timestamps, returns, title: str = "Monthly returns") -> Figure:
    """Compounded monthly returns, years by months, red to green around zero, values printed."""
    table = series_mod.monthly_returns(pd.Series(np.asarray(returns, dtype=np.float64), index=pd.DatetimeIndex(timestamps)))
    fig = _figure(8, max(2.0, 0.45 * len(table) + 1.2))
    ax = fig.subplots()
    if table.empty:
        _empty(ax)
        return fig
    values = table.to_numpy(dtype=np.float64)
    bound = float(np.nanmax(np.abs(values))) or 0.01
    im = ax.imshow(values, cmap="RdYlGn", norm=TwoSlopeNorm(0.0, -bound, bound), aspect="auto")
    ax.set_xticks(range(12), ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
    ax.set_yticks(range(len(table)), [str(y) for y in table.index])
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{100 * v:.1f}", ha="center", va="center", fontsize=7)
    ax.set_title(title + " (%)")
    fig.colorbar(im, ax=ax, format=PercentFormatter(1.0), shrink=0.8)
    return fig


def rolling_sharpe_vol(timestamps, returns, window: int, periods_per_year: float = stats.DAILY,
                       title: str = "Rolling Sharpe and volatility") -> Figure:
    fig = _figure(8, 4.5)
    top, bottom = fig.subplots(2, 1, sharex=True)
    t = _dates(timestamps)
    r = np.asarray(returns, dtype=np.float64)
    top.plot(t, series_mod.rolling_sharpe(r, window, periods_per_year).to_numpy(), color=LINE, lw=1.1)
    top.axhline(0, color="grey", lw=0.8)
    top.set_ylabel(f"Sharpe ({window} bars)")
    top.set_title(title)
    top.grid(alpha=0.3)
    bottom.plot(t, series_mod.rolling_volatility(r, window, periods_per_year).to_numpy(), color=NEG, lw=1.1)
    bottom.yaxis.set_major_formatter(PercentFormatter(1.0))
    bottom.set_ylabel("volatility (ann.)")
    bottom.grid(alpha=0.3)
    return fig


def return_distribution(returns, level: float = 0.95, title: str = "Return distribution") -> Figure:
    """Histogram of bar returns with the historical VaR and ES at ``level`` marked."""
    fig = _figure(7, 4)
    ax = fig.subplots()
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size < 2:
        _empty(ax)
        return fig
    ax.hist(r, bins=min(80, max(10, r.size // 10)), color=LINE, alpha=0.75)
    var, es = stats.var_historical(r, level), stats.expected_shortfall(r, level)
    pct = f"{100 * level:g}%"
    ax.axvline(var, color="#f4a261", lw=1.6, label=f"VaR {pct}: {100 * var:.2f}%")
    ax.axvline(es, color=NEG, lw=1.6, ls="--", label=f"ES {pct}: {100 * es:.2f}%")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(title)
    ax.set_ylabel("bars")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return fig


def position_path(timestamps, position, title: str = "Position (long +1, short -1)") -> Figure:
    fig = _figure(8, 2.5)
    ax = fig.subplots()
    t = _dates(timestamps)
    p = np.asarray(position, dtype=np.float64)
    ax.fill_between(t, p, 0, where=p > 0, color=POS, step="post", lw=0)
    ax.fill_between(t, p, 0, where=p < 0, color=NEG, step="post", lw=0)
    ax.set_ylim(-1.2, 1.2)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig


# --- bars (portfolio and risk) ---------------------------------------------------------------

def bars(labels: Sequence[str], values: Sequence[float], *, title: str, xlabel: str = "", horizontal: bool = True,
         percent: bool = False) -> Figure:
    """Signed bars (green positive, red negative), largest magnitude first."""
    fig = _figure(7, max(2.5, 0.32 * len(labels) + 1.2) if horizontal else 4)
    ax = fig.subplots()
    if not len(labels):
        _empty(ax)
        return fig
    v = np.asarray(values, dtype=np.float64)
    colors = [POS if x >= 0 else NEG for x in v]
    if horizontal:
        ax.barh(list(labels)[::-1], v[::-1], color=colors[::-1])
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_xlabel(xlabel)
        if percent:
            ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    else:
        ax.bar(list(labels), v, color=colors)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_ylabel(xlabel)
        if percent:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.tick_params(axis="x", rotation=30)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="x" if horizontal else "y")
    return fig


def grouped_bars(labels: Sequence[str], groups: Mapping[str, Sequence[float]], *, title: str, ylabel: str = "") -> Figure:
    """Side-by-side bars: one group per key of ``groups`` (e.g. notional and delta-adjusted)."""
    fig = _figure(8, 4)
    ax = fig.subplots()
    if not len(labels) or not groups:
        _empty(ax)
        return fig
    x = np.arange(len(labels))
    width = 0.8 / len(groups)
    palette = [LINE, "#e9c46a", POS, NEG]
    for k, (name, vals) in enumerate(groups.items()):
        ax.bar(x + (k - (len(groups) - 1) / 2) * width, np.asarray(vals, dtype=np.float64), width,
               label=name, color=palette[k % len(palette)])
    ax.set_xticks(x, list(labels))
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3, axis="y")
    return fig


# --- sweeps and the leaderboard ---------------------------------------------------------------

def grid_heatmap(table: pd.DataFrame, x: str, y: str, metric: str, title: str | None = None) -> Figure:
    """``metric`` over two grid axes (the best value where other axes vary), values printed."""
    fig = _figure(8, 5)
    ax = fig.subplots()
    pivot = table.pivot_table(index=y, columns=x, values=metric, aggfunc="max") if len(table) else pd.DataFrame()
    if pivot.empty:
        _empty(ax)
        return fig
    values = pivot.to_numpy(dtype=np.float64)
    im = ax.imshow(values, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(pivot.shape[1]), [f"{c:g}" if isinstance(c, float) else str(c) for c in pivot.columns], rotation=45)
    ax.set_yticks(range(pivot.shape[0]), [f"{c:g}" if isinstance(c, float) else str(c) for c in pivot.index])
    if values.size <= 400:
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title or f"{metric} by {x} and {y}")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def sharpe_vs_deflated(sharpe, deflated, labels: Sequence[str] = (), title: str = "Sharpe vs deflated Sharpe") -> Figure:
    """Each result's annualised Sharpe (x) against its deflated Sharpe probability (y)."""
    fig = _figure(7, 4.5)
    ax = fig.subplots()
    s = np.asarray(sharpe, dtype=np.float64)
    d = np.asarray(deflated, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(d)
    if not ok.any():
        _empty(ax)
        return fig
    ax.scatter(s[ok], d[ok], s=18, color=LINE, alpha=0.7)
    ax.axhline(0.95, color=NEG, ls="--", lw=1, label="DSR 0.95")
    for i in np.flatnonzero(ok)[:10] if len(labels) else ():
        ax.annotate(str(labels[i]), (s[i], d[i]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("Sharpe (annualised)")
    ax.set_ylabel("deflated Sharpe (probability)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return fig
