"""Numba kernels over OHLCV bar arrays (resampling, validation)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def aggregate_groups_nb(group, opens, highs, lows, closes, volumes):
    """Aggregate consecutive rows sharing a group id: first open, max high, min low, last
    close, summed volume.  ``group`` must be non-decreasing.  Returns the index of each
    group's first row and the five aggregated arrays."""
    n = group.shape[0]
    count = 0
    for i in range(n):
        if i == 0 or group[i] != group[i - 1]:
            count += 1
    first = np.empty(count, np.int64)
    out_o = np.empty(count)
    out_h = np.empty(count)
    out_l = np.empty(count)
    out_c = np.empty(count)
    out_v = np.empty(count)
    k = -1
    for i in range(n):
        if i == 0 or group[i] != group[i - 1]:
            k += 1
            first[k] = i
            out_o[k] = opens[i]
            out_h[k] = highs[i]
            out_l[k] = lows[i]
            out_v[k] = 0.0
        if highs[i] > out_h[k]:
            out_h[k] = highs[i]
        if lows[i] < out_l[k]:
            out_l[k] = lows[i]
        out_c[k] = closes[i]
        out_v[k] += volumes[i]
    return first, out_o, out_h, out_l, out_c, out_v


@njit(cache=True)
def first_invalid_row_nb(stamps, opens, highs, lows, closes, volumes):
    """First row breaking a bar rule, as (row, rule code); (-1, 0) when all rows are valid.

    Codes: 1 timestamps not strictly increasing (unsorted or duplicate), 2 non-positive or
    missing price, 3 high below max(open, close), 4 low above min(open, close),
    5 negative or missing volume.
    """
    n = stamps.shape[0]
    for i in range(n):
        if i > 0 and stamps[i] <= stamps[i - 1]:
            return i, 1
        o = opens[i]
        h = highs[i]
        l = lows[i]
        c = closes[i]
        if not (o > 0.0 and h > 0.0 and l > 0.0 and c > 0.0):
            return i, 2
        if h < max(o, c):
            return i, 3
        if l > min(o, c):
            return i, 4
        if not (volumes[i] >= 0.0):
            return i, 5
    return -1, 0
