"""Parameter sweeps: a grid of backtest configurations evaluated in one numba call.

``make_grid`` builds the cartesian grid of a sweep request (thresholds, exit thresholds,
top_pct, allowed-hours sets, fees, slippage, long-only); ``run_sweep`` evaluates a grid (or
any slice of it, e.g. one Ray Tune chunk) over shared bars and scores and returns one metric
vector per configuration, equal to ``compute.backtest.run_backtest`` run on each configuration
alone (to a relative 1e-12: fee levels of one signal share a pass, ``compute.sweep_nb``).
``SweepResult.deflated_sharpe`` deflates every configuration's Sharpe for the number of
configurations tried.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numba
import numpy as np
import pandas as pd

from compute import stats
from compute.backtest import (
    BacktestConfig,
    _as_fraction,
    bar_hours,
    hours_mask,
    metrics_dict,
)
from compute.backtest_nb import METRIC_NAMES
from compute.sweep_nb import evaluate_configs

KIND_THRESHOLDS = 0
KIND_TOP_PCT = 1
_KIND_NAMES = ("thresholds", "top_pct")

HourSet = Optional[tuple[int, ...]]


@dataclass
class SweepGrid:
    """Configurations as parallel arrays (one entry per configuration).

    ``kind`` 0 = thresholds, 1 = top_pct; ``value`` the entry threshold or top fraction;
    ``exit_value`` NaN when symmetric; ``top_pct`` NaN when a thresholds config has no extra
    top_pct filter; ``hours_id`` indexes ``hour_sets`` (None = every hour). Shared settings
    (periods_per_year, initial_capital, es_level) come from ``base``.
    """

    kind: np.ndarray
    value: np.ndarray
    exit_value: np.ndarray
    top_pct: np.ndarray
    long_only: np.ndarray
    hours_id: np.ndarray
    fees_bps: np.ndarray
    slippage_bps: np.ndarray
    hour_sets: list = field(default_factory=lambda: [None])
    base: BacktestConfig = field(default_factory=BacktestConfig)

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def slice(self, start: int, stop: int) -> "SweepGrid":
        """Configurations [start, stop), e.g. one chunk of a distributed sweep."""
        sl = slice(start, stop)
        return SweepGrid(self.kind[sl], self.value[sl], self.exit_value[sl], self.top_pct[sl],
                         self.long_only[sl], self.hours_id[sl], self.fees_bps[sl],
                         self.slippage_bps[sl], list(self.hour_sets), self.base)

    def config(self, i: int) -> BacktestConfig:
        """The ``BacktestConfig`` of configuration ``i``."""
        d = self.base.to_dict()
        d.update(
            kind=_KIND_NAMES[int(self.kind[i])],
            value=float(self.value[i]),
            exit_value=None if np.isnan(self.exit_value[i]) else float(self.exit_value[i]),
            top_pct=None if np.isnan(self.top_pct[i]) else float(self.top_pct[i]),
            long_only=bool(self.long_only[i]),
            allowed_hours=self.hour_sets[int(self.hours_id[i])],
            fees_bps=float(self.fees_bps[i]),
            slippage_bps=float(self.slippage_bps[i]),
        )
        return BacktestConfig.from_dict(d)

    def to_frame(self) -> pd.DataFrame:
        """One row per configuration with human-readable columns."""
        return pd.DataFrame({
            "kind": np.asarray(_KIND_NAMES, dtype=object)[self.kind],
            "value": self.value,
            "exit_value": self.exit_value,
            "top_pct": self.top_pct,
            "long_only": self.long_only,
            "allowed_hours": [None if h is None else list(h)
                              for h in (self.hour_sets[int(i)] for i in self.hours_id)],
            "fees_bps": self.fees_bps,
            "slippage_bps": self.slippage_bps,
        })

    @classmethod
    def from_configs(cls, configs: Sequence[BacktestConfig]) -> "SweepGrid":
        """Grid of explicit configurations (they must share the ``base`` settings)."""
        if not configs:
            raise ValueError("no configurations")
        base = configs[0]
        hour_sets: list = []
        hours_id = []
        for c in configs:
            if (c.periods_per_year, c.initial_capital, c.es_level) != (
                    base.periods_per_year, base.initial_capital, base.es_level):
                raise ValueError("configurations of one sweep must share periods_per_year, "
                                 "initial_capital and es_level")
            if c.allowed_hours not in hour_sets:
                hour_sets.append(c.allowed_hours)
            hours_id.append(hour_sets.index(c.allowed_hours))
        nan = np.nan
        return cls(
            kind=np.array([_KIND_NAMES.index(c.kind) for c in configs], dtype=np.int64),
            value=np.array([c.value for c in configs], dtype=np.float64),
            exit_value=np.array([nan if c.exit_value is None else c.exit_value for c in configs]),
            top_pct=np.array([nan if c.top_pct is None else c.top_pct for c in configs]),
            long_only=np.array([c.long_only for c in configs], dtype=np.bool_),
            hours_id=np.array(hours_id, dtype=np.int64),
            fees_bps=np.array([c.fees_bps for c in configs], dtype=np.float64),
            slippage_bps=np.array([c.slippage_bps for c in configs], dtype=np.float64),
            hour_sets=hour_sets,
            base=base,
        )


def make_grid(
    thresholds: Sequence[float] = (),
    top_pct: Sequence[float] = (),
    exit_thresholds: Optional[Sequence[float]] = None,
    allowed_hours: Sequence[HourSet] = (None,),
    fees_bps: Optional[Sequence[float]] = None,
    slippage_bps: Optional[Sequence[float]] = None,
    long_only: Sequence[bool] = (False,),
    base: Optional[BacktestConfig] = None,
) -> SweepGrid:
    """Cartesian grid of a sweep request.

    - thresholds only: ``thresholds`` x ``exit_thresholds`` (None = symmetric; exits above
      the entry threshold are skipped) configurations of kind thresholds;
    - top_pct only: kind top_pct (percent values like 10 are read as 10 %);
    - both: thresholds configurations with an extra top_pct filter, thresholds x top_pct
      (so the spec's 4 thresholds x 3 hour sets x 3 top_pct give 36 configurations);
    - times ``allowed_hours`` sets (None = all hours), ``fees_bps``, ``slippage_bps`` and
      ``long_only`` (fees and slippage default to ``base``'s).
    """
    base = base or BacktestConfig()
    fees = list(fees_bps) if fees_bps is not None else [base.fees_bps]
    slips = list(slippage_bps) if slippage_bps is not None else [base.slippage_bps]
    hour_sets: list = []
    for h in allowed_hours:
        key = None if h is None else tuple(sorted({int(x) for x in h}))
        if key not in hour_sets:
            hour_sets.append(key)
    hour_ids = [hour_sets.index(None if h is None else tuple(sorted({int(x) for x in h})))
                for h in allowed_hours]
    hour_ids = list(dict.fromkeys(hour_ids))
    exits = [np.nan] if exit_thresholds is None else [float(x) for x in exit_thresholds]
    pcts = [_as_fraction(p) for p in top_pct]
    thresholds = [float(v) for v in thresholds]

    signals = []  # (kind, value, exit_value, top_pct)
    if thresholds:
        for v in thresholds:
            for x in exits:
                if not np.isnan(x) and x > v:
                    continue
                for p in (pcts or [np.nan]):
                    signals.append((KIND_THRESHOLDS, float(v), x, p))
    elif pcts:
        signals = [(KIND_TOP_PCT, p, np.nan, np.nan) for p in pcts]
    else:
        raise ValueError("a sweep needs thresholds and/or top_pct values")

    rows = list(itertools.product(signals, hour_ids, fees, slips, long_only))
    sig = np.array([r[0] for r in rows], dtype=np.float64).reshape(len(rows), 4)
    grid = SweepGrid(
        kind=sig[:, 0].astype(np.int64),
        value=sig[:, 1].copy(),
        exit_value=sig[:, 2].copy(),
        top_pct=sig[:, 3].copy(),
        long_only=np.array([r[4] for r in rows], dtype=np.bool_),
        hours_id=np.array([r[1] for r in rows], dtype=np.int64),
        fees_bps=np.array([r[2] for r in rows], dtype=np.float64),
        slippage_bps=np.array([r[3] for r in rows], dtype=np.float64),
        hour_sets=hour_sets,
        base=base,
    )
    _validate(grid)
    return grid


def _validate(grid: SweepGrid) -> None:
    thr = grid.kind == KIND_THRESHOLDS
    if np.any((grid.value[thr] < 0) | (grid.value[thr] > 1)):
        raise ValueError("thresholds must be in [0, 1]")
    pct = np.where(thr, grid.top_pct, grid.value)
    bad = ~np.isnan(pct) & ((pct <= 0) | (pct > 0.5))
    if np.any(bad):
        raise ValueError("top_pct must be in (0, 0.5]")
    if np.any((grid.fees_bps < 0) | (grid.slippage_bps < 0)):
        raise ValueError("fees and slippage must be >= 0")


def grid_cutoffs(grid: SweepGrid, train_scores_by_segment: Optional[Sequence[np.ndarray]],
                 n_segments: int = 1) -> np.ndarray:
    """Cut-off tables (n_configs, n_segments, 4), the vectorised ``signal_cutoffs``.

    Quantiles of each segment's training scores are computed once per distinct fraction.
    """
    n_cfg = len(grid)
    thr = grid.kind == KIND_THRESHOLDS
    v = grid.value
    x = np.where(np.isnan(grid.exit_value), v, grid.exit_value)
    cuts = np.empty((n_cfg, n_segments, 4))
    cuts[:, :, 0] = v[:, None]
    cuts[:, :, 1] = (1.0 - v)[:, None]
    cuts[:, :, 2] = x[:, None]
    cuts[:, :, 3] = (1.0 - x)[:, None]

    fractions = np.concatenate([v[~thr], x[~thr], grid.top_pct[thr]])
    fractions = np.unique(fractions[~np.isnan(fractions)])
    if fractions.size:
        if train_scores_by_segment is None or len(train_scores_by_segment) != n_segments:
            raise ValueError("top_pct configurations need training scores for every segment")
        lo = np.empty((n_segments, fractions.size))
        hi = np.empty((n_segments, fractions.size))
        for s, scores in enumerate(train_scores_by_segment):
            arr = np.asarray(scores, dtype=np.float64)
            arr = arr[~np.isnan(arr)]
            if arr.size == 0:
                raise ValueError(f"segment {s} has no finite training scores")
            for j, p in enumerate(fractions):
                # one quantile call per fraction pair, exactly as signal_cutoffs does it
                lo[s, j], hi[s, j] = np.quantile(arr, [p, 1.0 - p])

        def lookup(p, table):
            return table[:, np.searchsorted(fractions, p)].T  # (len(p), n_segments)

        idx = np.flatnonzero(~thr)
        if idx.size:
            cuts[idx, :, 0] = lookup(v[idx], hi)
            cuts[idx, :, 1] = lookup(v[idx], lo)
            cuts[idx, :, 2] = lookup(x[idx], hi)
            cuts[idx, :, 3] = lookup(x[idx], lo)
        idx = np.flatnonzero(thr & ~np.isnan(grid.top_pct))
        if idx.size:
            cuts[idx, :, 0] = np.maximum(v[idx, None], lookup(grid.top_pct[idx], hi))
            cuts[idx, :, 1] = np.minimum((1.0 - v)[idx, None], lookup(grid.top_pct[idx], lo))
    cuts[grid.long_only, :, 1] = -np.inf
    cuts[grid.long_only, :, 3] = -np.inf
    return cuts


@dataclass
class SweepResult:
    """Metrics per configuration: ``metrics[name]`` is an array aligned with ``grid``."""

    grid: SweepGrid
    metrics: dict

    def __len__(self) -> int:
        return len(self.grid)

    def metrics_of(self, i: int) -> dict:
        """Metric dict of configuration ``i`` (same keys as ``run_backtest``)."""
        return metrics_dict(np.array([self.metrics[name][i] for name in METRIC_NAMES]))

    def deflated_sharpe(self, n_trials: Optional[int] = None) -> np.ndarray:
        """Deflated Sharpe ratio of every configuration (Bailey & Lopez de Prado 2014).

        The expected maximum Sharpe of ``n_trials`` (default: the number of configurations)
        unskilled trials uses the variance of the Sharpe ratios across configurations; each
        configuration's own skewness and kurtosis enter its PSR.
        """
        sharpe = self.metrics["sharpe"]
        finite = np.isfinite(sharpe)
        n_trials = len(self) if n_trials is None else n_trials
        variance = float(np.var(sharpe[finite], ddof=1)) if finite.sum() >= 2 else 0.0
        return stats.deflated_sharpe_ratio(
            sharpe, n_trials, self.metrics["n_bars"], self.metrics["skew"],
            self.metrics["kurtosis"], variance, periods_per_year=self.grid.base.periods_per_year,
        )

    def to_frame(self) -> pd.DataFrame:
        """Configurations and their metrics, one row each."""
        frame = self.grid.to_frame()
        for name in METRIC_NAMES:
            frame[name] = self.metrics[name]
        return frame


def run_sweep(
    open_,
    close,
    score,
    grid: SweepGrid,
    *,
    index: Optional[pd.Index] = None,
    hours: Optional[np.ndarray] = None,
    segments: Optional[np.ndarray] = None,
    train_scores: Union[None, np.ndarray, Sequence[np.ndarray]] = None,
) -> SweepResult:
    """Evaluate every configuration of ``grid`` over the same bars in one parallel call.

    Bars and scores as ``run_backtest``; ``hours`` (bar-start hour per bar) defaults to the
    DatetimeIndex's. Walk-forward inputs: per-bar ``segments`` (fold number) and
    ``train_scores`` (one array of training-fold scores per segment, or a single array when
    there is one segment), needed by top_pct configurations.
    """
    if index is None:
        for candidate in (score, close, open_):
            if isinstance(candidate, pd.Series):
                index = candidate.index
                break
    open_a = np.ascontiguousarray(np.asarray(open_, dtype=np.float64))
    n = open_a.shape[0]
    close_a = np.ascontiguousarray(np.asarray(close, dtype=np.float64))
    score_a = np.ascontiguousarray(np.asarray(score, dtype=np.float64))
    if close_a.shape != (n,) or score_a.shape != (n,):
        raise ValueError("open, close and score must be 1-D arrays of the same length")
    if hours is None:
        hours = bar_hours(index, n)
    session = np.ascontiguousarray(np.asarray(hours, dtype=np.int64))
    if segments is None:
        seg = np.zeros(n, dtype=np.int64)
        n_segments = 1
    else:
        seg = np.ascontiguousarray(np.asarray(segments, dtype=np.int64))
        n_segments = int(seg.max()) + 1 if n else 1
    if train_scores is not None and n_segments == 1 and not isinstance(train_scores, (list, tuple)):
        train_scores = [train_scores]
    cuts = grid_cutoffs(grid, train_scores, n_segments)
    masks = np.stack([hours_mask(h) for h in grid.hour_sets])
    base = grid.base
    # a copy: a grid from the Ray object store is read-only, another numba type (a second
    # compiled specialisation in a fresh trial)
    mask_id = np.array(grid.hours_id, dtype=np.int64)
    out = evaluate_configs(
        open_a, close_a, score_a, seg, session, cuts, mask_id, masks,
        grid.fees_bps * 1e-4, grid.slippage_bps * 1e-4, float(base.initial_capital),
        float(base.periods_per_year), float(base.es_level), numba.get_num_threads(),
        float(base.borrow_bps) * 1e-4, np.zeros(cuts.shape[0]),
    )
    return SweepResult(grid=grid, metrics={name: out[:, i] for i, name in enumerate(METRIC_NAMES)})


# ----------------------------------------------------------------- chunks of a sweep

@dataclass
class SweepArrays:
    """The read-only inputs every chunk shares (put in the Ray object store once)."""

    open: np.ndarray
    close: np.ndarray
    score: np.ndarray
    hours: np.ndarray
    segments: np.ndarray
    train_scores: list
    periods_per_year: float
    fees_bps: float
    slippage_bps: float
    pack_id: str
    cadence: str
    #: Options packs: bar starts (int64 ns, UTC), the implied vol known at each bar and the
    #: underlying's ticker (its listed strike grid); None for equity packs.
    timestamps: Optional[np.ndarray] = None
    implied_vol: Optional[np.ndarray] = None
    ticker: Optional[str] = None
    #: Strategy sweeps: the bars' highs and lows (Donchian channels); None otherwise.
    high: Optional[np.ndarray] = None
    low: Optional[np.ndarray] = None

    @property
    def n_bars(self) -> int:
        return int(self.close.shape[0])

    def local_copy(self) -> "SweepArrays":
        """Writable copies of the bars. Arrays fetched from the Ray object store are read-only
        views, a different numba type: kernels would compile (and cache) a second
        specialisation. A copy costs 40 bytes per bar, once per trial."""
        def copy(a):
            return None if a is None else a.copy()

        return SweepArrays(self.open.copy(), self.close.copy(), self.score.copy(), self.hours.copy(),
                           self.segments.copy(), [t.copy() for t in self.train_scores], self.periods_per_year,
                           self.fees_bps, self.slippage_bps, self.pack_id, self.cadence,
                           copy(self.timestamps), copy(self.implied_vol), self.ticker, copy(self.high),
                           copy(self.low))

    def base_config(self) -> BacktestConfig:
        return BacktestConfig(fees_bps=self.fees_bps, slippage_bps=self.slippage_bps,
                              periods_per_year=self.periods_per_year)


def evaluate_chunk(arrays: SweepArrays, grid_chunk):
    """Metrics of a chunk of configurations (one numba call) plus, when the pack's ranking
    needs it, every configuration's standard deviation of per-fold Sharpe ratios."""
    from compute.gates import resolve_pack
    from compute.strategies import StrategyGrid, strategy_sweep

    if isinstance(grid_chunk, StrategyGrid):
        # built-in strategies: each window's features once, every threshold on them
        table = strategy_sweep(arrays.open, arrays.close, grid_chunk.strategies, grid_chunk.base,
                               high=arrays.high, low=arrays.low)
        return SweepResult(grid=grid_chunk, metrics={name: table[name].to_numpy() for name in METRIC_NAMES}), None
    if arrays.implied_vol is not None:
        return evaluate_options_chunk(arrays, grid_chunk)

    result = run_sweep(arrays.open, arrays.close, arrays.score, grid_chunk, hours=arrays.hours,
                       segments=arrays.segments, train_scores=arrays.train_scores)
    fold_std = None
    if resolve_pack(arrays.pack_id).ranking.name == "sortino_trades_dd_foldstd":
        # Each fold on its own (positions start flat at the fold's first bar): same total
        # bar-configurations as the stitched run.
        sharpes = []
        for k, train in enumerate(arrays.train_scores):
            rows = np.flatnonzero(arrays.segments == k)
            if rows.size < 2:
                continue
            sl = slice(int(rows[0]), int(rows[-1]) + 1)
            fold = run_sweep(arrays.open[sl], arrays.close[sl], arrays.score[sl], grid_chunk,
                             hours=arrays.hours[sl], train_scores=train)
            sharpes.append(fold.metrics["sharpe"])
        if len(sharpes) >= 2:
            import warnings

            with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                fold_std = np.nanstd(np.vstack(sharpes), axis=0, ddof=1)
    return result, fold_std


def evaluate_options_chunk(arrays: SweepArrays, grid_chunk):
    """Options packs: every configuration executed with 0DTE contracts priced along the path
    (``compute.backtest.run_options_backtest``, what ``POST /backtest`` runs for these packs), so
    the leaderboard ranks and gates the options P&L, not the underlying's. The options engine
    runs one configuration at a time (it picks and prices contracts per bar): a few ms per
    configuration per thousand bars instead of the equity kernel's microseconds.
    ``fold_std``: the standard deviation of the per-fold Sharpe ratios of the stitched run,
    as the single backtest reports ``fold_sharpe_std``."""
    from functools import partial

    from compute.backtest import run_options_backtest
    from compute.marketdata.options import strike_step

    index = pd.to_datetime(arrays.timestamps, utc=True)
    n_segments = int(arrays.segments.max()) + 1 if arrays.n_bars else 1
    cuts = grid_cutoffs(grid_chunk, arrays.train_scores, n_segments)
    fold_of = [arrays.segments == k for k in range(n_segments)]
    metrics = {name: np.empty(len(grid_chunk)) for name in METRIC_NAMES}
    fold_std = np.full(len(grid_chunk), np.nan)
    for j in range(len(grid_chunk)):
        bt = run_options_backtest(arrays.open, arrays.close, arrays.score, grid_chunk.config(j), index=index,
                                  hours=arrays.hours, implied_vol=arrays.implied_vol,
                                  strike_step=partial(strike_step, arrays.ticker), segments=arrays.segments,
                                  segment_cutoffs=cuts[j])
        for name in METRIC_NAMES:
            metrics[name][j] = bt.metrics[name]
        returns = bt.returns.to_numpy()
        sharpes = np.array([stats.sharpe(returns[mask], arrays.periods_per_year) for mask in fold_of if mask.any()])
        finite = sharpes[np.isfinite(sharpes)]
        if finite.size >= 2:
            fold_std[j] = float(finite.std(ddof=1))
    return SweepResult(grid=grid_chunk, metrics=metrics), fold_std
