"""Walk-forward evaluation: expanding-window folds that train only on the past, with purge
and embargo, out-of-sample scores stitched across folds and backtested once.

Fold k tests on bars [s_k, e_k) and trains on [0, s_k - label_horizon - embargo):

- *purge*: a training row t carries a label built from bars t+1 .. t+label_horizon, so rows
  with t + label_horizon >= s_k (labels that see the test fold) are dropped;
- *embargo*: a further ``embargo`` bars before the test fold are dropped, so features that
  are serially correlated with the test fold's first bars do not leak into training. (With
  training strictly in the past, López de Prado's embargo "after the test fold" would only
  remove rows no fold ever trains on; this gap is where it bites here.)

Cut-offs (``top_pct`` quantiles) are fitted on each fold's *training* scores only, so every
decision in the stitched out-of-sample run uses information available at that time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import numpy as np
import pandas as pd

from compute import stats
from compute.backtest import BacktestConfig, BacktestResult, bar_hours, run_backtest, signal_cutoffs

FitPredict = Callable[[pd.DataFrame, pd.DataFrame], tuple]


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: ``train`` and ``test`` are integer row positions."""

    index: int
    train: np.ndarray
    test: np.ndarray

    @property
    def test_start(self) -> int:
        return int(self.test[0])

    @property
    def test_end(self) -> int:
        return int(self.test[-1]) + 1


def walk_forward_splits(
    n: int,
    n_splits: Optional[int] = 5,
    label_horizon: int = 1,
    embargo: int = 0,
    *,
    test_size: Optional[int] = None,
    min_train: Optional[int] = None,
) -> list[Fold]:
    """Expanding-window folds over ``n`` time-ordered rows.

    Default layout: ``n_splits`` equal test folds at the end, test_size = n // (n_splits + 1),
    so the first fold trains on about one fold's worth of rows. With ``test_size`` given, the
    boundaries no longer depend on ``n``: folds of ``test_size`` rows start at ``min_train``
    (default ``test_size``) and continue to the end (the last may be shorter; ``n_splits``,
    if given, caps their number). Appending rows then only adds or extends the last fold.
    Training rows are [0, test_start - label_horizon - embargo); folds whose training set
    would be empty are an error.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    if label_horizon < 0 or embargo < 0:
        raise ValueError("label_horizon and embargo must be >= 0")
    if test_size is None:
        if not n_splits or n_splits < 1:
            raise ValueError("n_splits must be >= 1")
        test_size = n // (n_splits + 1)
        if test_size < 1:
            raise ValueError(f"{n} rows are too few for {n_splits} folds")
        first = n - n_splits * test_size
        starts = [first + k * test_size for k in range(n_splits)]
    else:
        if test_size < 1:
            raise ValueError("test_size must be >= 1")
        first = test_size if min_train is None else int(min_train)
        starts = list(range(first, n, test_size))
        if n_splits:
            starts = starts[:n_splits]
        if not starts:
            raise ValueError(f"{n} rows leave no test fold after {first} training rows")
    folds = []
    for k, start in enumerate(starts):
        stop = min(start + test_size, n)
        train_end = start - label_horizon - embargo
        if train_end <= 0:
            raise ValueError(f"fold {k} has no training rows (test starts at {start}; "
                             f"purge {label_horizon} + embargo {embargo})")
        folds.append(Fold(k, np.arange(train_end), np.arange(start, stop)))
    return folds


@dataclass(frozen=True)
class WalkForwardConfig:
    """Backtest configuration plus the split settings (spec body ``splits``)."""

    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    n_splits: int = 5
    label_horizon: int = 1
    embargo: int = 0
    test_size: Optional[int] = None
    min_train: Optional[int] = None
    n_trials: int = 1
    sharpe_variance_across_trials: float = 0.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "WalkForwardConfig":
        """Flat dict: backtest keys (kind, value, allowed_hours, fees_bps, ...) plus
        ``splits``/``n_splits``, ``label_horizon``, ``embargo``, ``test_size``, ..."""
        own = {k: d[k] for k in ("n_splits", "label_horizon", "embargo", "test_size", "min_train",
                                 "n_trials", "sharpe_variance_across_trials") if k in d}
        if "splits" in d and "n_splits" not in own:
            own["n_splits"] = int(d["splits"])
        return cls(backtest=BacktestConfig.from_dict(d), **own)


@dataclass
class WalkForwardResult:
    """Stitched out-of-sample backtest and per-fold figures.

    ``metrics``: the backtest metrics over all test folds plus ``fold_sharpe_mean``,
    ``fold_sharpe_std`` (ddof=1), ``psr`` (probability the Sharpe is above 0) and
    ``deflated_sharpe`` (for ``n_trials`` configurations tried). ``folds``: one dict per fold
    (bounds, cut-offs, sharpe, sortino, cum_return, max_drawdown, trades). ``oos_scores``,
    ``segments`` (fold per out-of-sample bar) and ``cutoffs`` (per fold) can be fed to
    ``compute.sweep.run_sweep`` or ``compute.backtest.run_options_backtest`` unchanged.
    """

    metrics: dict
    folds: list
    backtest: BacktestResult
    oos_scores: pd.Series
    cutoffs: np.ndarray
    config: WalkForwardConfig
    segments: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def _as_scores(x, n: int, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"fit_predict returned {arr.shape[0]} {what} scores for {n} rows")
    return arr


def summarise_folds(result, index: pd.DatetimeIndex, first: int, fold_rows: list[dict],
                    cfg: "WalkForwardConfig") -> tuple[dict, list[dict]]:
    """Per-fold figures and the honesty statistics of a stitched out-of-sample backtest.

    ``result`` is any backtest over the bars ``first:`` (equity or options engine);
    ``fold_rows`` carry each fold's absolute ``test_start``/``test_end``. Adds to each row its
    Sharpe, Sortino, cumulative return, max drawdown and closed trades (fills with realised
    P&L), and to the metrics ``fold_sharpe_mean``, ``fold_sharpe_std`` (ddof=1), ``n_folds``,
    ``psr`` (P[Sharpe > 0]) and ``deflated_sharpe`` (for ``cfg.n_trials`` configurations).
    """
    ppy = cfg.backtest.periods_per_year
    returns = result.returns.to_numpy()
    fills = result.fills
    fill_pos = index.get_indexer(fills["timestamp"]) if len(fills) else np.array([], int)
    closing = fills["pnl"].to_numpy() != 0.0 if len(fills) else np.array([], bool)
    rows = []
    for row in fold_rows:
        lo, hi = row["test_start"] - first, row["test_end"] - first
        r = returns[lo:hi]
        rows.append({**row, "sharpe": stats.sharpe(r, ppy), "sortino": stats.sortino(r, ppy),
                     "cum_return": stats.cum_return(r), "max_drawdown": stats.max_drawdown(r),
                     "trades": int(np.count_nonzero((fill_pos >= lo) & (fill_pos < hi) & closing))})
    sharpes = np.array([f["sharpe"] for f in rows], dtype=np.float64)
    finite = sharpes[np.isfinite(sharpes)]
    metrics = dict(result.metrics)
    metrics["fold_sharpe_mean"] = float(finite.mean()) if finite.size else float("nan")
    metrics["fold_sharpe_std"] = float(finite.std(ddof=1)) if finite.size >= 2 else float("nan")
    metrics["n_folds"] = len(rows)
    metrics["psr"] = float(stats.probabilistic_sharpe_ratio(
        metrics["sharpe"], 0.0, metrics["n_bars"], metrics["skew"], metrics["kurtosis"], ppy))
    metrics["deflated_sharpe"] = float(stats.deflated_sharpe_ratio(
        metrics["sharpe"], cfg.n_trials, metrics["n_bars"], metrics["skew"], metrics["kurtosis"],
        cfg.sharpe_variance_across_trials, ppy))
    return metrics, rows


def run_walk_forward(
    matrix_df: pd.DataFrame,
    fit_predict: FitPredict,
    config: WalkForwardConfig | Mapping[str, Any],
    *,
    open_column: str = "open",
    close_column: str = "close",
    hour_column: str = "hour",
) -> WalkForwardResult:
    """Walk-forward backtest of a model on a feature matrix.

    ``matrix_df``: time-ordered rows with ``open`` and ``close`` prices (and any features and
    labels ``fit_predict`` needs); bar hours come from an ``hour`` column if present, else from
    a DatetimeIndex. ``fit_predict(train_df, test_df) -> (train_scores, test_scores)`` fits on
    the training rows only and returns scores in [0, 1] for both. The training scores fit the
    fold's cut-offs; the test scores of all folds are stitched and backtested in one run
    (positions carry across fold boundaries, cut-offs switch at them).
    """
    cfg = config if isinstance(config, WalkForwardConfig) else WalkForwardConfig.from_dict(config)
    bt = cfg.backtest
    n = len(matrix_df)
    folds = walk_forward_splits(n, cfg.n_splits, cfg.label_horizon, cfg.embargo,
                                test_size=cfg.test_size, min_train=cfg.min_train)
    first = folds[0].test_start
    scores = np.full(n - first, np.nan)
    segments = np.empty(n - first, dtype=np.int64)
    cutoffs = np.empty((len(folds), 4))
    for fold in folds:
        train_df = matrix_df.iloc[fold.train]
        test_df = matrix_df.iloc[fold.test]
        train_scores, test_scores = fit_predict(train_df, test_df)
        train_scores = _as_scores(train_scores, len(train_df), "training")
        test_scores = _as_scores(test_scores, len(test_df), "test")
        cutoffs[fold.index] = signal_cutoffs(bt, train_scores)
        scores[fold.test_start - first:fold.test_end - first] = test_scores
        segments[fold.test_start - first:fold.test_end - first] = fold.index

    oos = matrix_df.iloc[first:]
    index = oos.index
    if hour_column in oos.columns:
        hours = oos[hour_column].to_numpy(dtype=np.int64)
    else:
        hours = bar_hours(index if isinstance(index, pd.DatetimeIndex) else None, len(oos))
    result = run_backtest(
        oos[open_column].to_numpy(np.float64), oos[close_column].to_numpy(np.float64), scores, bt,
        index=index, hours=hours, segments=segments, segment_cutoffs=cutoffs,
    )

    fold_rows = [{
        "fold": fold.index,
        "train_start": 0,
        "train_end": int(fold.train[-1]) + 1,
        "test_start": fold.test_start,
        "test_end": fold.test_end,
        "test_start_label": str(index[fold.test_start - first]),
        "test_end_label": str(index[fold.test_end - first - 1]),
        "cutoffs": cutoffs[fold.index].tolist(),
    } for fold in folds]
    metrics, fold_rows = summarise_folds(result, index, first, fold_rows, cfg)
    return WalkForwardResult(
        metrics=metrics,
        folds=fold_rows,
        backtest=result,
        oos_scores=pd.Series(scores, index=index, name="score"),
        cutoffs=cutoffs,
        config=cfg,
        segments=segments,
    )
