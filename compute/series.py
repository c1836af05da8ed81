"""Per-bar series behind the pictures: drawdown (underwater), monthly returns, rolling Sharpe
and volatility, return histograms. Plain arrays and pandas objects in, the same out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from compute.stats import DAILY


def drawdown(equity) -> np.ndarray:
    """Equity over its running peak, minus 1 (0 at a new high, -0.25 = 25 % under water)."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return eq.copy()
    peak = np.maximum.accumulate(eq)
    return eq / peak - 1.0


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded returns per calendar month: rows are years, columns months 1..12 (NaN where
    the series has no bars)."""
    r = pd.Series(returns, dtype=np.float64).dropna()
    if r.empty:
        return pd.DataFrame(columns=range(1, 13), dtype=np.float64)
    index = pd.DatetimeIndex(r.index)
    if index.tz is not None:
        index = index.tz_convert("America/New_York").tz_localize(None)
    r.index = index
    grouped = (1.0 + r).groupby([index.year, index.month]).prod() - 1.0
    table = grouped.unstack()
    table = table.reindex(columns=range(1, 13))
    table.index.name, table.columns.name = "year", "month"
    return table


def rolling_sharpe(returns, window: int, periods_per_year: float = DAILY) -> pd.Series:
    """Annualised Sharpe over a trailing window of bars (mean / std ddof=1 * sqrt(ppy))."""
    r = pd.Series(returns, dtype=np.float64)
    mean = r.rolling(window).mean()
    std = r.rolling(window).std(ddof=1)
    out = mean / std.where(std > 0) * np.sqrt(periods_per_year)
    return out.rename("rolling_sharpe")


def rolling_volatility(returns, window: int, periods_per_year: float = DAILY) -> pd.Series:
    """Annualised volatility over a trailing window of bars (std ddof=1 * sqrt(ppy))."""
    r = pd.Series(returns, dtype=np.float64)
    return (r.rolling(window).std(ddof=1) * np.sqrt(periods_per_year)).rename("rolling_volatility")
