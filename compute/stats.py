"""Return statistics: typed numpy/pandas wrappers over ``compute.stats_nb`` plus the
probabilistic and deflated Sharpe ratios.

Conventions (empyrical's): inputs are simple periodic returns; annualised figures scale by
``periods_per_year``; drawdowns, VaR and expected shortfall are negative numbers for
losses. 1-D functions return floats. ``risk_stats_batch`` takes a 2-D array with time along
axis 0 and one column per series (a ``DataFrame`` of returns, as empyrical and pandas lay it
out) and returns a dict of 1-D arrays, one value per column.
"""

from __future__ import annotations

import math
from typing import Union

import numpy as np
import pandas as pd
# scipy.special, not scipy.stats: the same normal CDF and quantile for a third of the import
# time, which every fresh Ray worker running a sweep pays.
from scipy.special import ndtr, ndtri

from compute import stats_nb
from compute.stats_nb import BATCH_STAT_NAMES, EULER_MASCHERONI
from compute.threads import threads_for

ArrayLike1D = Union[np.ndarray, pd.Series, list]

DAILY = 252


def _as_1d(returns: ArrayLike1D) -> np.ndarray:
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D array of returns, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def cum_return(returns: ArrayLike1D) -> float:
    """Cumulative compounded return prod(1 + r) - 1."""
    return float(stats_nb.cum_return_nb(_as_1d(returns)))


def annual_return(returns: ArrayLike1D, periods_per_year: float = DAILY) -> float:
    """CAGR: prod(1 + r) ** (periods_per_year / n) - 1."""
    return float(stats_nb.annual_return_nb(_as_1d(returns), float(periods_per_year)))


def annual_volatility(returns: ArrayLike1D, periods_per_year: float = DAILY) -> float:
    """Sample standard deviation (ddof=1) times sqrt(periods_per_year)."""
    return float(stats_nb.annual_volatility_nb(_as_1d(returns), float(periods_per_year)))


def sharpe(returns: ArrayLike1D, periods_per_year: float = DAILY, risk_free: float = 0.0) -> float:
    """Annualised Sharpe: mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)."""
    return float(stats_nb.sharpe_nb(_as_1d(returns), float(periods_per_year), float(risk_free)))


def sortino(returns: ArrayLike1D, periods_per_year: float = DAILY, required_return: float = 0.0) -> float:
    """Annualised Sortino: mean(r - t) * ppy / downside_risk(r, t)."""
    return float(stats_nb.sortino_nb(_as_1d(returns), float(periods_per_year), float(required_return)))


def downside_risk(returns: ArrayLike1D, periods_per_year: float = DAILY, required_return: float = 0.0) -> float:
    """sqrt(mean(min(r - t, 0) ** 2)) * sqrt(periods_per_year)."""
    return float(stats_nb.downside_risk_nb(_as_1d(returns), float(periods_per_year), float(required_return)))


def max_drawdown(returns: ArrayLike1D) -> float:
    """Worst peak-to-trough loss of the compounded curve, negative (-0.25 = 25 %)."""
    return float(stats_nb.max_drawdown_nb(_as_1d(returns)))


def calmar(returns: ArrayLike1D, periods_per_year: float = DAILY) -> float:
    """annual_return / |max_drawdown| (NaN without a drawdown)."""
    return float(stats_nb.calmar_nb(_as_1d(returns), float(periods_per_year)))


def var_historical(returns: ArrayLike1D, level: float = 0.95) -> float:
    """Historical VaR: the (1 - level) quantile of returns, linear interpolation."""
    return float(stats_nb.var_historical_nb(_as_1d(returns), float(level)))


def expected_shortfall(returns: ArrayLike1D, level: float = 0.95) -> float:
    """Historical ES/CVaR: mean of the floor((n-1)(1-level)) + 1 smallest returns."""
    return float(stats_nb.expected_shortfall_nb(_as_1d(returns), float(level)))


def win_rate(returns: ArrayLike1D) -> float:
    """Fraction of non-zero returns that are positive."""
    return float(stats_nb.win_rate_nb(_as_1d(returns)))


def skew_kurtosis(returns: ArrayLike1D) -> tuple[float, float]:
    """(skewness, non-excess kurtosis) with population moments (normal: 0, 3)."""
    s, k = stats_nb.skew_kurtosis_nb(_as_1d(returns))
    return float(s), float(k)


def risk_stats(returns: ArrayLike1D, periods_per_year: float = DAILY, level: float = 0.95) -> dict[str, float]:
    """Every statistic of ``BATCH_STAT_NAMES`` for one series, as a dict of floats."""
    batch = risk_stats_batch(_as_1d(returns)[:, None], periods_per_year, level)
    return {name: float(values[0]) for name, values in batch.items()}


def risk_stats_batch(
    returns_2d: Union[np.ndarray, pd.DataFrame],
    periods_per_year: float = DAILY,
    level: float = 0.95,
) -> dict[str, np.ndarray]:
    """Statistics for many series at once, in parallel over series.

    ``returns_2d``: shape (n_obs, n_series), time along axis 0 (one column per series, like
    a DataFrame of returns). Returns ``{name: array of shape (n_series,)}`` for the names
    in ``compute.stats_nb.BATCH_STAT_NAMES``: cum_return, annual_return, annual_volatility,
    sharpe, sortino, downside_risk, max_drawdown, calmar, var_95, es_95, win_rate (VaR/ES
    at ``level``, keys keep the ``_95`` names whatever the level).
    """
    arr = np.asarray(returns_2d, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D (n_obs, n_series) array, got shape {arr.shape}")
    by_series = np.ascontiguousarray(arr.T)
    with threads_for(by_series.size):
        out = stats_nb.risk_stats_batch_nb(by_series, float(periods_per_year), float(level))
    return {name: out[i] for i, name in enumerate(BATCH_STAT_NAMES)}


def expected_max_sharpe(n_trials: int, sharpe_variance_across_trials: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe ratios under the null of no skill.

    Bailey & Lopez de Prado (2014), eq. for SR0:
    ``sqrt(V) * ((1 - g) * Phi^-1(1 - 1/N) + g * Phi^-1(1 - 1/(N e)))`` with g the
    Euler-Mascheroni constant and V the variance of the trials' Sharpe ratios. Same units as
    the Sharpe ratios whose variance is given. Zero for a single trial.
    """
    if n_trials < 1:
        raise ValueError("n_trials must be >= 1")
    if n_trials == 1 or sharpe_variance_across_trials <= 0.0:
        return 0.0
    g = EULER_MASCHERONI
    z = (1.0 - g) * ndtri(1.0 - 1.0 / n_trials) + g * ndtri(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sharpe_variance_across_trials) * z


def probabilistic_sharpe_ratio(
    sharpe,
    benchmark_sharpe,
    n_obs,
    skew=0.0,
    kurtosis=3.0,
    periods_per_year: float = 1.0,
):
    """Probability that the true Sharpe exceeds ``benchmark_sharpe`` (Bailey & Lopez de Prado 2012).

    ``PSR = Phi((SR - SR*) * sqrt(n - 1) / sqrt(1 - skew * SR + (kurtosis - 1) / 4 * SR^2))``
    with per-observation (non-annualised) Sharpe ratios; ``kurtosis`` is non-excess (3 for
    normal returns). Pass annualised Sharpe ratios together with their ``periods_per_year``
    and they are de-annualised by sqrt(periods_per_year) first. Arguments broadcast like
    numpy; scalars give a float. NaN where n < 2 or the variance term is not positive.
    """
    scale = math.sqrt(periods_per_year)
    sr = np.asarray(sharpe, dtype=np.float64) / scale
    sr0 = np.asarray(benchmark_sharpe, dtype=np.float64) / scale
    n = np.asarray(n_obs, dtype=np.float64)
    denom = 1.0 - np.asarray(skew, dtype=np.float64) * sr + (np.asarray(kurtosis, dtype=np.float64) - 1.0) / 4.0 * sr * sr
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (sr - sr0) * np.sqrt(np.maximum(n - 1.0, 0.0)) / np.sqrt(denom)
        psr = np.where((n >= 2) & (denom > 0), ndtr(z), np.nan)
    return float(psr) if psr.ndim == 0 else psr


def deflated_sharpe_ratio(
    sharpe,
    n_trials: int,
    n_obs,
    skew,
    kurtosis,
    sharpe_variance_across_trials: float,
    periods_per_year: float = 1.0,
):
    """Deflated Sharpe ratio (Bailey & Lopez de Prado 2014): PSR against the expected max
    Sharpe of ``n_trials`` unskilled trials.

    ``DSR = PSR(SR0)``, ``SR0 = expected_max_sharpe(n_trials, V)``. ``sharpe`` and the
    cross-trial variance ``V`` are per observation unless ``periods_per_year`` is given, in
    which case they are annualised (Sharpe / sqrt(ppy), V / ppy). ``kurtosis`` is non-excess.
    A probability in [0, 1]; above 0.95 the selected Sharpe survives the multiple testing.
    ``sharpe``, ``n_obs``, ``skew`` and ``kurtosis`` may be arrays (one per trial).
    """
    variance_per_obs = sharpe_variance_across_trials / periods_per_year
    sr0 = expected_max_sharpe(n_trials, variance_per_obs) * math.sqrt(periods_per_year)
    return probabilistic_sharpe_ratio(sharpe, sr0, n_obs, skew, kurtosis, periods_per_year)
