"""Technical indicators: typed wrappers over the kernels in ``compute.indicators_nb``.

Inputs are pandas Series (returned values keep the index) or 1-D array-likes (returned as
float64 ndarrays). Every indicator is strictly causal (value at bar i uses bars 0..i only) and
NaN during its warm-up. Conventions follow StockCharts' ChartSchool tables:

- EMA: alpha = 2 / (n + 1), seeded with the SMA of the first n values.
- Wilder smoothing (RSI, ATR, ADX): alpha = 1 / n, seeded with the SMA of the first n values.
- Bollinger bands use the population standard deviation (ddof = 0), as Bollinger does.
"""

from __future__ import annotations

from typing import Union

import numpy as np
import pandas as pd

from compute import indicators_nb as nb

ArrayLike = Union[pd.Series, np.ndarray, list]

MARKET_TZ = "America/New_York"


def _values(x: ArrayLike) -> np.ndarray:
    if isinstance(x, pd.Series):
        x = x.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.ascontiguousarray(np.asarray(x, dtype=np.float64))


def _index_of(*xs) -> pd.Index | None:
    for x in xs:
        if isinstance(x, pd.Series):
            return x.index
    return None


def _wrap(values: np.ndarray, index: pd.Index | None, name: str):
    if index is None:
        return values
    return pd.Series(values, index=index, name=name)


def _frame(columns: dict[str, np.ndarray], index: pd.Index | None):
    if index is None:
        index = pd.RangeIndex(len(next(iter(columns.values()))))
    return pd.DataFrame(columns, index=index)


def _check_window(window: int, name: str = "window") -> int:
    if int(window) != window or window < 1:
        raise ValueError(f"{name} must be a positive integer, got {window!r}")
    return int(window)


def simple_returns(close: ArrayLike, periods: int = 1):
    """Simple return close_t / close_{t-periods} - 1 (per bar, not annualised)."""
    return _wrap(nb.simple_returns_nb(_values(close), _check_window(periods, "periods")),
                 _index_of(close), f"ret{periods}")


def log_returns(close: ArrayLike, periods: int = 1):
    """Log return ln(close_t / close_{t-periods}) (per bar, not annualised)."""
    return _wrap(nb.log_returns_nb(_values(close), _check_window(periods, "periods")),
                 _index_of(close), f"logret{periods}")


def sma(x: ArrayLike, window: int):
    """Simple moving average: mean of the last ``window`` values; first value at bar window-1."""
    return _wrap(nb.rolling_mean_nb(_values(x), _check_window(window)), _index_of(x),
                 f"sma{window}")


def ema(x: ArrayLike, window: int):
    """Exponential moving average, alpha = 2 / (window + 1), seeded with SMA(window)."""
    return _wrap(nb.ema_nb(_values(x), _check_window(window)), _index_of(x), f"ema{window}")


def rsi(close: ArrayLike, window: int = 14):
    """Wilder's RSI = 100 - 100 / (1 + RS), RS = Wilder avg gain / Wilder avg loss; in [0, 100]."""
    return _wrap(nb.rsi_nb(_values(close), _check_window(window)), _index_of(close),
                 f"rsi{window}")


def macd(close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """MACD line = EMA(fast) - EMA(slow); signal = EMA(signal) of the line; hist = line - signal.

    Columns ``macd``, ``signal``, ``hist`` in price units. The line starts at bar slow-1 and the
    signal at bar slow + signal - 2.
    """
    c = _values(close)
    line = nb.ema_nb(c, _check_window(fast, "fast")) - nb.ema_nb(c, _check_window(slow, "slow"))
    sig = nb.ema_nb(line, _check_window(signal, "signal"))
    return _frame({"macd": line, "signal": sig, "hist": line - sig}, _index_of(close))


def bollinger(close: ArrayLike, window: int = 20, k: float = 2.0) -> pd.DataFrame:
    """Bollinger bands: mid = SMA(window), upper/lower = mid +/- k x population std(window).

    ``pct_b`` = (close - lower) / (upper - lower) (0 at the lower band, 1 at the upper);
    ``width`` = (upper - lower) / mid (a fraction, not percent).
    """
    c = _values(close)
    w = _check_window(window)
    mid = nb.rolling_mean_nb(c, w)
    sd = nb.rolling_std_nb(c, w, 0)
    upper = mid + k * sd
    lower = mid - k * sd
    span = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        pct_b = np.where(span > 0, (c - lower) / span, 0.5)
        width = span / mid
    pct_b = np.where(np.isnan(span), np.nan, pct_b)
    return _frame({"mid": mid, "upper": upper, "lower": lower, "pct_b": pct_b, "width": width},
                  _index_of(close))


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike):
    """True range max(h - l, |h - prev c|, |l - prev c|) in price units; bar 0 is h - l."""
    return _wrap(nb.true_range_nb(_values(high), _values(low), _values(close)),
                 _index_of(high, low, close), "tr")


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, window: int = 14):
    """Wilder's Average True Range in price units (first value at bar window-1)."""
    return _wrap(nb.atr_nb(_values(high), _values(low), _values(close), _check_window(window)),
                 _index_of(high, low, close), f"atr{window}")


def adx(high: ArrayLike, low: ArrayLike, close: ArrayLike, window: int = 14) -> pd.DataFrame:
    """Wilder's Average Directional Index with +DI and -DI, all in [0, 100].

    Columns ``adx``, ``plus_di``, ``minus_di``; DI first at bar ``window``, ADX at 2 window - 1.
    """
    a, p, m = nb.adx_nb(_values(high), _values(low), _values(close), _check_window(window))
    return _frame({"adx": a, "plus_di": p, "minus_di": m}, _index_of(high, low, close))


def obv(close: ArrayLike, volume: ArrayLike):
    """On-balance volume (shares): cumulative signed volume from 0 at the first bar given."""
    return _wrap(nb.obv_nb(_values(close), _values(volume)), _index_of(close, volume), "obv")


def cmf(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike, window: int = 20):
    """Chaikin Money Flow in [-1, 1]: sum(MFM x volume) / sum(volume) over ``window`` bars."""
    return _wrap(nb.cmf_nb(_values(high), _values(low), _values(close), _values(volume),
                           _check_window(window)),
                 _index_of(high, low, close, volume), f"cmf{window}")


def session_ids(index: pd.DatetimeIndex) -> np.ndarray:
    """Integer id of the America/New_York trading date of each timestamp (for session resets)."""
    local = _to_market_tz(index)
    days = local.normalize().tz_localize(None)
    return days.to_numpy(dtype="datetime64[D]").astype(np.int64)


def vwap(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike,
         sessions: np.ndarray | None = None, window: int | None = None):
    """Volume-weighted average of the typical price (h + l + c) / 3, in price units.

    Intraday: pass ``sessions`` (e.g. ``session_ids(index)``); the average resets at each new
    session. Daily: pass ``window`` for a rolling N-bar VWAP. Exactly one of the two is needed.
    """
    if (sessions is None) == (window is None):
        raise ValueError("vwap needs exactly one of sessions (intraday) or window (daily)")
    h, lo, c, v = _values(high), _values(low), _values(close), _values(volume)
    if sessions is not None:
        sid = np.ascontiguousarray(np.asarray(sessions, dtype=np.int64))
        if sid.shape != c.shape:
            raise ValueError("sessions must have one id per bar")
        out = nb.vwap_session_nb(h, lo, c, v, sid)
        name = "vwap"
    else:
        out = nb.vwap_rolling_nb(h, lo, c, v, _check_window(window))
        name = f"vwap{window}"
    return _wrap(out, _index_of(high, low, close, volume), name)


def keltner(high: ArrayLike, low: ArrayLike, close: ArrayLike, window: int = 20, k: float = 2.0,
            atr_window: int = 10) -> pd.DataFrame:
    """Keltner channels: mid = EMA(close, window), upper/lower = mid +/- k x ATR(atr_window).

    Defaults are StockCharts' (20, 2, 10). Columns ``mid``, ``upper``, ``lower`` and
    ``pct_k`` = (close - lower) / (upper - lower).
    """
    h, lo, c = _values(high), _values(low), _values(close)
    mid = nb.ema_nb(c, _check_window(window))
    band = k * nb.atr_nb(h, lo, c, _check_window(atr_window, "atr_window"))
    upper, lower = mid + band, mid - band
    span = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        pct_k = np.where(span > 0, (c - lower) / span, 0.5)
    pct_k = np.where(np.isnan(span), np.nan, pct_k)
    return _frame({"mid": mid, "upper": upper, "lower": lower, "pct_k": pct_k},
                  _index_of(high, low, close))


def rolling_volatility(close: ArrayLike, window: int = 20, periods_per_year: float | None = None):
    """Sample std (ddof=1) of 1-bar log returns over ``window`` returns.

    Per bar by default; multiplied by sqrt(periods_per_year) when given (252 for daily bars,
    252 x bars-per-session for intraday). First value at bar ``window``.
    """
    vol = nb.rolling_std_nb(nb.log_returns_nb(_values(close), 1), _check_window(window), 1)
    if periods_per_year is not None:
        vol = vol * np.sqrt(periods_per_year)
    return _wrap(vol, _index_of(close), f"vol{window}")


def momentum_score(close: ArrayLike, z_window: int = 20, rsi_window: int = 14):
    """Momentum score = 0.7 x mean(z(mom1), z(mom3)) + 0.3 x (RSI - 50) / 50.

    mom_k = close_t / close_{t-k} - 1; z(.) is the trailing z-score over ``z_window`` bars
    including the current one (mean and ddof=1 std of that window), so it is causal and unit
    free. (RSI - 50) / 50 maps RSI to [-1, 1]. Dimensionless; typically within [-3, 3].
    """
    c = _values(close)
    w = _check_window(z_window, "z_window")
    z1 = nb.rolling_zscore_nb(nb.simple_returns_nb(c, 1), w)
    z3 = nb.rolling_zscore_nb(nb.simple_returns_nb(c, 3), w)
    r = nb.rsi_nb(c, _check_window(rsi_window, "rsi_window"))
    score = 0.7 * 0.5 * (z1 + z3) + 0.3 * (r - 50.0) / 50.0
    return _wrap(score, _index_of(close), "momentum_score")


def _to_market_tz(index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index)
    if idx.tz is None:
        raise ValueError("timestamps must be timezone-aware (UTC bar start times)")
    return idx.tz_convert(MARKET_TZ)


def hour_of_day(index) -> np.ndarray:
    """Hour (0-23) of each timestamp in America/New_York (bar start time)."""
    return _to_market_tz(index).hour.to_numpy(dtype=np.int64)


def weekday(index) -> np.ndarray:
    """Weekday of each timestamp in America/New_York: Monday = 0 ... Friday = 4."""
    return _to_market_tz(index).day_of_week.to_numpy(dtype=np.int64)


def realised_implied_spread(close: ArrayLike, implied_vol: ArrayLike, window: int = 20,
                            periods_per_year: float = 252.0):
    """Realised minus implied volatility, both annualised decimals (0.20 = 20 %).

    Realised = ``rolling_volatility(close, window, periods_per_year)``; ``implied_vol`` is the
    implied volatility known at each bar (aligned to the bars by the caller, no look-ahead).
    Positive means the underlying moved more than options priced.
    """
    rv = _values(rolling_volatility(close, window, periods_per_year))
    iv = _values(implied_vol)
    if iv.shape != rv.shape:
        raise ValueError("implied_vol must have one value per bar")
    return _wrap(rv - iv, _index_of(close, implied_vol), f"rv_iv{window}")
