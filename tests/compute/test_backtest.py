"""Backtest engine: a hand-worked example to the cent, next-bar fills, tradable bars,
cut-offs, and metrics against the independent statistics of ``compute.stats``."""

import math

import numpy as np
import pandas as pd
import pytest

from compute import stats
from compute.backtest import BacktestConfig, run_backtest, signal_cutoffs
from compute.backtest_nb import M_ES


def test_hand_worked_backtest_with_fees_to_the_cent():
    open_ = [100.0, 101.0, 103.0, 102.0, 104.0]
    close = [100.5, 102.0, 102.5, 103.0, 105.0]
    score = [0.7, 0.7, 0.2, 0.5, 0.5]
    cfg = BacktestConfig(kind="thresholds", value=0.6, fees_bps=10, slippage_bps=5, initial_capital=10_000)
    res = run_backtest(open_, close, score, cfg)

    fee, slip = 0.001, 0.0005
    # (updated for honest accounting, issue 16: an entry's notional plus its fee is exactly
    # the cash, so cash never goes below 0; the old engine bought cash / price and paid the fee
    # on top, leaving cash at -10.00 -- a hidden 1.001x leverage)
    # bar 0: score 0.7 >= 0.6 -> long, filled at bar 1's open (nothing happens at bar 0)
    eq0 = 10_000.0
    # bar 1: buy at 101 * 1.0005 = 101.0505 for N = 10,000 / 1.001 = 9,990.01; fee 9.99
    buy1 = 101.0505
    notional1 = 10_000 / 1.001
    qty1 = notional1 / buy1  # 98.86155922...
    fee_open_long = notional1 * fee  # 9.99
    cash = 10_000 - qty1 * buy1 - fee_open_long  # 0.00
    eq1 = cash + qty1 * 102.0  # 10,083.88
    # bar 2: held (score 0.7); score 0.2 <= 1 - 0.6 -> reverse to short at bar 3's open
    eq2 = cash + qty1 * 102.5  # 10,133.31
    # bar 3: sell the long at 102 * 0.9995 = 101.949, fee 0.1 % of the notional
    sell3 = 101.949
    fee_close = qty1 * sell3 * fee  # 10.08
    cash += qty1 * sell3 - fee_close  # 10,078.84 - 10.08 = 10,068.76
    pnl_long = qty1 * (sell3 - buy1) - fee_open_long - fee_close  # 98.8616 * 0.8985 - 20.07 = 68.76
    # ... and sell short N = 10,068.76 / 1.001 = 10,058.70 at the same price, fee 10.06
    notional3 = cash / 1.001
    qty_short = notional3 / sell3
    fee_open_short = notional3 * fee
    cash += qty_short * sell3 - fee_open_short  # 20,117.40
    eq3 = cash - qty_short * 103.0  # 20,117.40 - 98.6640 * 103 = 9,955.00
    # score 0.5 is inside (0.4, 0.6): flat -> buy back at bar 4's open 104 * 1.0005 = 104.052
    buy4 = 104.052
    fee_cover = qty_short * buy4 * fee
    cash -= qty_short * buy4 + fee_cover
    pnl_short = qty_short * (sell3 - buy4) - fee_open_short - fee_cover  # -207.49 - 10.06 - 10.27 = -227.82
    eq4 = cash  # 10,068.76 - 227.82 = 9,840.94

    assert eq1 == pytest.approx(10_083.88, abs=0.005)
    assert eq3 == pytest.approx(9_955.00, abs=0.005)
    assert eq4 == pytest.approx(9_840.94, abs=0.005)
    np.testing.assert_allclose(res.equity.values, [eq0, eq1, eq2, eq3, eq4], atol=0.005, rtol=0)
    assert res.position.tolist() == [0, 1, 1, -1, 0]

    fills = res.fills
    assert list(fills.columns) == ["timestamp", "action", "price", "quantity", "pnl", "cumulative_pnl"]
    assert fills["timestamp"].tolist() == [1, 3, 3, 4]
    assert fills["action"].tolist() == ["BUY", "SELL", "SELL", "BUY"]
    np.testing.assert_allclose(fills["price"], [buy1, sell3, sell3, buy4], atol=1e-9)
    np.testing.assert_allclose(fills["quantity"], [qty1, qty1, qty_short, qty_short], atol=1e-9)
    np.testing.assert_allclose(fills["pnl"], [0.0, pnl_long, 0.0, pnl_short], atol=0.005)
    assert round(pnl_long, 2) == 68.76 and round(pnl_short, 2) == -227.82
    assert res.open_trade is None
    assert fills["cumulative_pnl"].iloc[-1] == pytest.approx(eq4 - 10_000, abs=0.005)

    m = res.metrics
    assert m["trades"] == 2
    assert m["win_rate"] == 0.5
    assert m["cum_return"] == pytest.approx(eq4 / 10_000 - 1, abs=1e-12)
    # bars 1, 2 and 3 close with a position: 3 of 5
    assert m["exposure"] == pytest.approx(3 / 5)
    # turnover: traded notional 9,990.01 + 10,078.84 + 10,058.70 + 10,266.19 over the average
    # equity of the five closes, per year of 5 / 252
    traded = notional1 + qty1 * sell3 + qty_short * sell3 + qty_short * buy4
    average_equity = (eq0 + eq1 + eq2 + eq3 + eq4) / 5
    assert traded == pytest.approx(40_393.74, abs=0.01)
    assert m["turnover"] == pytest.approx(traded / average_equity / (5 / 252), rel=1e-12)


def _random_walk(n, seed=0, drift=0.0002, vol=0.01):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(drift, vol, n)))
    prev = np.concatenate(([100.0], close[:-1]))
    open_ = prev * np.exp(rng.normal(0, vol / 4, n))
    return open_, close, rng


def test_metrics_match_independent_statistics():
    open_, close, rng = _random_walk(2000, seed=1)
    score = rng.uniform(size=2000)
    cfg = BacktestConfig(value=0.58, exit_value=0.52, fees_bps=1, slippage_bps=2, periods_per_year=252)
    res = run_backtest(open_, close, score, cfg)
    r = res.returns.values
    m = res.metrics
    assert m["sharpe"] == pytest.approx(stats.sharpe(r, 252), rel=1e-9)
    assert m["sortino"] == pytest.approx(stats.sortino(r, 252), rel=1e-9)
    assert m["annual_volatility"] == pytest.approx(stats.annual_volatility(r, 252), rel=1e-9)
    assert m["max_drawdown"] == pytest.approx(stats.max_drawdown(r), rel=1e-9)
    assert m["annual_return"] == pytest.approx(stats.annual_return(r, 252), rel=1e-9)
    assert m["cum_return"] == pytest.approx(stats.cum_return(r), rel=1e-9)
    assert m["calmar"] == pytest.approx(stats.calmar(r, 252), rel=1e-9)
    assert m["es_95"] == pytest.approx(stats.expected_shortfall(r, 0.95), rel=1e-12)
    skew, kurt = stats.skew_kurtosis(r)
    assert m["skew"] == pytest.approx(skew, rel=1e-6)
    assert m["kurtosis"] == pytest.approx(kurt, rel=1e-6)
    closing = res.fills[res.fills["pnl"] != 0]
    assert m["trades"] == len(closing)
    assert m["win_rate"] == pytest.approx((closing["pnl"] > 0).mean())
    assert m["trades_per_year"] == pytest.approx(m["trades"] / (2000 / 252))
    # realised P&L plus the open trade's unrealised P&L (none if the run ends flat) is the
    # whole P&L (issue 16: the open position is no longer sold at the last close)
    unrealised = res.open_trade["unrealised_pnl"] if res.open_trade else 0.0
    assert res.fills["pnl"].sum() + unrealised == pytest.approx(res.equity.iloc[-1] - cfg.initial_capital,
                                                                 rel=1e-9)


def test_zero_cost_always_long_is_buy_at_next_open_and_hold():
    open_, close, _ = _random_walk(300, seed=2)
    cfg = BacktestConfig(value=0.5, fees_bps=0, slippage_bps=0, long_only=True)
    res = run_backtest(open_, close, np.ones(300), cfg)
    assert res.metrics["cum_return"] == pytest.approx(close[-1] / open_[1] - 1, rel=1e-12)
    # issue 16: the position still held at the end is not sold (the old engine flattened it at
    # bar 299 and counted one closed trade): it is the open trade, and no trade has closed
    assert res.metrics["trades"] == 0 and math.isnan(res.metrics["win_rate"])
    assert res.fills["timestamp"].tolist() == [1]
    ot = res.open_trade
    assert ot["side"] == "long" and ot["entry_timestamp"] == 1 and ot["mark_price"] == close[-1]
    assert ot["unrealised_pnl"] == pytest.approx(100_000 * (close[-1] / open_[1] - 1), rel=1e-9)


def test_signals_act_on_the_next_bar_only():
    open_, close, rng = _random_walk(500, seed=3)
    score = rng.uniform(size=500)
    cfg = BacktestConfig(value=0.6)
    base = run_backtest(open_, close, score, cfg)
    for t in (50, 200, 400):
        changed = score.copy()
        changed[t] = 1.0 - changed[t]
        other = run_backtest(open_, close, changed, cfg)
        # bars up to and including t cannot react to score[t]
        np.testing.assert_array_equal(base.position.values[: t + 1], other.position.values[: t + 1])
        np.testing.assert_array_equal(base.equity.values[: t + 1], other.equity.values[: t + 1])


def test_appending_future_bars_never_changes_past_decisions():
    open_, close, rng = _random_walk(800, seed=4)
    score = rng.uniform(size=800)
    cfg = BacktestConfig(value=0.57, fees_bps=2, slippage_bps=3)
    short = run_backtest(open_[:500], close[:500], score[:500], cfg)
    long_ = run_backtest(open_, close, score, cfg)
    # a position open at the end is marked, not sold, so every bar is identical (the old
    # engine flattened the short run's last bar, which then differed)
    np.testing.assert_array_equal(short.position.values, long_.position.values[:500])
    np.testing.assert_allclose(short.equity.values, long_.equity.values[:500], rtol=0, atol=0)
    before = short.fills.reset_index(drop=True)
    after = long_.fills[long_.fills["timestamp"] < 500].reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)


def test_positions_change_only_on_tradable_bars():
    n = 7 * 200
    idx = pd.date_range("2024-01-02 09:30", periods=n, freq="h")
    open_, close, rng = _random_walk(n, seed=5)
    score = rng.uniform(size=n)
    cfg = BacktestConfig(value=0.55, allowed_hours=(13, 14, 15))
    res = run_backtest(open_, close, score, cfg, index=idx)
    # (no final flatten since issue 16: every fill, the last one too, is on a tradable bar)
    hours = res.fills["timestamp"].dt.hour
    assert hours.isin([13, 14, 15]).all()
    changes = np.flatnonzero(np.diff(res.position.values)) + 1
    assert np.isin(idx[changes].hour, [13, 14, 15]).all()
    # an explicit tradable mask does the same job
    mask = np.isin(idx.hour, [13, 14, 15])
    res2 = run_backtest(open_, close, score, BacktestConfig(value=0.55), index=idx, tradable=mask)
    np.testing.assert_array_equal(res.equity.values, res2.equity.values)


def test_long_only_never_shorts_and_flat_scores_never_trade():
    open_, close, rng = _random_walk(400, seed=6)
    score = rng.uniform(size=400)
    res = run_backtest(open_, close, score, BacktestConfig(value=0.6, long_only=True))
    assert res.position.min() == 0 and res.position.max() == 1
    flat = run_backtest(open_, close, np.full(400, 0.5), BacktestConfig(value=0.6))
    assert flat.metrics["trades"] == 0 and flat.metrics["cum_return"] == 0.0
    assert math.isnan(flat.metrics["win_rate"])


def test_exit_threshold_gives_hysteresis():
    open_ = close = np.full(8, 10.0)
    score = np.array([0.7, 0.55, 0.52, 0.45, 0.3, 0.5, 0.5, 0.5])
    cfg = BacktestConfig(value=0.6, exit_value=0.5, fees_bps=0, slippage_bps=0)
    res = run_backtest(open_, close, score, cfg)
    # enter on 0.7, keep through 0.55 and 0.52 (>= 0.5), drop on 0.45, short on 0.3 (<= 0.4),
    # keep the short on 0.5 (<= 1 - 0.5); still short at the end (issue 16: the open trade is
    # marked, no longer flattened at the last close)
    assert res.position.tolist() == [0, 1, 1, 1, 0, -1, -1, -1]
    assert res.open_trade["side"] == "short" and res.metrics["trades"] == 1
    sym = run_backtest(open_, close, score, BacktestConfig(value=0.6, fees_bps=0, slippage_bps=0))
    assert sym.position.tolist() == [0, 1, 0, 0, 0, -1, 0, 0]


def test_top_pct_cutoffs_come_from_training_scores():
    rng = np.random.default_rng(7)
    train = rng.uniform(0.3, 0.7, 1001)
    cuts = signal_cutoffs(BacktestConfig(kind="top_pct", value=10), train)
    # top 10 % / bottom 10 % of the training scores (value 10 read as 10 %)
    assert cuts[0] == pytest.approx(np.quantile(train, 0.9))
    assert cuts[1] == pytest.approx(np.quantile(train, 0.1))
    assert np.mean(train >= cuts[0]) == pytest.approx(0.1, abs=0.002)
    long_only = signal_cutoffs(BacktestConfig(kind="top_pct", value=0.1, long_only=True), train)
    assert long_only[1] == -np.inf and long_only[3] == -np.inf
    with pytest.raises(ValueError):
        signal_cutoffs(BacktestConfig(kind="top_pct", value=0.1))
    assert signal_cutoffs(BacktestConfig(value=0.65)).tolist() == pytest.approx([0.65, 0.35, 0.65, 0.35])


def test_config_validation():
    with pytest.raises(ValueError):
        BacktestConfig(kind="magic")
    with pytest.raises(ValueError):
        BacktestConfig(value=0.6, exit_value=0.7)
    with pytest.raises(ValueError):
        BacktestConfig(allowed_hours=(25,))
    cfg = BacktestConfig.from_dict({"kind": "top_pct", "value": 15, "allowed_hours": [15, 13], "ignored": 1})
    assert cfg.value == 0.15 and cfg.allowed_hours == (13, 15)


def test_expected_shortfall_when_the_tail_holds_zeros_and_gains():
    # 200 bars rising 0.1 % a bar with two dips: the 5 % tail (10 returns) takes both losses,
    # the flat first bar and the smallest gains
    close = 100 * np.cumprod(np.full(200, 1.001))
    close[50] *= 0.98
    close[120] *= 0.99
    open_ = np.concatenate(([100.0], close[:-1]))
    res = run_backtest(open_, close, np.ones(200), BacktestConfig(value=0.5, fees_bps=0, slippage_bps=0))
    r = res.returns.values
    assert (r < 0).sum() == 2
    assert res.metrics["es_95"] == pytest.approx(stats.expected_shortfall(r, 0.95), rel=1e-12)
    assert res.metrics["es_95"] == pytest.approx(np.sort(r)[:10].mean(), rel=1e-12)


def _kernel_tail(open_, close, score, hint):
    """simulate_nb on one long/short config at 0.5; returns (metrics, cut-off, returns)."""
    from compute.backtest_nb import N_METRICS, new_trace, sim_config, simulate_nb

    n = close.shape[0]
    cfg = BacktestConfig(value=0.5, fees_bps=1, slippage_bps=1)
    metrics, trace = np.empty(N_METRICS), new_trace(n)
    _, cutoff, _ = simulate_nb(open_, close, score, np.zeros(n, dtype=np.int64), np.full(n, 9, dtype=np.int64),
                            signal_cutoffs(cfg)[None, :], np.ones(24, dtype=np.bool_),
                            sim_config(1, 1, 1e5, 252.0, 0.95), np.empty(2 * n), hint, metrics, True, trace)
    equity = trace.equity
    returns = equity / np.concatenate(([1e5], equity[:-1])) - 1.0
    return metrics, cutoff, returns


@pytest.mark.parametrize("case", ["noisy", "rising"])
def test_expected_shortfall_does_not_depend_on_the_tail_hint(case):
    # The hint only narrows what the final selection looks at: too low (a second pass), zero,
    # exact, NaN or positive, the figure is the same and equals the sorted-returns mean.
    rng = np.random.default_rng(7)
    n = 3000
    if case == "noisy":
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        score = rng.uniform(0, 1, n)
    else:  # always long in a rising market: the tail needs the smallest gains
        close = 100 * np.cumprod(np.full(n, 1.001) + rng.uniform(0, 1e-4, n))
        close[[500, 1500]] *= 0.98
        score = np.ones(n)
    open_ = np.concatenate(([100.0], close[:-1]))
    k = int(np.floor((n - 1) * 0.05 + 1e-9)) + 1
    base, cutoff, r = _kernel_tail(open_, close, score, 0.0)
    assert base[M_ES] == pytest.approx(np.sort(r)[:k].mean(), rel=1e-12)
    assert base[M_ES] == pytest.approx(stats.expected_shortfall(r, 0.95), rel=1e-12)
    assert cutoff == np.sort(r)[k - 1]
    if case == "rising":
        assert cutoff > 0.0
    for hint in (-0.5, 0.9 * cutoff if cutoff < 0 else -1e-6, cutoff, float("nan"), 0.3, -1e-12):
        metrics, cut, _ = _kernel_tail(open_, close, score, hint)
        np.testing.assert_array_equal(metrics, base)
        assert cut == cutoff


# ---- options P&L (0DTE) -------------------------------------------------------------

from compute.backtest import run_options_backtest, select_contract  # noqa: E402


def _two_sessions():
    days = pd.to_datetime(["2024-03-04", "2024-03-05"])
    idx = pd.DatetimeIndex([ts for d in days for ts in pd.date_range(d + pd.Timedelta("09:30:00"), periods=7, freq="h")])
    close = np.array([500.0, 501.2, 500.4, 502.0, 503.1, 502.5, 503.0,
                      502.2, 501.0, 499.8, 500.5, 498.9, 499.4, 498.0])
    open_ = np.concatenate(([500.0], close[:-1]))
    return idx.tz_localize("America/New_York"), open_, close


def test_select_contract_nearest_delta_ties_to_lower_iv():
    assert select_contract([0.10, 0.30, 0.41, 0.60], [0.2, 0.2, 0.2, 0.2]) == 1
    # 0.30 and 0.40 are both 0.05 away: the lower implied vol wins
    assert select_contract([0.30, 0.40], [0.25, 0.22]) == 1
    assert select_contract([0.30, 0.40], [0.21, 0.22]) == 0


def test_0dte_call_bought_at_next_open_and_settled_at_intrinsic_matches_mibian():
    mibian = pytest.importorskip("mibian")
    idx, open_, close = _two_sessions()
    iv = 0.20
    cfg = BacktestConfig(value=0.6, fees_bps=0, slippage_bps=0, periods_per_year=1764, long_only=True)
    res = run_options_backtest(open_, close, np.ones(14), cfg, index=idx, implied_vol=iv, rate=0.05,
                               premium_fraction=0.10)

    # entry at bar 1 (10:30), 5.5 hours before the 16:00 expiry, spot = open 500.0. Same-day
    # time runs on the trading clock (compute.instruments.expiry_year_fraction): 5.5 of a
    # session's 6.5 hours of a 252-session year, i.e. 5.5 / 6.5 * 365 / 252 of mibian's days.
    days_left = 5.5 / 6.5 * 365 / 252
    strikes = 500.0 + np.arange(-25, 26)
    calls = [mibian.BS([500.0, k, 5.0, days_left], volatility=20.0) for k in strikes]
    best = int(np.argmin([abs(c.callDelta - 0.35) for c in calls]))
    strike, premium = strikes[best], calls[best].callPrice
    first = res.extras["contracts"].iloc[0]
    assert first["right"] == "C" and first["strike"] == strike
    assert first["premium"] == pytest.approx(premium, rel=1e-6)
    contracts = int(10_000 // (premium * 100))  # 10 % of 100,000 in whole contracts
    assert first["contracts"] == contracts

    # held through the closes, settled at the 15:30 bar's close at intrinsic max(503 - K, 0)
    settle = max(503.0 - strike, 0.0)
    f = res.fills
    assert f["action"].tolist()[:2] == ["BUY", "SELL"]
    assert f["timestamp"].iloc[1] == idx[6]
    assert f["price"].iloc[1] == pytest.approx(settle)
    assert f["pnl"].iloc[1] == pytest.approx(contracts * 100 * (settle - premium), rel=1e-6)
    # marks in between are BSM prices of the same contract (mibian at the 11:30 close)
    mark = mibian.BS([close[1], strike, 5.0, 4.5 / 6.5 * 365 / 252], volatility=20.0).callPrice
    cash_after_entry = 100_000 - contracts * 100 * premium
    assert res.equity.iloc[1] == pytest.approx(cash_after_entry + contracts * 100 * mark, rel=1e-6)

    # next session: a fresh contract bought at the first bar's open (the signal is still long)
    assert f["timestamp"].iloc[2] == idx[7] and f["action"].iloc[2] == "BUY"
    assert res.position.iloc[6] == 0 and res.position.iloc[7] == 1
    assert f["pnl"].sum() == pytest.approx(res.equity.iloc[-1] - 100_000, rel=1e-9)


def test_0dte_short_signal_buys_puts_with_costs_on_premium():
    idx, open_, close = _two_sessions()
    cfg = BacktestConfig(value=0.6, fees_bps=10, slippage_bps=50, periods_per_year=1764, allowed_hours=(13, 14, 15))
    res = run_options_backtest(open_, close, np.zeros(14), cfg, index=idx, implied_vol=0.2)
    contracts = res.extras["contracts"]
    assert (contracts["right"] == "P").all() and (contracts["delta"] < 0).all()
    assert set(res.fills["timestamp"].dt.hour[res.fills["action"] == "BUY"]) <= {13, 14, 15}
    assert res.metrics["trades"] == 2  # one put per session, settled at the close
    assert res.metrics["exposure"] == pytest.approx(6 / 14)  # 13:30-16:00 held, the settling bar included
    assert res.fills["pnl"].sum() == pytest.approx(res.equity.iloc[-1] - 100_000, rel=1e-9)


def test_0dte_decisions_are_the_equity_engines_across_expiries():
    """Hysteresis survives the expiry: a long kept by the exit cut-off buys a fresh call next
    session, exactly where the equity engine is still long."""
    idx, open_, close = _two_sessions()
    score = np.array([0.7, 0.55, 0.55, 0.55, 0.55, 0.55, 0.55, 0.55, 0.55, 0.45, 0.55, 0.55, 0.55, 0.55])
    cfg = BacktestConfig(value=0.6, exit_value=0.5, fees_bps=0, slippage_bps=0, periods_per_year=1764)
    equity = run_backtest(open_, close, score, cfg, index=idx)
    res = run_options_backtest(open_, close, score, cfg, index=idx, implied_vol=0.2)
    f = res.fills
    buys = f.loc[f["action"] == "BUY", "timestamp"].tolist()
    assert buys == [idx[1], idx[7]]  # day 2 re-entry at the first bar: the decision is still long
    assert f["timestamp"].iloc[-1] == idx[10]  # sold at the open after 0.45 < exit 0.5 (flat, not short)
    held = res.position.to_numpy()
    assert np.all(held[held != 0] == equity.position.to_numpy()[held != 0])
    assert equity.position.iloc[7] == 1 and equity.position.iloc[10] == 0


def test_0dte_per_bar_iv_budget_and_listed_strike_grid():
    from functools import partial

    from compute.backtest import PREMIUM_FRACTION
    from compute.greeks import bsm_price
    from compute.marketdata.options import strike_step

    idx, open_, close = _two_sessions()
    iv = np.full(14, 0.2)
    iv[1], iv[2] = np.nan, 0.3  # no IV at 10:30: the entry waits for 11:30 and uses that bar's IV
    iv[3:] = 0.5  # later IVs do not move the held contract's marks (sticky strike)
    cfg = BacktestConfig(value=0.6, fees_bps=0, slippage_bps=0, periods_per_year=1764, long_only=True)
    res = run_options_backtest(open_, close, np.ones(14), cfg, index=idx, implied_vol=iv,
                               strike_step=partial(strike_step, "AAPL"))  # AAPL at 500: $10 strikes
    first = res.extras["contracts"].iloc[0]
    assert first["timestamp"] == idx[2] and first["implied_vol"] == 0.3 and first["strike"] % 10 == 0
    assert first["contracts"] == int(100_000 * PREMIUM_FRACTION // (first["premium"] * 100))
    years = 2.5 / 6.5 / 252  # the 12:30 bar closes at 13:30, 2.5 h before the expiry
    mark = float(bsm_price(close[3], first["strike"], years, 0.045, 0.0, 0.3, True))
    cash = 100_000 - first["contracts"] * 100 * first["premium"]
    assert res.equity.iloc[3] == pytest.approx(cash + first["contracts"] * 100 * mark, rel=1e-9)



def test_short_borrow_fee_hand_worked():
    # flat prices at 100, no fees: a 2.52 %/year borrow fee over 252 bars a year is 1 bp of
    # the short's notional (10,000) per close held = 1.00 a bar
    price = np.full(6, 100.0)
    cfg = BacktestConfig(value=0.6, fees_bps=0, slippage_bps=0, borrow_bps=252, initial_capital=10_000)
    res = run_backtest(price, price, [0.1, 0.1, 0.1, 0.5, 0.5, 0.5], cfg)
    # short sold at bar 1's open, held through the closes of bars 1-3, covered at bar 4's open
    assert res.position.tolist() == [0, -1, -1, -1, 0, 0]
    np.testing.assert_allclose(res.equity.values, [10_000, 9_999, 9_998, 9_997, 9_997, 9_997], atol=1e-9)
    assert res.fills["pnl"].tolist() == pytest.approx([0.0, -3.0])
    assert res.metrics["trades"] == 1 and res.metrics["win_rate"] == 0.0
    # still short at the end: the open trade carries its borrow fees in its unrealised P&L
    held = run_backtest(price, price, np.full(6, 0.1), cfg)
    assert held.open_trade["side"] == "short" and held.open_trade["borrow_fees"] == pytest.approx(5.0)
    assert held.open_trade["unrealised_pnl"] == pytest.approx(-5.0)
    assert held.metrics["trades"] == 0 and held.equity.iloc[-1] == pytest.approx(9_995.0)
