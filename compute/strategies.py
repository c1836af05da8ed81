"""Built-in indicator strategies and user signal series, on the backtest engine.

Every strategy is a *score* per bar (computed from bars up to and including that bar) and
four cut-offs ``[long_entry, short_entry, long_exit, short_exit]``: exactly what the engine
(``compute.backtest_nb``) trades, with its next-bar fills, fees, slippage, borrow and honest
accounting. The score is known at bar t's close and acts at bar t + 1's open.

| name | score | long | short | exit |
|---|---|---|---|---|
| ``zscore`` (mean reversion) | -z, z = (close - SMA(window)) / std(window) | z <= -entry | z >= entry | z back inside +/- exit |
| ``ma_cross`` | SMA(fast) / SMA(slow) - 1 | fast above slow | fast below slow | the opposite cross |
| ``rsi`` (threshold) | 50 - RSI(window) | RSI <= lower | RSI >= upper | RSI crosses ``exit`` (default 50) |
| ``bollinger`` (breakout) | z as above | z >= k | z <= -k | z back inside +/- exit |
| ``donchian`` (breakout) | (close - low_N) / (high_N - low_N) over the *previous* N bars | close >= prior N-bar high | close <= prior N-bar low | back inside the channel's ``exit`` fraction (default 0.5) |

``z`` uses the sample std (ddof 1) over the trailing window including the bar
(``compute.indicators_nb.rolling_zscore_nb``). Bars before a window fills have a NaN score
(flat). ``long_only`` turns shorts off. A strategy's score depends on its *feature*
parameters (windows) only; its thresholds become cut-offs, which is what lets a sweep compute
the features once per window and run every threshold combination on them
(``strategy_sweep``).

Every strategy also takes ``max_hold``: a holding limit in bars (0 or absent = none). A
position is closed at the open of the bar ``max_hold`` bars after its entry bar at the
latest, and the same side is re-entered only on a fresh entry signal (the rule is in
``compute.backtest_nb``). It is an engine setting, not a feature: a sweep over it reuses each
window's score.

User signals (``signal_scores``): a score series in [0, 1] traded with the usual thresholds,
or entry/exit booleans (long-only: enter on an entry, leave on an exit; with ``short_entry``/
``short_exit`` too, shorts), both keyed by date and aligned to the bars exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np
import pandas as pd

from compute import indicators_nb as nb

#: name -> (feature parameters, threshold parameters, defaults)
STRATEGIES: dict[str, dict] = {
    "zscore": {"features": ("window",), "thresholds": ("entry", "exit"),
               "defaults": {"window": 20, "entry": 2.0, "exit": 0.5}},
    "ma_cross": {"features": ("fast", "slow"), "thresholds": (),
                 "defaults": {"fast": 20, "slow": 50}},
    "rsi": {"features": ("window",), "thresholds": ("lower", "upper", "exit"),
            "defaults": {"window": 14, "lower": 30.0, "upper": 70.0, "exit": 50.0}},
    "bollinger": {"features": ("window",), "thresholds": ("k", "exit"),
                  "defaults": {"window": 20, "k": 2.0, "exit": 0.0}},
    "donchian": {"features": ("window",), "thresholds": ("exit",),
                 "defaults": {"window": 20, "exit": 0.5}},
}


#: The holding limit every strategy takes (bars; 0 = none), and its largest value.
HOLD_PARAM = "max_hold"
MAX_HOLD_BARS = 100_000


def strategy_keys(name: str) -> set:
    """The parameters strategy ``name`` takes (its own and the holding limit)."""
    return set(STRATEGIES[name]["defaults"]) | {HOLD_PARAM}


def max_hold_of(strategy: "Strategy") -> int:
    """The strategy's holding limit in bars (0 = none)."""
    return int(strategy.params.get(HOLD_PARAM, 0))


class StrategyError(ValueError):
    """Bad strategy input: ``field`` names the parameter, ``reason`` the rule."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Strategy:
    """A built-in strategy with its full parameter set (defaults filled in, validated)."""

    name: str
    params: Mapping[str, float]

    @property
    def feature_key(self) -> tuple:
        return (self.name,) + tuple(self.params[k] for k in STRATEGIES[self.name]["features"])


def make_strategy(name: str, params: Optional[Mapping] = None) -> Strategy:
    """Validate ``name`` and ``params`` (unknown keys, types, ranges); defaults filled in."""
    if name not in STRATEGIES:
        raise StrategyError("strategy.name", f"unknown strategy {name!r}; expected one of {sorted(STRATEGIES)}")
    spec = STRATEGIES[name]
    params = dict(params or {})
    for key in params:
        if key not in strategy_keys(name):
            raise StrategyError(f"strategy.params.{key}", f"unknown parameter; {name} takes {sorted(strategy_keys(name))}")
    full = {**spec["defaults"], **params}
    for key, value in full.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise StrategyError(f"strategy.params.{key}", "must be a number")
    for key in spec["features"]:
        value = full[key]
        if int(value) != value or not 2 <= value <= 2_000:
            raise StrategyError(f"strategy.params.{key}", "must be a whole number of bars in 2..2000")
        full[key] = int(value)
    if HOLD_PARAM in full:
        value = full[HOLD_PARAM]
        if int(value) != value or not 0 <= value <= MAX_HOLD_BARS:
            raise StrategyError(f"strategy.params.{HOLD_PARAM}",
                                f"must be a whole number of bars in 0..{MAX_HOLD_BARS} (0 = no holding limit)")
        full[HOLD_PARAM] = int(value)
    _check_thresholds(name, full)
    return Strategy(name, full)


def _check_thresholds(name: str, p: dict) -> None:
    def bad(key, reason):
        raise StrategyError(f"strategy.params.{key}", reason)

    if name == "zscore" and not 0 <= p["exit"] <= p["entry"]:
        bad("exit", "must be in [0, entry]")
    if name == "ma_cross" and not p["fast"] < p["slow"]:
        bad("fast", "must be below slow")
    if name == "rsi" and not 0 <= p["lower"] <= p["exit"] <= p["upper"] <= 100:
        bad("exit", "need 0 <= lower <= exit <= upper <= 100")
    if name == "bollinger" and not 0 <= p["exit"] <= p["k"]:
        bad("exit", "must be in [0, k]")
    if name == "donchian" and not 0 <= p["exit"] <= 1:
        bad("exit", "must be in [0, 1]")


def strategy_score(name: str, features: Mapping, close, high=None, low=None) -> np.ndarray:
    """The score of strategy ``name`` for its feature parameters (windows), float64 per bar."""
    c = np.ascontiguousarray(np.asarray(close, dtype=np.float64))
    if name in ("zscore", "bollinger"):
        z = nb.rolling_zscore_nb(c, int(features["window"]))
        return -z if name == "zscore" else z
    if name == "ma_cross":
        fast = nb.rolling_mean_nb(c, int(features["fast"]))
        slow = nb.rolling_mean_nb(c, int(features["slow"]))
        return fast / slow - 1.0
    if name == "rsi":
        return 50.0 - nb.rsi_nb(c, int(features["window"]))
    if name == "donchian":
        w = int(features["window"])
        h = pd.Series(c if high is None else np.asarray(high, dtype=np.float64))
        lo = pd.Series(c if low is None else np.asarray(low, dtype=np.float64))
        top = h.rolling(w).max().shift(1).to_numpy()
        bottom = lo.rolling(w).min().shift(1).to_numpy()
        span = top - bottom
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(span > 0, (c - bottom) / span, np.where(np.isnan(span), np.nan, 0.5))
    raise StrategyError("strategy.name", f"unknown strategy {name!r}")


def strategy_cutoffs(name: str, thresholds: Mapping, long_only: bool = False) -> np.ndarray:
    """``[long_entry, short_entry, long_exit, short_exit]`` of a strategy's thresholds."""
    t = thresholds
    if name in ("zscore", "bollinger"):
        k = t["entry"] if name == "zscore" else t["k"]
        cuts = [k, -k, t["exit"], -t["exit"]]
    elif name == "ma_cross":
        cuts = [0.0, 0.0, 0.0, 0.0]
    elif name == "rsi":
        cuts = [50.0 - t["lower"], 50.0 - t["upper"], 50.0 - t["exit"], 50.0 - t["exit"]]
    elif name == "donchian":
        cuts = [1.0, 0.0, t["exit"], 1.0 - t["exit"]]
    else:
        raise StrategyError("strategy.name", f"unknown strategy {name!r}")
    cuts = np.asarray(cuts, dtype=np.float64)
    if long_only:
        cuts[1] = cuts[3] = -np.inf
    return cuts


def strategy_inputs(strategy: Strategy, close, high=None, low=None, long_only: bool = False):
    """(score per bar, cut-offs) of a validated strategy."""
    spec = STRATEGIES[strategy.name]
    feats = {k: strategy.params[k] for k in spec["features"]}
    return (strategy_score(strategy.name, feats, close, high, low),
            strategy_cutoffs(strategy.name, strategy.params, long_only))


# ----------------------------------------------------------------- user signal series

def align_signal(values: pd.Series, bars_index: pd.DatetimeIndex, field: str, daily: bool = True) -> np.ndarray:
    """``values`` keyed by date (daily) or bar start, reindexed onto the bars exactly: every key
    must be a bar (a key with no bar is refused naming it) and keys must be unique; bars the
    series does not cover get NaN (flat / no signal)."""
    keys = pd.DatetimeIndex(values.index)
    if keys.has_duplicates:
        dup = keys[keys.duplicated()][0]
        raise StrategyError(field, f"duplicated date {dup.date() if daily else dup}")
    if daily:
        bar_keys = pd.DatetimeIndex(bars_index)
        bar_keys = (bar_keys.tz_convert("America/New_York").tz_localize(None) if bar_keys.tz is not None
                    else bar_keys).normalize()
        keys = (keys.tz_convert("America/New_York").tz_localize(None) if keys.tz is not None else keys).normalize()
    else:
        bar_keys = pd.DatetimeIndex(bars_index)
    pos = bar_keys.get_indexer(keys)
    if (pos < 0).any():
        i = int(np.argmax(pos < 0))
        shown = keys[i].date() if daily else keys[i]
        raise StrategyError(field, f"row {i + 1}: {shown} does not line up with a bar of the series "
                            f"({bar_keys[0].date()}..{bar_keys[-1].date()}): not a session or outside the range")
    out = np.full(len(bar_keys), np.nan)
    out[pos] = np.asarray(values, dtype=np.float64)
    return out


def booleans_to_scores(entries: np.ndarray, exits: np.ndarray, short_entries: Optional[np.ndarray] = None,
                       short_exits: Optional[np.ndarray] = None) -> np.ndarray:
    """Entry/exit booleans (decided at each bar's close) -> scores 1 (long), 0 (short), 0.5
    (flat) that the engine trades with thresholds 1.0 (``BOOLEAN_CONFIG``): an entry opens
    (or reverses into) a position, an exit closes it; an entry and its exit on the same bar
    is refused by the caller. NaN counts as False."""
    n = entries.shape[0]
    e = np.nan_to_num(entries, nan=0.0) > 0
    x = np.nan_to_num(exits, nan=0.0) > 0
    se = np.zeros(n, bool) if short_entries is None else np.nan_to_num(short_entries, nan=0.0) > 0
    sx = np.zeros(n, bool) if short_exits is None else np.nan_to_num(short_exits, nan=0.0) > 0
    state = 0
    out = np.empty(n)
    for t in range(n):
        if e[t]:
            state = 1
        elif se[t]:
            state = -1
        elif (state == 1 and x[t]) or (state == -1 and sx[t]):
            state = 0
        out[t] = (state + 1) / 2.0
    return out


#: Thresholds under which booleans_to_scores' 1 / 0 / 0.5 scores trade exactly as signalled.
BOOLEAN_CUTOFFS = np.array([1.0, 0.0, 1.0, 0.0])


# ----------------------------------------------------------------- sweeps

def strategy_grid(name: str, grid: Mapping[str, list], long_only: bool = False) -> list[Strategy]:
    """Every valid combination of ``grid`` (parameter -> list of values; unlisted parameters
    take their defaults), ordered by feature parameters first so that configurations sharing
    a window are neighbours. Invalid combinations (an exit beyond its entry) are left out."""
    if name not in STRATEGIES:
        raise StrategyError("strategy.name", f"unknown strategy {name!r}; expected one of {sorted(STRATEGIES)}")
    spec = STRATEGIES[name]
    for key, values in grid.items():
        if key not in strategy_keys(name):
            raise StrategyError(f"grid.{key}", f"unknown parameter; {name} takes {sorted(strategy_keys(name))}")
        if not isinstance(values, (list, tuple)) or not values:
            raise StrategyError(f"grid.{key}", "must be a non-empty list")
    keys = list(spec["features"]) + list(spec["thresholds"]) + ([HOLD_PARAM] if HOLD_PARAM in grid else [])
    axes = [list(grid[k]) if k in grid else [spec["defaults"][k]] for k in keys]
    out = []
    import itertools

    for combo in itertools.product(*axes):
        try:
            out.append(make_strategy(name, dict(zip(keys, combo))))
        except StrategyError as exc:
            if exc.field.split(".")[-1] in (*spec["features"], HOLD_PARAM) and "whole number" in exc.reason:
                raise StrategyError(f"grid.{exc.field.split('.')[-1]}", exc.reason) from None
            if "must be a number" in exc.reason:
                raise StrategyError(f"grid.{exc.field.split('.')[-1]}", exc.reason) from None
    if not out:
        raise StrategyError("grid", "no valid combination (check that exits lie within entries)")
    return out


def strategy_sweep(open_, close, strategies: list[Strategy], config, *, high=None, low=None,
                   n_threads: Optional[int] = None) -> pd.DataFrame:
    """Metrics of every strategy (one row each, its parameters then ``METRIC_NAMES``) over one
    instrument's bars, in chunks sharing feature parameters: each window's score is computed
    once and every threshold combination on it runs in one parallel numba call
    (``compute.sweep_nb.evaluate_configs``, the engine of ``compute.backtest_nb``). ``config`` (a
    ``BacktestConfig``) gives costs, capital, long_only, borrow and periods per year; all
    bars are tradable. Holding limits (``max_hold``) are per configuration in the same call:
    they share the window's score. The result equals ``run_backtest`` of each strategy alone."""
    import numba

    from compute.backtest_nb import METRIC_NAMES, N_METRICS
    from compute.sweep_nb import evaluate_configs

    o = np.ascontiguousarray(np.asarray(open_, dtype=np.float64))
    c = np.ascontiguousarray(np.asarray(close, dtype=np.float64))
    n = c.shape[0]
    threads = n_threads or numba.get_num_threads()
    seg = np.zeros(n, dtype=np.int64)
    session = np.ones(n, dtype=np.int64)
    masks = np.array([[False, True]])
    out = np.empty((len(strategies), N_METRICS))
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(strategies):
        groups.setdefault(s.feature_key, []).append(i)
    for key, members in groups.items():
        s0 = strategies[members[0]]
        feats = {k: s0.params[k] for k in STRATEGIES[s0.name]["features"]}
        score = np.ascontiguousarray(strategy_score(s0.name, feats, c, high, low))
        cuts = np.stack([strategy_cutoffs(s0.name, strategies[i].params, config.long_only)
                         for i in members])[:, None, :]
        k = len(members)
        out[members] = evaluate_configs(o, c, score, seg, session, np.ascontiguousarray(cuts), np.zeros(k, dtype=np.int64),
                                masks, np.full(k, config.fees_bps * 1e-4), np.full(k, config.slippage_bps * 1e-4),
                                float(config.initial_capital), float(config.periods_per_year),
                                float(config.es_level), threads, float(config.borrow_bps) * 1e-4,
                                np.array([float(max_hold_of(strategies[i])) for i in members]))
    params = pd.DataFrame([dict(s.params) for s in strategies])
    metrics = pd.DataFrame(out, columns=list(METRIC_NAMES))
    return pd.concat([params, metrics], axis=1)


def run_strategy(open_, close, strategy: Strategy, config, *, high=None, low=None, index=None):
    """One strategy backtest on the engine (``compute.backtest.run_backtest``); every bar is
    tradable."""
    from compute.backtest import run_backtest

    score, cuts = strategy_inputs(strategy, close, high, low, config.long_only)
    n = len(score)
    return run_backtest(open_, close, score, config, index=index, tradable=np.ones(n, dtype=bool),
                        segment_cutoffs=cuts[None, :], max_hold=max_hold_of(strategy))


@dataclass
class StrategyGrid:
    """The strategies of a sweep in the shape chunked sweeps use (``len``, ``slice``, ``base``):
    ``compute.sweep.evaluate_chunk`` runs a slice through ``strategy_sweep``."""

    strategies: list
    base: object  # BacktestConfig: costs, capital, long_only, periods per year

    def __len__(self) -> int:
        return len(self.strategies)

    def slice(self, start: int, stop: int) -> "StrategyGrid":
        return StrategyGrid(self.strategies[start:stop], self.base)

    def config(self, i: int) -> dict:
        """Configuration ``i`` as a ``POST /backtest`` body's strategy and costs."""
        s = self.strategies[i]
        return {"strategy": {"name": s.name, "params": dict(s.params)}, "long_only": bool(self.base.long_only),
                "fees_bps": float(self.base.fees_bps), "slippage_bps": float(self.base.slippage_bps)}
