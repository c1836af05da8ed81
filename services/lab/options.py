"""0DTE options packs (zerosigma) in the Lab: glue between the matrix, the equity
walk-forward and ``compute.backtest.run_options_backtest``, which holds every trading rule
(contract choice, sizing, costs, pricing along the path, settlement; see its docstring).

What the Lab adds:

- Decisions: the walk-forward's ``oos_scores``, ``segments`` (fold per bar) and ``cutoffs``
  (fitted on each fold's training scores only) go to the options engine unchanged, with the
  risk profile's costs and the request's allowed hours (``BacktestConfig``).
- Volatility per bar: the implied vol known at the bar, ``f_VOL<w> - f_RVIV<w>`` of the matrix
  (the chain's ATM implied vol sampled at the previous close), else the realised vol
  (``compute.greeks.select_volatility``). Strikes on the underlying's listed grid
  (``compute.marketdata.options.strike_step``).
- Figures on the options returns: the engine's metrics, per-fold Sharpe / Sortino / return /
  drawdown / trades, PSR and deflated Sharpe (``compute.stats``), so the gate judges the
  options P&L; ``underlying_sharpe`` and ``vol_source`` are reported beside them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd

from compute.backtest import run_options_backtest
from compute.greeks import select_volatility
from compute.marketdata.options import strike_step


def matrix_volatility(frame: pd.DataFrame, periods_per_year: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar (sigma, source) from the matrix: implied where the RVIV feature gives it."""
    close = frame["close"].to_numpy(np.float64)
    rviv = [c for c in frame.columns if c.startswith("f_RVIV")]
    window = int(rviv[0][len("f_RVIV"):]) if rviv else 20
    vol_col = f"f_VOL{window}"
    if vol_col in frame.columns:
        realised = frame[vol_col].to_numpy(np.float64)
    else:
        logret = np.diff(np.log(close), prepend=np.nan)
        realised = (pd.Series(logret).rolling(window).std(ddof=1) * math.sqrt(periods_per_year)).to_numpy()
    implied = realised - frame[rviv[0]].to_numpy(np.float64) if rviv else np.full(len(frame), np.nan)
    return select_volatility(implied, realised)


#: What ``compute.walkforward.summarise_folds`` computes per fold (recomputed on options P&L).
FOLD_FIGURES = ("sharpe", "sortino", "cum_return", "max_drawdown", "trades")


def options_walk_forward(frame: pd.DataFrame, fit_predict, wf, inputs):
    """The equity walk-forward's decisions executed with 0DTE options; a
    ``compute.walkforward.WalkForwardResult`` whose backtest, metrics and folds are the options'."""
    from compute.walkforward import run_walk_forward, summarise_folds

    under = run_walk_forward(frame, fit_predict, wf)
    ppy = wf.backtest.periods_per_year
    oos = frame.iloc[inputs.first:]
    sigma, source = matrix_volatility(frame, ppy)
    ticker = str(oos["ticker"].iloc[0]) if len(oos) else "SPY"
    index = pd.DatetimeIndex(oos.index)
    if index.tz is None:  # matrix timestamps are UTC
        index = index.tz_localize("UTC")
    bt = run_options_backtest(
        oos["open"].to_numpy(np.float64), oos["close"].to_numpy(np.float64), under.oos_scores.to_numpy(),
        wf.backtest, index=index, hours=oos["hour"].to_numpy(np.int64),
        implied_vol=sigma[inputs.first:], strike_step=partial(strike_step, ticker),
        segments=under.segments, segment_cutoffs=under.cutoffs)

    fold_rows = [{k: v for k, v in row.items() if k not in FOLD_FIGURES} for row in under.folds]
    metrics, folds = summarise_folds(bt, index, inputs.first, fold_rows, wf)
    metrics["underlying_sharpe"] = under.metrics.get("sharpe")
    metrics["vol_source"] = "implied" if np.any(source[inputs.first:] == "implied") else "realised"
    return replace(under, metrics=metrics, folds=folds, backtest=bt)
