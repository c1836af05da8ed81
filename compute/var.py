"""Value at risk and expected shortfall: historical, parametric normal, Cornish-Fisher, Monte Carlo.

Conventions (empyrical's): VaR and ES are *returns* of the portfolio over the horizon, negative
for a loss (-0.021 = a 2.1 % loss); dollar figures are equity x that return, also negative.
``level`` is the confidence (0.95 -> the 5 % left tail). Inputs are daily simple returns.

Horizons:
- parametric normal and Cornish-Fisher scale with the square root of time:
  VaR_h = mu h + z sigma sqrt(h), z the (1 - level) quantile (Cornish-Fisher-adjusted for the
  latter); ES_h likewise.
- historical h-day uses the empirical distribution of *overlapping* h-day compounded returns
  prod(1 + r_t..r_{t+h-1}) - 1 from the same history (n - h + 1 windows; no sqrt-of-time
  scaling, so fat tails and autocorrelation carry over, at the price of overlapping windows).
- Monte Carlo draws the h-day factor and idiosyncratic moves directly (covariance x h) and
  fully reprices options at T - h.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtri

from compute import stats
from compute.scenarios import TRADING_DAYS_PER_YEAR, PositionBook, position_book, revalue_pnl

VAR_LEVELS = (0.95, 0.99)
ES_LEVEL = 0.975
HORIZONS = (1, 10)


def _finite(returns) -> np.ndarray:
    arr = np.asarray(returns, dtype=np.float64).ravel()
    return arr[~np.isnan(arr)]


def multi_day_returns(returns, horizon_days: int) -> np.ndarray:
    """Overlapping ``horizon_days``-day compounded returns: prod(1 + r[t:t+h]) - 1.

    NaNs are dropped first (a missing day is not a zero return). Length n - h + 1 (empty if
    the history is shorter than the horizon).
    """
    r = _finite(returns)
    h = int(horizon_days)
    if h < 1:
        raise ValueError("horizon_days must be >= 1")
    if h == 1 or r.size < h:
        return r if h == 1 else np.empty(0)
    log_growth = np.concatenate(([0.0], np.cumsum(np.log1p(r))))
    return np.expm1(log_growth[h:] - log_growth[:-h])


def historical_var(returns, level: float = 0.95, horizon_days: int = 1) -> float:
    """Historical VaR: the (1 - level) quantile of the (h-day overlapping) returns.

    Linear interpolation between order statistics, i.e. empyrical's
    ``value_at_risk(returns, cutoff=1 - level)`` for h = 1.
    """
    return stats.var_historical(multi_day_returns(returns, horizon_days), level)


def historical_expected_shortfall(returns, level: float = ES_LEVEL, horizon_days: int = 1) -> float:
    """Historical ES: mean of the k smallest (h-day) returns, k = floor((n - 1)(1 - level)) + 1.

    empyrical's ``conditional_value_at_risk(returns, cutoff=1 - level)`` for h = 1.
    """
    return stats.expected_shortfall(multi_day_returns(returns, horizon_days), level)


def normal_var(mean: float, std: float, level: float = 0.95, horizon_days: int = 1) -> float:
    """Normal VaR from a daily mean and std: mean h + Phi^-1(1 - level) std sqrt(h)."""
    return mean * horizon_days + ndtri(1.0 - level) * std * math.sqrt(horizon_days)


def normal_expected_shortfall(mean: float, std: float, level: float = ES_LEVEL, horizon_days: int = 1) -> float:
    """Normal ES: mean h - std sqrt(h) phi(z) / (1 - level), z = Phi^-1(1 - level)."""
    z = ndtri(1.0 - level)
    return mean * horizon_days - std * math.sqrt(horizon_days) * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) / (1.0 - level)


def parametric_var(returns, level: float = 0.95, horizon_days: int = 1) -> float:
    """Parametric (variance-covariance) normal VaR of the returns' sample mean and std (ddof=1).

    mu h + Phi^-1(1 - level) sigma sqrt(h); per h days, not annualised.
    """
    r = _finite(returns)
    if r.size < 2:
        return float("nan")
    return normal_var(r.mean(), r.std(ddof=1), level, horizon_days)


def parametric_expected_shortfall(returns, level: float = ES_LEVEL, horizon_days: int = 1) -> float:
    """Normal ES of the returns' sample mean and std (ddof=1), sqrt-of-time scaled."""
    r = _finite(returns)
    if r.size < 2:
        return float("nan")
    return normal_expected_shortfall(r.mean(), r.std(ddof=1), level, horizon_days)


def cornish_fisher_quantile(level: float, skew: float, excess_kurtosis: float) -> float:
    """Cornish-Fisher expansion of the (1 - level) standard quantile for skew S and excess kurtosis K.

    z_cf = z + (z^2 - 1) S / 6 + (z^3 - 3 z) K / 24 - (2 z^3 - 5 z) S^2 / 36.
    """
    z = ndtri(1.0 - level)
    return (
        z
        + (z * z - 1.0) * skew / 6.0
        + (z**3 - 3.0 * z) * excess_kurtosis / 24.0
        - (2.0 * z**3 - 5.0 * z) * skew * skew / 36.0
    )


def cornish_fisher_var(returns, level: float = 0.95, horizon_days: int = 1) -> float:
    """Modified (Cornish-Fisher) VaR: mu h + z_cf sigma sqrt(h).

    sigma is the sample std (ddof=1); skewness and excess kurtosis are the population
    (biased) moments of the daily returns, held fixed under the sqrt-of-time scaling.
    """
    r = _finite(returns)
    if r.size < 4:
        return float("nan")
    skew, kurtosis = stats.skew_kurtosis(r)
    if not (math.isfinite(skew) and math.isfinite(kurtosis)):
        return float("nan")
    z_cf = cornish_fisher_quantile(level, skew, kurtosis - 3.0)
    return r.mean() * horizon_days + z_cf * r.std(ddof=1) * math.sqrt(horizon_days)


def var_table(
    returns,
    equity: float | None = None,
    levels: Sequence[float] = VAR_LEVELS,
    horizons: Sequence[int] = HORIZONS,
    es_level: float = ES_LEVEL,
) -> dict:
    """Every returns-based VaR/ES figure, JSON-ready.

    ``{"var": [{"method", "level", "horizon_days", "return", "dollars"}...],
    "expected_shortfall": [same keys], "observations": n}`` with methods historical,
    parametric_normal and cornish_fisher (ES: historical and parametric_normal). ``dollars``
    is equity x return (None without equity). NaN (too little data) becomes None.
    """
    r = _finite(returns)

    def row(method, level, horizon, value):
        value = float(value)
        ok = math.isfinite(value)
        return {
            "method": method,
            "level": level,
            "horizon_days": horizon,
            "return": value if ok else None,
            "dollars": value * equity if ok and equity is not None else None,
        }

    var_rows = []
    es_rows = []
    for horizon in horizons:
        for level in levels:
            var_rows.append(row("historical", level, horizon, historical_var(r, level, horizon)))
            var_rows.append(row("parametric_normal", level, horizon, parametric_var(r, level, horizon)))
            var_rows.append(row("cornish_fisher", level, horizon, cornish_fisher_var(r, level, horizon)))
        es_rows.append(row("historical", es_level, horizon, historical_expected_shortfall(r, es_level, horizon)))
        es_rows.append(
            row("parametric_normal", es_level, horizon, parametric_expected_shortfall(r, es_level, horizon))
        )
    return {"var": var_rows, "expected_shortfall": es_rows, "observations": int(r.size)}


def factor_covariance_cholesky(covariance: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor L of a factor covariance (L L' = covariance).

    A sample covariance can be positive semi-definite only (collinear or constant factors);
    then negative/zero eigenvalues are clipped to 0 and L = V sqrt(Lambda), which reproduces
    the matrix exactly on its range instead of failing.
    """
    cov = np.asarray(covariance, dtype=np.float64)
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh((cov + cov.T) / 2.0)
        return vectors * np.sqrt(np.clip(values, 0.0, None))


def simulate_portfolio_pnl(
    positions: pd.DataFrame | PositionBook,
    betas: pd.DataFrame,
    residual_vol: pd.Series,
    factor_covariance: pd.DataFrame,
    horizon_days: int = 1,
    n_paths: int = 100_000,
    seed: int = 0,
    chunk_paths: int = 25_000,
) -> tuple[np.ndarray, list[str]]:
    """Monte Carlo portfolio P&L ($) over ``horizon_days`` trading days, options fully repriced.

    Per path: factor moves f ~ N(0, h Sigma) drawn as sqrt(h) L z (L the Cholesky factor of the
    daily factor covariance ``factor_covariance``), each underlying's return
    u = betas . f + e, e ~ N(0, h s^2) with s its daily residual vol; stocks P&L linear,
    options repriced with BSM at spot (1 + u) and T - h/252. Underlyings without betas or
    residual vol (limited history) are left out (P&L 0) and named in the returned warnings.
    Returns (pnl of shape (n_paths,), warnings). Deterministic for a given ``seed``.
    """
    book = positions if isinstance(positions, PositionBook) else position_book(positions)
    factors = list(factor_covariance.columns)
    missing_factors = [f for f in factors if f not in betas.columns]
    if missing_factors:
        raise ValueError(f"betas: missing factor columns {missing_factors}")
    loadings = betas.reindex(list(book.underlyings))[factors].to_numpy(np.float64)
    idio = residual_vol.reindex(list(book.underlyings)).to_numpy(np.float64)
    unmodelled = np.isnan(loadings).any(axis=1) | np.isnan(idio)
    warnings = []
    if unmodelled.any():
        names = [u for u, m in zip(book.underlyings, unmodelled) if m]
        warnings.append(f"no factor betas (limited history) for {names}: left out of the simulation")
    loadings = np.where(unmodelled[:, None], 0.0, loadings)
    idio = np.where(unmodelled, 0.0, idio)

    chol = factor_covariance_cholesky(factor_covariance.to_numpy(np.float64))
    h = float(horizon_days)
    scale = math.sqrt(h)
    horizon_years = h / TRADING_DAYS_PER_YEAR
    rng = np.random.default_rng(seed)
    n_underlyings = len(book.underlyings)
    pnl = np.empty(int(n_paths))
    # paths in chunks keep the (paths x underlyings) temporaries cache- and memory-friendly
    for start in range(0, int(n_paths), int(chunk_paths)):
        stop = min(start + int(chunk_paths), int(n_paths))
        m = stop - start
        factor_moves = rng.standard_normal((m, len(factors))) @ (chol.T * scale)
        moves = factor_moves @ loadings.T
        moves += rng.standard_normal((m, n_underlyings)) * (idio * scale)
        pnl[start:stop] = revalue_pnl(book, moves, horizon_years).sum(axis=1)
    return pnl, warnings


def monte_carlo_var(
    positions: pd.DataFrame | PositionBook,
    betas: pd.DataFrame,
    residual_vol: pd.Series,
    factor_covariance: pd.DataFrame,
    equity: float | None = None,
    levels: Sequence[float] = VAR_LEVELS,
    es_level: float = ES_LEVEL,
    horizon_days: int = 1,
    n_paths: int = 100_000,
    seed: int = 0,
) -> dict:
    """Monte Carlo VaR and ES in dollars (negative = loss) from :func:`simulate_portfolio_pnl`.

    VaR = (1 - level) quantile of simulated P&L (linear interpolation); ES = mean of the
    k = floor((n - 1)(1 - es_level)) + 1 worst paths (same estimator as the historical ES).
    Returns ``{"var": {level: $}, "expected_shortfall": {es_level: $}, "var_fraction": {level:
    $/equity} (when equity given), "mean_pnl", "std_pnl", "n_paths", "horizon_days", "seed",
    "warnings"}``.
    """
    pnl, warnings = simulate_portfolio_pnl(
        positions, betas, residual_vol, factor_covariance, horizon_days, n_paths, seed
    )
    var = {float(lv): stats.var_historical(pnl, lv) for lv in levels}
    result = {
        "var": var,
        "expected_shortfall": {float(es_level): stats.expected_shortfall(pnl, es_level)},
        "mean_pnl": float(pnl.mean()),
        "std_pnl": float(pnl.std(ddof=1)),
        "n_paths": int(n_paths),
        "horizon_days": int(horizon_days),
        "seed": int(seed),
        "warnings": warnings,
    }
    if equity:
        result["var_fraction"] = {lv: v / equity for lv, v in var.items()}
    return result
