"""Numba kernels for technical indicators.

Every kernel takes plain float64 arrays (one value per bar, oldest first) and returns arrays of
the same length. All kernels are strictly causal: the value at bar ``i`` is computed from bars
``0..i`` only, so appending future bars never changes past values. Bars before an indicator
has enough history (its warm-up) are NaN. Pandas-facing wrappers live in
``compute.indicators``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def rolling_sum_nb(x, window):
    """Trailing sum over ``window`` bars; NaN until the window is full or if it holds a NaN."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    for i in range(window - 1, n):
        acc = 0.0
        for j in range(i - window + 1, i + 1):
            acc += x[j]
        out[i] = acc  # NaN propagates through the sum
    return out


@njit(cache=True)
def rolling_mean_nb(x, window):
    """Simple moving average: mean of the last ``window`` values."""
    out = rolling_sum_nb(x, window)
    for i in range(out.shape[0]):
        out[i] = out[i] / window
    return out


@njit(cache=True)
def rolling_std_nb(x, window, ddof):
    """Trailing standard deviation over ``window`` bars (two-pass, so no cancellation drift)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    if window - ddof <= 0:
        return out
    for i in range(window - 1, n):
        acc = 0.0
        for j in range(i - window + 1, i + 1):
            acc += x[j]
        if np.isnan(acc):
            continue
        mean = acc / window
        ss = 0.0
        for j in range(i - window + 1, i + 1):
            ss += (x[j] - mean) ** 2
        out[i] = np.sqrt(ss / (window - ddof))
    return out


@njit(cache=True)
def _first_valid(x):
    for i in range(x.shape[0]):
        if not np.isnan(x[i]):
            return i
    return x.shape[0]


@njit(cache=True)
def smoothed_average_nb(x, window, alpha):
    """Recursive average ``s_i = s_{i-1} + alpha (x_i - s_{i-1})`` seeded with an SMA.

    The seed is the simple mean of the first ``window`` valid values, placed on the last of
    them (StockCharts/Wilder convention), so leading NaNs (e.g. a MACD line still warming up)
    are skipped. A NaN after the seed yields NaN at that bar and leaves the state unchanged.
    """
    n = x.shape[0]
    out = np.full(n, np.nan)
    start = _first_valid(x)
    seed_end = start + window - 1
    if seed_end >= n:
        return out
    acc = 0.0
    for j in range(start, seed_end + 1):
        acc += x[j]
    if np.isnan(acc):
        return out
    state = acc / window
    out[seed_end] = state
    for i in range(seed_end + 1, n):
        if np.isnan(x[i]):
            continue
        state = state + alpha * (x[i] - state)
        out[i] = state
    return out


@njit(cache=True)
def ema_nb(x, window):
    """Exponential moving average, alpha = 2 / (window + 1), seeded with the first SMA."""
    return smoothed_average_nb(x, window, 2.0 / (window + 1.0))


@njit(cache=True)
def wilder_average_nb(x, window):
    """Wilder's smoothing, alpha = 1 / window, seeded with the first SMA."""
    return smoothed_average_nb(x, window, 1.0 / window)


@njit(cache=True)
def rsi_nb(close, window):
    """Wilder's Relative Strength Index in [0, 100].

    Average gain and loss are seeded with the simple mean of the first ``window`` changes and
    then smoothed with alpha = 1 / window; RSI = 100 - 100 / (1 + avg_gain / avg_loss).
    The first value is at bar ``window`` (it needs ``window`` changes).
    """
    n = close.shape[0]
    out = np.full(n, np.nan)
    if n <= window:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, window + 1):
        d = close[i] - close[i - 1]
        if d > 0:
            gain += d
        else:
            loss -= d
    gain /= window
    loss /= window
    for i in range(window, n):
        if i > window:
            d = close[i] - close[i - 1]
            g = d if d > 0 else 0.0
            lo = -d if d < 0 else 0.0
            gain = (gain * (window - 1) + g) / window
            loss = (loss * (window - 1) + lo) / window
        if loss == 0.0:
            out[i] = 100.0 if gain > 0.0 else 50.0
        else:
            out[i] = 100.0 - 100.0 / (1.0 + gain / loss)
    return out


@njit(cache=True)
def true_range_nb(high, low, close):
    """True range: max(high - low, |high - prev close|, |low - prev close|); bar 0 is high - low."""
    n = high.shape[0]
    out = np.empty(n)
    if n == 0:
        return out
    out[0] = high[0] - low[0]
    for i in range(1, n):
        pc = close[i - 1]
        out[i] = max(high[i] - low[i], abs(high[i] - pc), abs(low[i] - pc))
    return out


@njit(cache=True)
def atr_nb(high, low, close, window):
    """Wilder's Average True Range: Wilder average of the true range (first value at bar window-1)."""
    return wilder_average_nb(true_range_nb(high, low, close), window)


@njit(cache=True)
def adx_nb(high, low, close, window):
    """Wilder's ADX with +DI and -DI (all in [0, 100]).

    +DM = up move if up > down and up > 0 (else 0), -DM likewise; TR, +DM, -DM from bar 1 are
    Wilder-smoothed (running sums, first at bar ``window``); DI = 100 x smoothed DM / smoothed TR;
    DX = 100 |+DI - -DI| / (+DI + -DI); ADX = Wilder average of DX, first at bar 2 window - 1.
    Returns (adx, plus_di, minus_di).
    """
    n = high.shape[0]
    adx = np.full(n, np.nan)
    pdi = np.full(n, np.nan)
    mdi = np.full(n, np.nan)
    if n <= window:
        return adx, pdi, mdi
    str_ = 0.0
    spdm = 0.0
    smdm = 0.0
    dx_sum = 0.0
    adx_state = 0.0
    for i in range(1, n):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        pdm = up if (up > down and up > 0.0) else 0.0
        mdm = down if (down > up and down > 0.0) else 0.0
        pc = close[i - 1]
        tr = max(high[i] - low[i], abs(high[i] - pc), abs(low[i] - pc))
        if i <= window:
            str_ += tr
            spdm += pdm
            smdm += mdm
            if i < window:
                continue
        else:
            str_ = str_ - str_ / window + tr
            spdm = spdm - spdm / window + pdm
            smdm = smdm - smdm / window + mdm
        if str_ > 0.0:
            pdi[i] = 100.0 * spdm / str_
            mdi[i] = 100.0 * smdm / str_
        else:
            pdi[i] = 0.0
            mdi[i] = 0.0
        di_sum = pdi[i] + mdi[i]
        dx = 100.0 * abs(pdi[i] - mdi[i]) / di_sum if di_sum > 0.0 else 0.0
        k = i - window  # index of this DX among DX values
        if k < window:
            dx_sum += dx
            if k == window - 1:
                adx_state = dx_sum / window
                adx[i] = adx_state
        else:
            adx_state = (adx_state * (window - 1) + dx) / window
            adx[i] = adx_state
    return adx, pdi, mdi


@njit(cache=True)
def obv_nb(close, volume):
    """On-balance volume: running sum of +volume on up closes, -volume on down closes; bar 0 is 0."""
    n = close.shape[0]
    out = np.empty(n)
    if n == 0:
        return out
    out[0] = 0.0
    for i in range(1, n):
        if close[i] > close[i - 1]:
            out[i] = out[i - 1] + volume[i]
        elif close[i] < close[i - 1]:
            out[i] = out[i - 1] - volume[i]
        else:
            out[i] = out[i - 1]
    return out


@njit(cache=True)
def rolling_ratio_nb(num, den, window):
    """sum(num) / sum(den) over the trailing ``window`` bars; NaN where the denominator is not positive."""
    n = num.shape[0]
    top = rolling_sum_nb(num, window)
    bottom = rolling_sum_nb(den, window)
    out = np.full(n, np.nan)
    for i in range(n):
        if bottom[i] > 0.0:
            out[i] = top[i] / bottom[i]
    return out


@njit(cache=True)
def cmf_nb(high, low, close, volume, window):
    """Chaikin Money Flow: sum(MFM x volume) / sum(volume) over ``window`` bars.

    MFM = ((close - low) - (high - close)) / (high - low), taken as 0 when high == low.
    """
    n = close.shape[0]
    mfv = np.empty(n)
    for i in range(n):
        rng = high[i] - low[i]
        mfm = ((close[i] - low[i]) - (high[i] - close[i])) / rng if rng > 0.0 else 0.0
        mfv[i] = mfm * volume[i]
    return rolling_ratio_nb(mfv, volume, window)


@njit(cache=True)
def vwap_session_nb(high, low, close, volume, session_id):
    """Session VWAP of the typical price (h + l + c) / 3, reset whenever ``session_id`` changes."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    pv = 0.0
    vol = 0.0
    for i in range(n):
        if i == 0 or session_id[i] != session_id[i - 1]:
            pv = 0.0
            vol = 0.0
        tp = (high[i] + low[i] + close[i]) / 3.0
        pv += tp * volume[i]
        vol += volume[i]
        if vol > 0.0:
            out[i] = pv / vol
    return out


@njit(cache=True)
def vwap_rolling_nb(high, low, close, volume, window):
    """Rolling VWAP of the typical price over ``window`` bars (daily bars have no session reset)."""
    n = close.shape[0]
    pv = np.empty(n)
    for i in range(n):
        pv[i] = (high[i] + low[i] + close[i]) / 3.0 * volume[i]
    return rolling_ratio_nb(pv, volume, window)


@njit(cache=True)
def log_returns_nb(close, periods):
    """log(close_i / close_{i-periods}); NaN for the first ``periods`` bars."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    for i in range(periods, n):
        out[i] = np.log(close[i] / close[i - periods])
    return out


@njit(cache=True)
def simple_returns_nb(close, periods):
    """close_i / close_{i-periods} - 1; NaN for the first ``periods`` bars."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    for i in range(periods, n):
        out[i] = close[i] / close[i - periods] - 1.0
    return out


@njit(cache=True)
def rolling_zscore_nb(x, window):
    """(x_i - mean) / std over the trailing ``window`` values including x_i (std with ddof=1).

    A window with zero dispersion gives 0 (the value equals its mean), not inf.
    """
    mean = rolling_mean_nb(x, window)
    sd = rolling_std_nb(x, window, 1)
    n = x.shape[0]
    out = np.full(n, np.nan)
    for i in range(n):
        if np.isnan(sd[i]):
            continue
        out[i] = (x[i] - mean[i]) / sd[i] if sd[i] > 0.0 else 0.0
    return out
