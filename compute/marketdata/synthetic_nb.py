"""Numba kernels of the synthetic market-data generator (plain arrays in, plain arrays out).

Random numbers are drawn by the numpy-facing callers (PCG64 streams seeded from SHA-256) and
passed in, so the kernels are deterministic and can run in parallel without per-thread RNG
state changing the result.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def garch_variance_multiplier_nb(z, a, c, b):
    """Unit-mean GJR-GARCH(1,1) variance multiplier driven by standardized shocks ``z``.

    g_0 = 1;  g_t = (1 - a - c/2 - b) + (a + c 1[z_{t-1} < 0]) z_{t-1}^2 g_{t-1} + b g_{t-1}.
    With E[z^2] = 1 and symmetric z, E[g_t] = 1, so sigma * sqrt(g_t) * z_t keeps variance
    sigma^2 while its volatility clusters.
    """
    n = z.shape[0]
    g = np.empty(n)
    omega = 1.0 - a - 0.5 * c - b
    if n == 0:
        return g
    g[0] = 1.0
    for t in range(1, n):
        shock = z[t - 1]
        arch = a + (c if shock < 0.0 else 0.0)
        g[t] = omega + arch * shock * shock * g[t - 1] + b * g[t - 1]
    return g


@njit(cache=True)
def compound_closes_nb(returns, anchor_index, anchor_price):
    """Closes from simple returns, scaled so the close at ``anchor_index`` is ``anchor_price``.

    Returns are floored at -95 % so a fat-tailed draw can never make a price non-positive.
    """
    n = returns.shape[0]
    closes = np.empty(n)
    level = 1.0
    for t in range(n):
        r = returns[t]
        if r < -0.95:
            r = -0.95
        level *= 1.0 + r
        closes[t] = level
    scale = anchor_price / closes[anchor_index]
    for t in range(n):
        closes[t] *= scale
    return closes


@njit(cache=True)
def backward_closes_nb(returns, last_close):
    """Closes ending at ``last_close`` whose simple returns are ``returns`` (returns[0], the
    move into the first close, is not used): compounded backwards, close[t - 1] =
    close[t] / (1 + returns[t]), with returns floored at -95 % as in compound_closes_nb, so
    every close stays positive."""
    n = returns.shape[0]
    closes = np.empty(n)
    if n == 0:
        return closes
    closes[n - 1] = last_close
    for t in range(n - 1, 0, -1):
        r = returns[t]
        if r < -0.95:
            r = -0.95
        closes[t - 1] = closes[t] / (1.0 + r)
    return closes


@njit(cache=True)
def mean_reverting_log_levels_nb(shocks, market, market_loading, kappa, log_mean, start_level):
    """Levels of a mean-reverting index (VIX-like): d log V = kappa (m - log V) + b M + shock."""
    n = shocks.shape[0]
    levels = np.empty(n)
    x = np.log(start_level)
    for t in range(n):
        x = x + kappa * (log_mean - x) + market_loading * market[t] + shocks[t]
        levels[t] = np.exp(x)
    return levels


@njit(cache=True)
def daily_ohlcv_nb(closes, daily_vol, gap_noise, high_draw, low_draw, volume_noise, adv,
                   overnight_share):
    """Open, high, low and volume around a close path.

    The open sits between the previous close and today's close (``overnight_share`` of the
    day's move happens overnight, plus noise); the high/low extend beyond max/min(open, close)
    by half-normal multiples of the day's volatility; volume scales with the size of the move.
    """
    n = closes.shape[0]
    opens = np.empty(n)
    highs = np.empty(n)
    lows = np.empty(n)
    volumes = np.empty(n)
    for t in range(n):
        prev = closes[t - 1] if t > 0 else closes[0] / (1.0 + 0.0)
        c = closes[t]
        move = c / prev - 1.0
        gap = overnight_share * move + 0.25 * daily_vol[t] * gap_noise[t]
        o = prev * (1.0 + gap)
        if o <= 0.0:
            o = prev
        top = max(o, c)
        bottom = min(o, c)
        up = 0.5 * daily_vol[t] * abs(high_draw[t])
        down = 0.5 * daily_vol[t] * abs(low_draw[t])
        if down > 0.5:
            down = 0.5
        opens[t] = o
        highs[t] = top * (1.0 + up)
        lows[t] = bottom * (1.0 - down)
        if adv > 0.0:
            size = abs(move) / max(daily_vol[t], 1e-9)
            volumes[t] = np.floor(adv * np.exp(0.3 * volume_noise[t] - 0.045) * (0.7 + 0.35 * size))
        else:
            volumes[t] = 0.0
    return opens, highs, lows, volumes


@njit(cache=True)
def _session_minutes(o, h, l, c, v, n, z, wick, vol_noise, out_o, out_h, out_l,
                     out_c, out_v):
    if n == 0:
        return
    if h <= l or n < 3:
        for j in range(n):
            out_o[j] = o if j == 0 else c
            out_c[j] = c
            out_h[j] = h
            out_l[j] = l
        out_o[0] = o
        out_h[0] = h
        out_l[0] = l
    else:
        # One Brownian bridge from the open to the close in log price, its step sized so the
        # session's realised variance matches the open-to-close variance (range / 2.6: the
        # synthetic range is |open - close| plus excursions on both sides, about 2.6 sigma;
        # calibrated and checked by tests/compute/test_zero_dte_honesty.py). The high and low
        # are then reached by the monotone map below. Forcing the path
        # through the high and low at chosen minutes instead would add deterministic legs
        # (open -> high -> low -> close) and inflate hourly volatility well above the daily
        # figure, which would make same-day options systematically too cheap.
        step = (np.log(h) - np.log(l)) / 2.6 / np.sqrt(n)
        x0 = np.log(o)
        x1 = np.log(c)
        walks = np.empty(n + 1)
        walks[0] = 0.0
        walk = 0.0
        for j in range(1, n + 1):
            walk += step * z[j - 1]
            walks[j] = walk
        path = np.empty(n + 1)
        for j in range(n + 1):
            frac = j / n
            path[j] = x0 + walks[j] - frac * walks[n] + frac * (x1 - x0)
        prices = np.exp(path)
        # Pull overshoots back inside [low, high] with a monotone map that leaves the
        # [min(o, c), max(o, c)] band untouched, then pin the extremes exactly.
        top = max(o, c)
        bottom = min(o, c)
        pmax = prices[1]
        pmin = prices[1]
        imax = 1
        imin = 1
        # Extremes are pinned at interior minutes only: the close minute must stay the close.
        for j in range(1, n):
            if prices[j] > pmax:
                pmax = prices[j]
                imax = j
            if prices[j] < pmin:
                pmin = prices[j]
                imin = j
        for j in range(1, n + 1):
            p = prices[j]
            if p > top and pmax > top:
                p = top + (p - top) * (h - top) / (pmax - top)
            elif p < bottom and pmin < bottom:
                p = bottom - (bottom - p) * (bottom - l) / (bottom - pmin)
            prices[j] = p
        if imin == imax:
            imin = 2 if imax == 1 else 1
        if h > top:
            prices[imax] = h
        if l < bottom:
            prices[imin] = l
        prices[0] = o
        prices[n] = c
        for j in range(n):
            mo = prices[j]
            mc = prices[j + 1]
            out_o[j] = mo
            out_c[j] = mc
            hi = max(mo, mc) * (1.0 + wick[j] * step)
            lo = min(mo, mc) * (1.0 - wick[j] * step)
            out_h[j] = hi if hi < h else h
            out_l[j] = lo if lo > l else l
    # U-shaped volume: heavy at the open and into the close, integer shares summing to v.
    weights = np.empty(n)
    total = 0.0
    for j in range(n):
        x = (j + 0.5) / n
        w = (0.45 + 2.2 * (2.0 * x - 1.0) ** 2) * np.exp(0.35 * vol_noise[j])
        weights[j] = w
        total += w
    assigned = 0.0
    fractions = np.empty(n)
    for j in range(n):
        share = v * weights[j] / total
        whole = np.floor(share)
        out_v[j] = whole
        fractions[j] = share - whole
        assigned += whole
    remainder = int(round(v - assigned))
    if remainder > 0:
        order = np.argsort(-fractions)
        for k in range(remainder):
            out_v[order[k % n]] += 1.0


@njit(cache=True, parallel=True)
def minute_bars_nb(opens, highs, lows, closes, volumes, minutes, z, wick, vol_noise):
    """1-minute OHLCV for each session, aggregating exactly to that session's daily bar.

    ``minutes[s]`` is the session length; ``z``, ``wick`` and ``vol_noise`` hold one draw per
    minute (sessions concatenated).  Output arrays are concatenated in session order.
    """
    m = opens.shape[0]
    offsets = np.zeros(m + 1, np.int64)
    for s in range(m):
        offsets[s + 1] = offsets[s] + minutes[s]
    total = offsets[m]
    out_o = np.empty(total)
    out_h = np.empty(total)
    out_l = np.empty(total)
    out_c = np.empty(total)
    out_v = np.empty(total)
    for s in prange(m):
        a = offsets[s]
        b = offsets[s + 1]
        _session_minutes(opens[s], highs[s], lows[s], closes[s], volumes[s], b - a,
                         z[a:b], wick[a:b], vol_noise[a:b],
                         out_o[a:b], out_h[a:b], out_l[a:b], out_c[a:b], out_v[a:b])
    return out_o, out_h, out_l, out_c, out_v


@njit(cache=True)
def idiosyncratic_returns_nb(u, vol, a, c, b):
    """e_t = vol * sqrt(h_t) * u_t with h_t a unit-mean GJR-GARCH(1,1) on the ticker's own shocks."""
    h = garch_variance_multiplier_nb(u, a, c, b)
    out = np.empty(u.shape[0])
    for t in range(u.shape[0]):
        out[t] = vol * np.sqrt(h[t]) * u[t]
    return out
