"""Numba kernels for return statistics (empyrical's definitions, on plain 1-D arrays).

Every kernel takes a 1-D float64 array of *simple* periodic returns (0.01 = +1 %).
NaN entries are treated as missing observations and skipped, as empyrical's
``nanmean``/``nanstd`` do. Results are NaN when there are too few observations
(fewer than 2 for dispersion-based figures, none for the others).

Annualisation uses ``periods_per_year`` (252 for daily bars, 52 weekly, 12 monthly,
bars per year for intraday data). The wrappers in ``compute.stats`` accept pandas and
2-D input; these kernels are what the backtest and sweep engines call in their loops.
"""

import math

import numpy as np
from numba import njit, prange

# Euler-Mascheroni constant, used by the expected maximum Sharpe of N trials.
EULER_MASCHERONI = 0.5772156649015329


@njit(cache=True, nogil=True)
def valid_count_nb(r):
    """Number of non-NaN observations."""
    n = 0
    for i in range(r.shape[0]):
        if not math.isnan(r[i]):
            n += 1
    return n


@njit(cache=True, nogil=True)
def cum_return_nb(r):
    """Cumulative compounded return: prod(1 + r) - 1 (fraction, not annualised)."""
    growth = 1.0
    for i in range(r.shape[0]):
        if not math.isnan(r[i]):
            growth *= 1.0 + r[i]
    return growth - 1.0


@njit(cache=True, nogil=True)
def annual_return_nb(r, periods_per_year):
    """Compound annual growth rate (CAGR).

    ``prod(1 + r) ** (periods_per_year / n) - 1`` where n is the number of observations,
    so n / periods_per_year is the length of the sample in years. A total loss gives -1.
    """
    n = valid_count_nb(r)
    if n == 0:
        return np.nan
    growth = cum_return_nb(r) + 1.0
    if growth <= 0.0:
        return -1.0
    return growth ** (periods_per_year / n) - 1.0


@njit(cache=True, nogil=True)
def mean_std_nb(r):
    """(mean, sample standard deviation with ddof=1) of the non-NaN entries, two-pass."""
    n = 0
    total = 0.0
    for i in range(r.shape[0]):
        if not math.isnan(r[i]):
            n += 1
            total += r[i]
    if n < 2:
        return (total / n if n > 0 else np.nan), np.nan
    mean = total / n
    ss = 0.0
    for i in range(r.shape[0]):
        if not math.isnan(r[i]):
            d = r[i] - mean
            ss += d * d
    return mean, math.sqrt(ss / (n - 1))


@njit(cache=True, nogil=True)
def annual_volatility_nb(r, periods_per_year):
    """Annualised volatility: sample std (ddof=1) of r times sqrt(periods_per_year)."""
    _, sd = mean_std_nb(r)
    return sd * math.sqrt(periods_per_year)


@njit(cache=True, nogil=True)
def sharpe_nb(r, periods_per_year, risk_free=0.0):
    """Annualised Sharpe ratio.

    ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)``; ``risk_free`` is the
    per-period risk-free return (not annual). NaN with fewer than 2 observations or zero
    dispersion.
    """
    n = 0
    total = 0.0
    for i in range(r.shape[0]):
        if not math.isnan(r[i]):
            n += 1
            total += r[i] - risk_free
    if n < 2:
        return np.nan
    mean = total / n
    ss = 0.0
    for i in range(r.shape[0]):
        if not math.isnan(r[i]):
            d = r[i] - risk_free - mean
            ss += d * d
    sd = math.sqrt(ss / (n - 1))
    if sd == 0.0:
        return np.nan
    return mean / sd * math.sqrt(periods_per_year)


@njit(cache=True, nogil=True)
def downside_risk_nb(r, periods_per_year, required_return=0.0):
    """Annualised downside deviation below ``required_return`` (per period).

    ``sqrt(mean(min(r - required_return, 0) ** 2)) * sqrt(periods_per_year)``; the mean runs
    over all observations (zeros above the target count), as in empyrical.
    """
    n = 0
    ss = 0.0
    for i in range(r.shape[0]):
        if not math.isnan(r[i]):
            n += 1
            d = r[i] - required_return
            if d < 0.0:
                ss += d * d
    if n == 0:
        return np.nan
    return math.sqrt(ss / n) * math.sqrt(periods_per_year)


@njit(cache=True, nogil=True)
def sortino_nb(r, periods_per_year, required_return=0.0):
    """Annualised Sortino ratio.

    ``mean(r - required_return) * periods_per_year / downside_risk`` with the downside
    deviation of ``downside_risk_nb``. +inf when there is no downside and the mean is
    positive (as empyrical), NaN with fewer than 2 observations.
    """
    n = 0
    total = 0.0
    ss = 0.0
    for i in range(r.shape[0]):
        if not math.isnan(r[i]):
            n += 1
            d = r[i] - required_return
            total += d
            if d < 0.0:
                ss += d * d
    if n < 2:
        return np.nan
    annual_mean = total / n * periods_per_year
    dd = math.sqrt(ss / n) * math.sqrt(periods_per_year)
    if dd == 0.0:
        if annual_mean > 0.0:
            return np.inf
        return np.nan
    return annual_mean / dd


@njit(cache=True, nogil=True)
def max_drawdown_nb(r):
    """Maximum drawdown of the compounded equity curve, as a negative fraction.

    Equity starts at 1 before the first return (so an initial loss counts), peak is the
    running maximum, drawdown = equity / peak - 1; the result is its minimum (0 when the
    curve never falls). -0.25 means a 25 % peak-to-trough loss.
    """
    equity = 1.0
    peak = 1.0
    worst = 0.0
    for i in range(r.shape[0]):
        if math.isnan(r[i]):
            continue
        equity *= 1.0 + r[i]
        if equity > peak:
            peak = equity
        dd = equity / peak - 1.0
        if dd < worst:
            worst = dd
    return worst


@njit(cache=True, nogil=True)
def calmar_nb(r, periods_per_year):
    """Calmar ratio: annual_return / |max_drawdown|; NaN when there is no drawdown."""
    mdd = max_drawdown_nb(r)
    if not mdd < 0.0:
        return np.nan
    return annual_return_nb(r, periods_per_year) / -mdd


@njit(cache=True, nogil=True)
def _finite_sorted(r):
    n = valid_count_nb(r)
    out = np.empty(n)
    j = 0
    for i in range(r.shape[0]):
        if not math.isnan(r[i]):
            out[j] = r[i]
            j += 1
    out.sort()
    return out


@njit(cache=True, nogil=True)
def var_historical_nb(r, level=0.95):
    """Historical value at risk at confidence ``level`` (0.95 -> the 5 % tail).

    The (1 - level) quantile of r with linear interpolation between order statistics
    (numpy's default, as empyrical's ``value_at_risk``). A return, so a loss is negative:
    -0.021 means a 2.1 % one-period loss is exceeded 5 % of the time.
    """
    s = _finite_sorted(r)
    n = s.shape[0]
    if n == 0:
        return np.nan
    pos = (1.0 - level) * (n - 1)
    lo = int(math.floor(pos))
    if lo >= n - 1:
        return s[n - 1]
    frac = pos - lo
    return s[lo] + (s[lo + 1] - s[lo]) * frac


@njit(cache=True, nogil=True)
def expected_shortfall_tail_size_nb(n_obs, level):
    """How many of the smallest returns make up the historical tail of ``n_obs``.

    ``floor((n_obs - 1) * (1 - level)) + 1``: the returns at or below the lower order
    statistic at the (1 - level) quantile (empyrical's ``conditional_value_at_risk``).
    """
    if n_obs <= 0:
        return 0
    # the small epsilon keeps e.g. (21 - 1) * 0.05 == 1.0 from flooring to 0
    return int(math.floor((n_obs - 1) * (1.0 - level) + 1e-9)) + 1


@njit(cache=True, nogil=True)
def expected_shortfall_nb(r, level=0.95):
    """Historical expected shortfall (CVaR) at confidence ``level`` (0.95 -> ES95).

    Mean of the returns at or below the (1 - level) quantile: the k smallest returns with
    k = floor((n - 1) * (1 - level)) + 1. Negative for a loss, per period, not annualised.
    """
    s = _finite_sorted(r)
    n = s.shape[0]
    if n == 0:
        return np.nan
    k = expected_shortfall_tail_size_nb(n, level)
    total = 0.0
    for i in range(k):
        total += s[i]
    return total / k


@njit(cache=True, nogil=True)
def win_rate_nb(r):
    """Fraction of non-zero returns that are positive (flat periods are not counted).

    NaN when every observation is zero or missing.
    """
    wins = 0
    nonzero = 0
    for i in range(r.shape[0]):
        x = r[i]
        if math.isnan(x) or x == 0.0:
            continue
        nonzero += 1
        if x > 0.0:
            wins += 1
    if nonzero == 0:
        return np.nan
    return wins / nonzero


@njit(cache=True, nogil=True)
def skew_kurtosis_nb(r):
    """(skewness, kurtosis) with population moments; kurtosis is *not* excess (normal = 3).

    These are the moments the probabilistic / deflated Sharpe ratio formulas expect.
    """
    n = valid_count_nb(r)
    if n < 2:
        return np.nan, np.nan
    mean = 0.0
    for i in range(r.shape[0]):
        if not math.isnan(r[i]):
            mean += r[i]
    mean /= n
    m2 = 0.0
    m3 = 0.0
    m4 = 0.0
    for i in range(r.shape[0]):
        if not math.isnan(r[i]):
            d = r[i] - mean
            d2 = d * d
            m2 += d2
            m3 += d2 * d
            m4 += d2 * d2
    m2 /= n
    m3 /= n
    m4 /= n
    if m2 == 0.0:
        return np.nan, np.nan
    return m3 / m2 ** 1.5, m4 / (m2 * m2)


# Column order of the batch kernel's output; compute.stats maps it to names.
BATCH_STAT_NAMES = (
    "cum_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "downside_risk",
    "max_drawdown",
    "calmar",
    "var_95",
    "es_95",
    "win_rate",
)


@njit(cache=True, nogil=True)
def _insert_sorted(buf, count, capacity, x):
    # keep buf[:count] as the ascending `capacity` smallest values seen so far
    if count == capacity:
        if not x < buf[capacity - 1]:
            return count
        i = capacity - 1
    else:
        i = count
        count += 1
    while i > 0 and buf[i - 1] > x:
        buf[i] = buf[i - 1]
        i -= 1
    buf[i] = x
    return count


@njit(cache=True, parallel=True)
def risk_stats_batch_nb(returns_by_series, periods_per_year, level):
    """All ``BATCH_STAT_NAMES`` for each row of a (n_series, n_obs) C-contiguous array.

    Parallel over series, two fused passes per series and a small sorted buffer for the
    tail (VaR / ES) instead of a full sort. The arithmetic is the 1-D kernels' own, in the
    same order, so every figure equals the single-series function's exactly.
    """
    n_series = returns_by_series.shape[0]
    n_obs = returns_by_series.shape[1]
    out = np.empty((len(BATCH_STAT_NAMES), n_series))
    sqrt_ppy = math.sqrt(periods_per_year)
    for j in prange(n_series):
        r = returns_by_series[j]
        n = 0
        total = 0.0
        growth = 1.0
        peak = 1.0
        worst = 0.0
        ss_down = 0.0
        wins = 0
        nonzero = 0
        for i in range(n_obs):
            x = r[i]
            if math.isnan(x):
                continue
            n += 1
            total += x
            growth *= 1.0 + x
            if growth > peak:
                peak = growth
            dd = growth / peak - 1.0
            if dd < worst:
                worst = dd
            if x < 0.0:
                ss_down += x * x
            if x != 0.0:
                nonzero += 1
                if x > 0.0:
                    wins += 1
        cum = growth - 1.0
        out[0, j] = cum
        if n == 0:
            for m in range(1, len(BATCH_STAT_NAMES)):
                out[m, j] = np.nan
            out[6, j] = 0.0
            continue
        g = cum + 1.0
        annual = -1.0 if g <= 0.0 else g ** (periods_per_year / n) - 1.0
        out[1, j] = annual
        out[6, j] = worst
        out[7, j] = annual / -worst if worst < 0.0 else np.nan
        out[10, j] = wins / nonzero if nonzero > 0 else np.nan
        out[5, j] = math.sqrt(ss_down / n) * sqrt_ppy

        # second pass: dispersion around the mean and the lower tail
        mean = total / n
        k = expected_shortfall_tail_size_nb(n, level)
        pos = (1.0 - level) * (n - 1)
        lo = int(math.floor(pos))
        capacity = min(n, max(k, lo + 2))
        buf = np.empty(capacity)
        count = 0
        ss = 0.0
        for i in range(n_obs):
            x = r[i]
            if math.isnan(x):
                continue
            d = x - mean
            ss += d * d
            count = _insert_sorted(buf, count, capacity, x)
        if n < 2:
            out[2, j] = np.nan
            out[3, j] = np.nan
            out[4, j] = np.nan
        else:
            sd = math.sqrt(ss / (n - 1))
            out[2, j] = sd * sqrt_ppy
            out[3, j] = mean / sd * sqrt_ppy if sd != 0.0 else np.nan
            annual_mean = total / n * periods_per_year
            dd_risk = math.sqrt(ss_down / n) * sqrt_ppy
            if dd_risk == 0.0:
                out[4, j] = np.inf if annual_mean > 0.0 else np.nan
            else:
                out[4, j] = annual_mean / dd_risk
        if lo >= n - 1:
            out[8, j] = buf[n - 1]
        else:
            out[8, j] = buf[lo] + (buf[lo + 1] - buf[lo]) * (pos - lo)
        tail = 0.0
        for i in range(k):
            tail += buf[i]
        out[9, j] = tail / k
    return out
