"""Risk overview: portfolio returns, beta vs SPY, volatility, correlation, drawdown, VaR/ES.

Portfolio returns are built from *today's* holdings applied to history (the usual
"current-portfolio" historical simulation): r_p,t = sum_i exposure_i x r_i,t / equity, with
exposure_i the signed delta-adjusted dollar exposure per underlying. A day on which an
underlying has no return contributes 0 for it. Alternatively :func:`returns_from_pnl` turns a
recorded P&L series into returns.

Views: ``portfolio`` (all underlyings), ``longs`` (positive net exposure), ``shorts`` (negative);
every view is measured against the same equity, so dollar figures of the views are comparable.
Periods: ``daily``, ``weekly``, ``monthly``, ``annual``: daily returns compounded into calendar
weeks (ending Friday), months or years; annualisation uses 252, 52, 12 or 1 periods per year.
Volatility, drawdown and historical VaR use :mod:`compute.stats` (empyrical's definitions).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from compute import stats
from compute.var import ES_LEVEL, VAR_LEVELS, var_table
from compute.threads import threads_for
from compute.var_nb import RISK_STAT_NAMES, risk_stats_nb

VIEWS = ("portfolio", "longs", "shorts")
PERIODS_PER_YEAR = {"daily": 252, "weekly": 52, "monthly": 12, "annual": 1}
_RESAMPLE_RULE = {"weekly": "W-FRI", "monthly": "ME", "annual": "YE"}
CORRELATION_CLUSTER_THRESHOLD = 0.7


def exposure_by_underlying(delta_adjusted_exposure: pd.Series, underlying: pd.Series) -> pd.Series:
    """Net signed delta-adjusted dollar exposure per underlying (positions summed).

    Both inputs are indexed by position id; an option counts through its delta exposure.
    """
    return delta_adjusted_exposure.astype(float).groupby(underlying.reindex(delta_adjusted_exposure.index)).sum()


def select_view(exposure: pd.Series, view: str) -> pd.Series:
    """Exposures of the view: all (``portfolio``), positive (``longs``) or negative (``shorts``)."""
    if view not in VIEWS:
        raise ValueError(f"view: expected one of {VIEWS}, got {view!r}")
    if view == "longs":
        return exposure[exposure > 0]
    if view == "shorts":
        return exposure[exposure < 0]
    return exposure


def portfolio_returns(exposure: pd.Series, underlying_returns: pd.DataFrame, equity: float) -> pd.Series:
    """Daily portfolio returns sum_i exposure_i r_i,t / equity of fixed dollar exposures.

    ``exposure``: ticker -> signed $; ``underlying_returns``: dates x tickers (simple returns).
    Missing returns count as 0 for that name on that day; dates where no name has a return
    are dropped. A ticker absent from ``underlying_returns`` raises ValueError.
    """
    if not math.isfinite(equity) or equity <= 0:
        raise ValueError("equity must be a positive finite number")
    missing = [t for t in exposure.index if t not in underlying_returns.columns]
    if missing:
        raise ValueError(f"underlying_returns: no history for {missing}")
    panel = underlying_returns[list(exposure.index)]
    observed = panel.notna().any(axis=1)
    weights = exposure.to_numpy(np.float64) / float(equity)
    values = panel.fillna(0.0).to_numpy(np.float64) @ weights
    return pd.Series(values, index=panel.index)[observed]


def returns_from_pnl(pnl: pd.Series, equity: pd.Series | float) -> pd.Series:
    """Returns from a daily P&L series: pnl_t / equity_{t-1}.

    ``equity`` is either the end-of-day equity series (lagged one day here) or a constant.
    """
    if isinstance(equity, pd.Series):
        base = equity.shift(1).reindex(pnl.index)
    else:
        base = float(equity)
    return (pnl / base).dropna()


def resample_returns(returns: pd.Series | pd.DataFrame, period: str) -> pd.Series | pd.DataFrame:
    """Compound daily returns into ``period`` returns: prod(1 + r) - 1 per calendar bucket.

    Needs a DatetimeIndex for anything but ``daily``. Buckets with no observation are dropped
    (NaN), not reported as a 0 % return.
    """
    if period not in PERIODS_PER_YEAR:
        raise ValueError(f"period: expected one of {tuple(PERIODS_PER_YEAR)}, got {period!r}")
    if period == "daily":
        return returns
    return (1.0 + returns).resample(_RESAMPLE_RULE[period]).prod(min_count=1) - 1.0


def beta(returns: pd.Series, benchmark_returns: pd.Series) -> float:
    """Beta vs a benchmark: cov(r, b) / var(b), sample moments over dates where both exist."""
    if returns.index.equals(benchmark_returns.index):  # the common case: aligned already
        r, b = returns.to_numpy(np.float64), benchmark_returns.to_numpy(np.float64)
        both = ~(np.isnan(r) | np.isnan(b))
        r, b = r[both], b[both]
    else:
        joined = pd.concat([returns, benchmark_returns], axis=1, join="inner").dropna()
        r = joined.iloc[:, 0].to_numpy(np.float64)
        b = joined.iloc[:, 1].to_numpy(np.float64)
    if len(b) < 2:
        return float("nan")
    var_b = b.var(ddof=1)
    if var_b == 0:
        return float("nan")
    return float(((r - r.mean()) * (b - b.mean())).sum() / (len(b) - 1) / var_b)


def euler_risk_contributions(exposures, cov) -> np.ndarray:
    """Each position's share of portfolio variance (Euler allocation): ``w_i (S w)_i / w'S w``.

    ``exposures``: (n,) delta-adjusted exposures (or weights; the scale cancels); ``cov``:
    (n, n) covariance of the positions' returns. The shares sum to 1; a hedge has a negative
    share. All NaN when the portfolio's variance is not positive (an empty or fully hedged book).
    """
    w = np.asarray(exposures, dtype=np.float64)
    sigma = np.asarray(cov, dtype=np.float64)
    marginal = sigma @ w
    variance = float(w @ marginal)
    if not (variance > 0.0 and math.isfinite(variance)):
        return np.full(w.shape, np.nan)
    return w * marginal / variance


def correlation_matrix(returns: pd.DataFrame, min_periods: int = 20) -> pd.DataFrame:
    """Pearson correlations over pairwise-complete observations (NaN below ``min_periods``)."""
    return returns.corr(min_periods=min_periods)


def average_pairwise_correlation(corr: pd.DataFrame) -> float:
    """Mean of the off-diagonal correlations (each pair once), NaN pairs ignored."""
    values = corr.to_numpy(np.float64)
    upper = values[np.triu_indices_from(values, k=1)]
    upper = upper[~np.isnan(upper)]
    return float(upper.mean()) if upper.size else float("nan")


def correlation_clusters(corr: pd.DataFrame, threshold: float = CORRELATION_CLUSTER_THRESHOLD) -> list[list[str]]:
    """Groups of names linked by |rho| >= threshold (connected components, size >= 2).

    Linkage is transitive: A-B and B-C at 0.8 put A, B, C in one cluster even if A-C is 0.5.
    Clusters are sorted by size (largest first), members in the matrix's order.
    """
    names = list(corr.columns)
    linked = np.abs(corr.to_numpy(np.float64)) >= threshold
    np.fill_diagonal(linked, False)
    parent = list(range(len(names)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(linked, k=1))):
        ri, rj = root(int(i)), root(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[str]] = {}
    for i, name in enumerate(names):
        groups.setdefault(root(i), []).append(name)
    clusters = [g for g in groups.values() if len(g) >= 2]
    return sorted(clusters, key=len, reverse=True)


def risk_stats_frame(
    returns: pd.DataFrame | np.ndarray,
    periods_per_year: float = PERIODS_PER_YEAR["daily"],
    var_level: float = 0.95,
    es_level: float = ES_LEVEL,
) -> pd.DataFrame:
    """Risk statistics of many return series at once (one parallel numba pass).

    ``returns``: (n_obs, n_series), one column per series. Returns a DataFrame indexed by
    series with columns annual_volatility (std ddof=1 x sqrt(ppy)), sharpe (annualised, zero
    risk-free), max_drawdown (negative fraction), var (historical, ``var_level``) and
    expected_shortfall (historical, ``es_level``): empyrical's definitions, NaNs skipped.
    """
    frame = returns if isinstance(returns, pd.DataFrame) else pd.DataFrame(np.asarray(returns, dtype=np.float64))
    by_series = np.ascontiguousarray(frame.to_numpy(np.float64).T)
    with threads_for(by_series.size):
        out = risk_stats_nb(by_series, float(periods_per_year), float(var_level), float(es_level))
    return pd.DataFrame(out.T, index=frame.columns, columns=list(RISK_STAT_NAMES))


def _none_if_nan(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def risk_overview(
    exposure: pd.Series,
    underlying_returns: pd.DataFrame,
    benchmark_returns: pd.Series,
    equity: float,
    view: str = "portfolio",
    period: str = "daily",
    cluster_threshold: float = CORRELATION_CLUSTER_THRESHOLD,
) -> dict:
    """The risk overview of a portfolio view (``GET /risk/overview``), JSON-ready.

    ``exposure``: ticker -> signed delta-adjusted $ (see :func:`exposure_by_underlying`);
    ``underlying_returns``: daily simple returns, dates x tickers; ``benchmark_returns``: SPY's.
    Returns ``view``, ``period``, ``observations``, ``beta`` (vs SPY), ``annualized_volatility``
    (fraction), ``position_correlation`` (average pairwise), ``correlation_clusters``,
    ``max_drawdown`` (negative fraction), ``var_1d`` ($ at 95 %, one period), and ``var`` (the
    :func:`compute.var.var_table` of the period returns; 1- and 10-period horizons). Figures
    that the data cannot support (too few observations, empty view) are None.
    """
    if view not in VIEWS:
        raise ValueError(f"view: expected one of {VIEWS}, got {view!r}")
    if period not in PERIODS_PER_YEAR:
        raise ValueError(f"period: expected one of {tuple(PERIODS_PER_YEAR)}, got {period!r}")
    ppy = PERIODS_PER_YEAR[period]
    selected = select_view(exposure[exposure != 0], view)
    daily = portfolio_returns(selected, underlying_returns, equity)
    port = resample_returns(daily, period).dropna()
    bench = resample_returns(benchmark_returns, period).dropna()
    names = resample_returns(underlying_returns[list(selected.index)], period)
    corr = correlation_matrix(names, min_periods=min(20, max(len(names) // 2, 3)))
    table = var_table(port.to_numpy(), equity, VAR_LEVELS, (1, 10), ES_LEVEL)
    var_95 = stats.var_historical(port.to_numpy(), 0.95) if len(port) else float("nan")
    return {
        "view": view,
        "period": period,
        "periods_per_year": ppy,
        "observations": int(len(port)),
        "positions": int(len(selected)),
        "beta": _none_if_nan(beta(port, bench)) if len(port) else None,
        "annualized_volatility": _none_if_nan(stats.annual_volatility(port.to_numpy(), ppy)),
        "position_correlation": _none_if_nan(average_pairwise_correlation(corr)),
        "correlation_clusters": correlation_clusters(corr, cluster_threshold),
        "max_drawdown": _none_if_nan(stats.max_drawdown(port.to_numpy())) if len(port) else None,
        "var_1d": {"value": _none_if_nan(var_95 * equity), "return": _none_if_nan(var_95), "confidence": 0.95},
        "var": table,
    }
