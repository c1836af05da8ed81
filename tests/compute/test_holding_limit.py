"""Holding limits (issue 16, item 3): ``max_hold`` H closes a position at the open of the bar
H bars after its entry bar at the latest; the same side is re-entered only on a fresh entry
signal. Checked on a hand-worked example, against a plain state machine of the rule fed to
vectorbt's ``Portfolio.from_signals`` (equity path, trades and every metric to 1e-9, the fill
convention of tests/compute/test_backtest_vectorbt.py), and in sweeps: every holding limit of
a chunk shares its window's score (computed once) and equals the single backtest."""


import numpy as np
import pandas as pd
import pytest
import scipy.stats

from compute import strategies as strat
from compute.backtest import BacktestConfig, run_backtest
from compute.strategies import StrategyError, make_strategy, run_strategy, strategy_grid, strategy_sweep
from tests.compute.vbt_oracle import vectorbt_portfolio

vbt = pytest.importorskip("vectorbt")

N = 700
PPY = 252
YEAR = dict(year_freq=f"{PPY} days")


@pytest.fixture(scope="module")
def bars():
    rng = np.random.default_rng(21)
    close = 80 * np.exp(np.cumsum(rng.normal(0.0002, 0.012, N)))
    open_ = np.concatenate(([80.0], close[:-1])) * np.exp(rng.normal(0, 0.003, N))
    return open_, close


# -- a hand-worked example ---------------------------------------------------------------------

def test_hand_worked_example():
    # long when score >= 0.6, kept while >= 0.6 (cut-offs [0.6, -inf, 0.6, -inf]), limit 3 bars
    score = np.array([0.5, 0.7, 0.7, 0.7, 0.7, 0.7, 0.5, 0.7, 0.7, 0.5, 0.5, 0.5])
    price = np.linspace(100.0, 111.0, 12)
    cuts = np.array([[0.6, -np.inf, 0.6, -np.inf]])
    cfg = BacktestConfig(fees_bps=0, slippage_bps=0, long_only=True)
    free = run_backtest(price, price, score, cfg, segment_cutoffs=cuts)
    held = run_backtest(price, price, score, cfg, segment_cutoffs=cuts, max_hold=3)
    # decided at bar 1's close, bought at bar 2's open; without a limit held until bar 7's open
    assert free.position.tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0]
    # with the limit: held through the closes of bars 2, 3, 4, sold at bar 5's open; bars 5 and 6
    # still signal long but that is the same signal: no re-entry until it lapses (bar 6, 0.5);
    # the fresh signal of bar 7 buys at bar 8's open; the 0.5 of bar 9 sells at bar 10's open
    assert held.position.tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0]
    assert held.fills["action"].tolist() == ["BUY", "SELL", "BUY", "SELL"]
    assert held.fills["timestamp"].tolist() == [2, 5, 8, 10]
    assert held.fills["price"].tolist() == [price[2], price[5], price[8], price[10]]
    assert held.metrics["trades"] == 2
    # a limit of 1: out after one close, every time
    one = run_backtest(price, price, score, cfg, segment_cutoffs=cuts, max_hold=1)
    assert one.position.tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]


def test_the_other_side_is_entered_at_once_and_reversals_happen():
    # long >= 0.6, short <= 0.4, exits at the same levels; limit 2
    score = np.array([0.7, 0.7, 0.7, 0.2, 0.2, 0.2, 0.2, 0.8, 0.5, 0.5])
    price = np.linspace(50.0, 59.0, 10)
    cuts = np.array([[0.6, 0.4, 0.6, 0.4]])
    cfg = BacktestConfig(fees_bps=0, slippage_bps=0)
    res = run_backtest(price, price, score, cfg, segment_cutoffs=cuts, max_hold=2)
    # long bars 1-2 (limit), flat 3; the short signal of bar 3 enters at once (bar 4's open: the
    # long side's block does not hold the short side back), limit at bar 5's close, flat bar 6
    # (short signal still on: not fresh); bar 7's long signal enters at bar 8; bar 8's 0.5 exits
    assert res.position.tolist() == [0, 1, 1, 0, -1, -1, 0, 0, 1, 0]
    # at the limit a due reversal is not suppressed: long at 0-1, short signal at bar 2's close
    score2 = np.array([0.7, 0.7, 0.2, 0.2, 0.5])
    res2 = run_backtest(price[:5], price[:5], score2, cfg, segment_cutoffs=cuts, max_hold=2)
    assert res2.position.tolist() == [0, 1, 1, -1, -1]


# -- a plain state machine of the rule, through vectorbt ----------------------------------------

def _rule_path(enter_long, exit_long, enter_short, exit_short, max_hold):
    """The position decided at each close under the written rule: entries first, then exits;
    a position held through ``max_hold`` closes is closed; a side closed by the limit is
    re-entered only after its entry signal has been off at some close."""
    state, decided_at, blocked, out = 0, 0, 0, []
    for t in range(len(enter_long)):
        if blocked == 1 and not enter_long[t]:
            blocked = 0
        if blocked == -1 and not enter_short[t]:
            blocked = 0
        if enter_long[t]:
            want = 1
        elif enter_short[t]:
            want = -1
        elif (state == 1 and exit_long[t]) or (state == -1 and exit_short[t]):
            want = 0
        else:
            want = state
        if max_hold and state != 0 and want == state and t - decided_at >= max_hold:
            # filled at decided_at + 1: held through t - decided_at closes
            blocked = state if (enter_long[t] if state == 1 else enter_short[t]) else 0
            want = 0
        if want != 0 and want == blocked:
            want = 0
        if want != state:
            decided_at = t
        state = want
        out.append(state)
    return np.array(out)


def _zscore_rules(close, window, entry, exit_, long_only):
    c = pd.Series(close)
    z = ((c - c.rolling(window).mean()) / c.rolling(window).std(ddof=1)).to_numpy()
    with np.errstate(invalid="ignore"):
        rules = [z <= -entry, z > -exit_, z >= entry, z < exit_]
    rules = [np.nan_to_num(r.astype(float), nan=0.0) > 0 for r in rules]
    if long_only:
        rules[2] = np.zeros_like(rules[2])
    return rules


@pytest.mark.parametrize("max_hold, long_only, fees_bps, slippage_bps", [
    (1, True, 10, 5),
    (3, True, 5, 2),
    (5, False, 10, 5),
    (12, False, 1, 0),
])
def test_holding_limit_equals_the_rule_throughvectorbt_portfolio(bars, max_hold, long_only, fees_bps, slippage_bps):
    open_, close = bars
    idx = pd.date_range("2020-01-01", periods=N, freq="D")
    strategy = make_strategy("zscore", {"window": 15, "entry": 1.0, "exit": 0.0, "max_hold": max_hold})
    cfg = BacktestConfig(fees_bps=fees_bps, slippage_bps=slippage_bps, long_only=long_only,
                         initial_capital=10_000, periods_per_year=PPY)
    res = run_strategy(pd.Series(open_, idx), pd.Series(close, idx), strategy, cfg, index=idx)
    decided = _rule_path(*_zscore_rules(close, 15, 1.0, 0.0, long_only), max_hold)
    unlimited = _rule_path(*_zscore_rules(close, 15, 1.0, 0.0, long_only), 0)
    assert (decided != unlimited).sum() > 20  # the limit really binds
    # the engine holds what the rule decided, one bar later (next-bar fills)
    np.testing.assert_array_equal(res.position.to_numpy()[1:], decided[:-1])
    pf = vectorbt_portfolio(open_, close, decided, idx, fees_bps * 1e-4, slippage_bps * 1e-4, 10_000)

    np.testing.assert_allclose(res.equity.values, pf.value().values, rtol=1e-9, atol=0)
    np.testing.assert_allclose(res.returns.values, pf.returns().values, rtol=0, atol=1e-12)
    trades = pf.trades.records_readable
    closed = trades[trades["Status"] == "Closed"].reset_index(drop=True)
    fills = res.fills
    n_closed = len(closed)
    assert n_closed > 20
    entries, exits = fills.iloc[0:2 * n_closed:2], fills.iloc[1:2 * n_closed:2]
    assert entries["timestamp"].tolist() == closed["Entry Timestamp"].tolist()
    assert exits["timestamp"].tolist() == closed["Exit Timestamp"].tolist()
    held_bars = (pd.DatetimeIndex(closed["Exit Timestamp"]) - pd.DatetimeIndex(closed["Entry Timestamp"])).days
    assert held_bars.max() <= max_hold and (held_bars == max_hold).sum() > 5
    np.testing.assert_allclose(exits["pnl"], closed["PnL"], rtol=1e-9, atol=1e-9)

    m = res.metrics
    r = pf.returns().values
    years = N / PPY
    orders = pf.orders.records_readable
    expected = {
        "sharpe": pf.sharpe_ratio(**YEAR), "sortino": pf.sortino_ratio(**YEAR), "cum_return": pf.total_return(),
        "annual_return": pf.annualized_return(**YEAR), "annual_volatility": pf.annualized_volatility(**YEAR),
        "max_drawdown": pf.max_drawdown(), "calmar": pf.calmar_ratio(**YEAR),
        "win_rate": pf.trades.closed.win_rate(), "trades": pf.trades.closed.count(),
        "trades_per_year": pf.trades.closed.count() / years,
        "es_95": pf.returns_acc.cond_value_at_risk(cutoff=0.05),
        "turnover": float((orders["Size"] * orders["Price"]).sum()) / pf.value().mean() / years,
        "exposure": pf.position_coverage(), "final_equity": pf.final_value(), "n_bars": N,
        "skew": scipy.stats.skew(r), "kurtosis": scipy.stats.kurtosis(r, fisher=False),
    }
    assert set(expected) == set(m)
    for name, value in expected.items():
        assert m[name] == pytest.approx(float(value), rel=1e-9, abs=1e-12), name


# -- sweeps --------------------------------------------------------------------------------------

def test_sweep_over_holding_limits_shares_each_windows_features(bars, monkeypatch):
    open_, close = bars
    grid = {"window": [10, 30], "entry": [1.0, 2.0], "exit": [0.0, 0.5], "max_hold": [0, 2, 7]}
    strategies = strategy_grid("zscore", grid)
    assert len(strategies) == 24 and {s.params["max_hold"] for s in strategies} == {0, 2, 7}
    calls = []
    real = strat.strategy_score
    monkeypatch.setattr(strat, "strategy_score", lambda name, feats, *a, **k: calls.append(dict(feats)) or real(
        name, feats, *a, **k))
    cfg = BacktestConfig(fees_bps=1, slippage_bps=2, borrow_bps=30)
    table = strategy_sweep(open_, close, strategies, cfg)
    assert sorted(c["window"] for c in calls) == [10, 30]  # once per window, not per configuration
    assert list(table.columns[:4]) == ["window", "entry", "exit", "max_hold"]
    monkeypatch.setattr(strat, "strategy_score", real)
    for i, s in enumerate(strategies):
        single = run_strategy(open_, close, s, cfg).metrics
        for name, value in single.items():
            assert table.loc[i, name] == pytest.approx(value, rel=1e-12, nan_ok=True), (i, name)
    # a limit changes the result; 0 is no limit
    by = table.set_index(["window", "entry", "exit", "max_hold"])
    assert by.loc[(10, 1.0, 0.0, 2), "trades"] != by.loc[(10, 1.0, 0.0, 0), "trades"]
    plain = strategy_sweep(open_, close, strategy_grid("zscore", {k: v for k, v in grid.items() if k != "max_hold"}), cfg)
    np.testing.assert_allclose(by.xs(0, level="max_hold")["sharpe"].to_numpy(), plain["sharpe"].to_numpy(), rtol=1e-12)


def test_bad_holding_limits_name_the_field():
    for bad in (-1, 1.5, "3", True, 10**9):
        with pytest.raises(StrategyError, match="strategy.params.max_hold"):
            make_strategy("zscore", {"max_hold": bad})
    with pytest.raises(StrategyError, match="grid.max_hold"):
        strategy_grid("rsi", {"max_hold": [5, 2.5]})
    with pytest.raises(StrategyError, match="grid.max_hold"):
        strategy_grid("rsi", {"max_hold": []})
    assert make_strategy("ma_cross", {"max_hold": 20}).params["max_hold"] == 20
    assert "max_hold" not in make_strategy("ma_cross").params  # no limit unless asked
    with pytest.raises(ValueError, match="max_hold"):
        run_backtest(np.ones(5), np.ones(5), np.ones(5), BacktestConfig(), max_hold=-2)
