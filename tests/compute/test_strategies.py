"""Built-in strategies and user signals against plain pandas rules (an independent reading
of each strategy's definition), and their sweep against single backtests."""

import numpy as np
import pandas as pd
import pytest

from compute.backtest import BacktestConfig, run_backtest
from compute.strategies import (BOOLEAN_CUTOFFS, StrategyError, align_signal, booleans_to_scores,
                                make_strategy, run_strategy, strategy_grid, strategy_sweep)

N = 800


@pytest.fixture(scope="module")
def bars():
    rng = np.random.default_rng(11)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0002, 0.015, N)))
    open_ = np.concatenate(([50.0], close[:-1])) * np.exp(rng.normal(0, 0.003, N))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, N))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, N))
    return open_, high, low, close


def _walk(enter_long, exit_long, enter_short, exit_short):
    """Plain state machine of a rule: the position decided at each close (entries first)."""
    state, out = 0, []
    for el, xl, es, xs in zip(enter_long, exit_long, enter_short, exit_short):
        if el:
            state = 1
        elif es:
            state = -1
        elif (state == 1 and xl) or (state == -1 and xs):
            state = 0
        out.append(state)
    return np.array(out)


def _rules(name, p, high, low, close):
    c = pd.Series(close)
    if name in ("zscore", "bollinger"):
        z = ((c - c.rolling(p["window"]).mean()) / c.rolling(p["window"]).std(ddof=1)).to_numpy()
        if name == "zscore":
            return z <= -p["entry"], z > -p["exit"], z >= p["entry"], z < p["exit"]
        return z >= p["k"], z < p["exit"], z <= -p["k"], z > -p["exit"]
    if name == "ma_cross":
        d = (c.rolling(p["fast"]).mean() / c.rolling(p["slow"]).mean() - 1).to_numpy()
        return d > 0, d <= 0, d < 0, d >= 0
    if name == "rsi":
        delta = c.diff()
        w = p["window"]
        gain = delta.clip(lower=0).ewm(alpha=1 / w, adjust=False).mean()
        loss = (-delta.clip(upper=0)).ewm(alpha=1 / w, adjust=False).mean()
        rsi = (100 - 100 / (1 + gain / loss)).to_numpy().copy()
        rsi[:w] = np.nan  # Wilder's average is seeded with the first window's mean: compare after warm-up
        return rsi <= p["lower"], rsi > p["exit"], rsi >= p["upper"], rsi < p["exit"]
    if name == "donchian":
        top = pd.Series(high).rolling(p["window"]).max().shift(1).to_numpy()
        bottom = pd.Series(low).rolling(p["window"]).min().shift(1).to_numpy()
        frac = (close - bottom) / (top - bottom)
        return close >= top, frac < p["exit"], close <= bottom, frac > 1 - p["exit"]
    raise AssertionError(name)


@pytest.mark.parametrize("name, params", [
    ("zscore", {"window": 20, "entry": 1.5, "exit": 0.25}),
    ("ma_cross", {"fast": 10, "slow": 40}),
    ("rsi", {"window": 14, "lower": 35, "upper": 65}),
    ("bollinger", {"window": 25, "k": 1.5, "exit": 0.0}),
    ("donchian", {"window": 20, "exit": 0.5}),
])
def test_strategy_positions_follow_their_rule_at_the_next_bar(bars, name, params):
    open_, high, low, close = bars
    strategy = make_strategy(name, params)
    cfg = BacktestConfig(fees_bps=1, slippage_bps=2)
    res = run_strategy(open_, close, strategy, cfg, high=high, low=low)
    rules = [np.nan_to_num(r.astype(float), nan=0.0) > 0 for r in _rules(name, strategy.params, high, low, close)]
    decided = _walk(*rules)
    start = 60 if name == "rsi" else 0  # Wilder seeding differs from pandas' ewm for a while
    held = res.position.to_numpy()
    np.testing.assert_array_equal(held[start + 1:], decided[start:-1])
    assert res.metrics["trades"] > 3


def test_sweep_features_once_per_window_equals_single_backtests(bars):
    open_, high, low, close = bars
    strategies = strategy_grid("zscore", {"window": [5, 20, 60], "entry": [1.0, 2.0], "exit": [0.0, 0.5, 1.5]})
    assert len(strategies) == 15  # exit 1.5 > entry 1.0 is left out
    cfg = BacktestConfig(fees_bps=1, slippage_bps=2, borrow_bps=50)
    table = strategy_sweep(open_, close, strategies, cfg)
    for i in (0, 7, 14):
        single = run_strategy(open_, close, strategies[i], cfg).metrics
        for name, value in single.items():
            assert table.loc[i, name] == pytest.approx(value, rel=1e-12, nan_ok=True), name


def test_boolean_and_score_signals_line_up_with_the_bars():
    idx = pd.date_range("2024-07-01 13:30", periods=6, freq="D", tz="UTC")
    signal = pd.Series([True, False], index=pd.to_datetime(["2024-07-02", "2024-07-04"]))
    aligned = align_signal(signal, idx, "signal.entries")
    assert np.isnan(aligned[0]) and aligned[1] == 1.0 and aligned[3] == 0.0
    with pytest.raises(StrategyError, match="2024-07-09 does not line up with a bar"):
        align_signal(pd.Series([1.0], index=pd.to_datetime(["2024-07-09"])), idx, "signal.scores")
    with pytest.raises(StrategyError, match="duplicated date 2024-07-02"):
        align_signal(pd.Series([1.0, 0.0], index=pd.to_datetime(["2024-07-02", "2024-07-02"])), idx, "signal")
    entries = np.array([1, 0, 0, 0, 1, 0], float)
    exits = np.array([0, 0, 1, 0, 0, 0], float)
    scores = booleans_to_scores(entries, exits)
    assert scores.tolist() == [1.0, 1.0, 0.5, 0.5, 1.0, 1.0]
    price = np.linspace(10, 15, 6)
    res = run_backtest(price, price, scores, BacktestConfig(fees_bps=0, slippage_bps=0),
                       segment_cutoffs=BOOLEAN_CUTOFFS[None, :])
    assert res.position.tolist() == [0, 1, 1, 0, 0, 1]


def test_bad_strategy_parameters_name_the_field():
    with pytest.raises(StrategyError, match="strategy.name"):
        make_strategy("macd_magic")
    with pytest.raises(StrategyError, match="strategy.params.window"):
        make_strategy("zscore", {"window": 1.5})
    with pytest.raises(StrategyError, match="strategy.params.exit"):
        make_strategy("zscore", {"entry": 1.0, "exit": 2.0})
    with pytest.raises(StrategyError, match="strategy.params.fast"):
        make_strategy("ma_cross", {"fast": 50, "slow": 20})
    with pytest.raises(StrategyError, match="strategy.params.lookback"):
        make_strategy("rsi", {"lookback": 3})
