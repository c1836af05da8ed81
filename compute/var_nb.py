"""Numba kernels for tail statistics without a full sort, and a batched risk-statistics pass.

Historical VaR and ES only need the few smallest returns (13 of 252 at 95 %), so instead of
sorting each series (which dominates a batch of short series) the kernel keeps a small sorted
buffer of the m smallest values, one insertion per new low. Results equal
``compute.stats_nb.var_historical_nb`` / ``expected_shortfall_nb`` (empyrical's definitions)
exactly: same order statistics, same interpolation, same tail size.
"""

import math

import numpy as np
from numba import njit, prange

from compute.stats_nb import (
    annual_volatility_nb,
    expected_shortfall_tail_size_nb,
    max_drawdown_nb,
    sharpe_nb,
    valid_count_nb,
)

# Beyond this many order statistics an insertion buffer is slower than sorting.
_MAX_BUFFER = 64


@njit(cache=True, nogil=True)
def tail_var_es_nb(r, var_level, es_level):
    """(historical VaR at ``var_level``, historical ES at ``es_level``) of the non-NaN returns.

    VaR: the (1 - level) quantile with linear interpolation between order statistics
    (numpy/empyrical ``value_at_risk``); ES: mean of the k = floor((n - 1)(1 - level)) + 1
    smallest returns (empyrical ``conditional_value_at_risk``). Negative for losses; NaN for
    an empty series.
    """
    n = valid_count_nb(r)
    if n == 0:
        return np.nan, np.nan
    pos = (1.0 - var_level) * (n - 1)
    lo = int(math.floor(pos))
    k_es = expected_shortfall_tail_size_nb(n, es_level)
    m = min(max(lo + 2, k_es), n)
    if m > _MAX_BUFFER:
        buf = np.sort(r[~np.isnan(r)])
    else:
        buf = np.empty(m)
        filled = 0
        for i in range(r.shape[0]):
            x = r[i]
            if math.isnan(x):
                continue
            if filled < m:
                j = filled
                filled += 1
            elif x < buf[m - 1]:
                j = m - 1
            else:
                continue
            # shift larger entries right, keeping buf[:filled] sorted ascending
            while j > 0 and buf[j - 1] > x:
                buf[j] = buf[j - 1]
                j -= 1
            buf[j] = x
    if lo >= n - 1:
        var = buf[n - 1] if m == n else buf[m - 1]
    else:
        var = buf[lo] + (buf[lo + 1] - buf[lo]) * (pos - lo)
    total = 0.0
    for i in range(k_es):
        total += buf[i]
    return var, total / k_es


# Row order of risk_stats_nb's output; compute.risk maps it to names.
RISK_STAT_NAMES = ("annual_volatility", "sharpe", "max_drawdown", "var", "expected_shortfall")


@njit(cache=True, parallel=True)
def risk_stats_nb(returns_by_series, periods_per_year, var_level, es_level):
    """``RISK_STAT_NAMES`` for each row of a (n_series, n_obs) array, parallel over series.

    Volatility, Sharpe and drawdown are the ``compute.stats_nb`` kernels; VaR/ES come from
    :func:`tail_var_es_nb`.
    """
    n_series = returns_by_series.shape[0]
    out = np.empty((len(RISK_STAT_NAMES), n_series))
    for j in prange(n_series):
        r = returns_by_series[j]
        out[0, j] = annual_volatility_nb(r, periods_per_year)
        out[1, j] = sharpe_nb(r, periods_per_year, 0.0)
        out[2, j] = max_drawdown_nb(r)
        var, es = tail_var_es_nb(r, var_level, es_level)
        out[3, j] = var
        out[4, j] = es
    return out
