"""Honest accounting against an independent engine: vectorbt's ``Portfolio.from_signals`` on
the same signals, fills, fees and slippage must give the same equity path, the same trades
(dates, prices, sizes, P&L), the same open trade and every metric to 1e-9.

Fill convention matched: our score of bar t is executed at bar t + 1's open, so vectorbt gets
the target position of bar t + 1 as its signal at bar t + 1 with ``price=open`` (valuation at
the close), ``size=inf`` (all the cash, fees included: vectorbt sizes a buy as cash /
(fill x (1 + fees))) and ``upon_opposite_entry="reverse"``."""


import numpy as np
import pandas as pd
import pytest
import scipy.stats

from compute.backtest import BacktestConfig, run_backtest
from tests.compute.vbt_oracle import vectorbt_portfolio

vbt = pytest.importorskip("vectorbt")  # in the test extra; importorskip only guards odd envs

N = 600
PPY = 252
YEAR = dict(year_freq=f"{PPY} days")


def _bars(seed):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0002, 0.01, N)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, 0.0025, N))
    return open_, close, rng.uniform(size=N)


def _vectorbt(open_, close, score, idx, v, long_only, fees, slippage, capital):
    desired = np.where(score >= v, 1, np.where(score <= 1 - v, 0 if long_only else -1, 0))
    return vectorbt_portfolio(open_, close, desired, idx, fees, slippage, capital)


CASES = [
    # (seed, long_only, fees_bps, slippage_bps, how the run ends)
    (3, True, 10, 5, "flat"),
    (3, False, 10, 5, "flat"),
    (4, True, 1, 2, "long"),
    (5, False, 25, 0, "short"),
]


@pytest.mark.parametrize("seed, long_only, fees_bps, slippage_bps, ending", CASES)
def test_engine_equals_vectorbt_from_signals(seed, long_only, fees_bps, slippage_bps, ending):
    open_, close, score = _bars(seed)
    score[-30:] = {"flat": 0.5, "long": 0.9, "short": 0.1}[ending]
    idx = pd.date_range("2020-01-01", periods=N, freq="D")
    cfg = BacktestConfig(value=0.6, fees_bps=fees_bps, slippage_bps=slippage_bps, long_only=long_only,
                         initial_capital=10_000, periods_per_year=PPY)
    res = run_backtest(pd.Series(open_, idx), pd.Series(close, idx), pd.Series(score, idx), cfg)
    pf = _vectorbt(open_, close, score, idx, 0.6, long_only, fees_bps * 1e-4, slippage_bps * 1e-4, 10_000)

    # equity path, returns and position
    np.testing.assert_allclose(res.equity.values, pf.value().values, rtol=1e-9, atol=0)
    np.testing.assert_allclose(res.returns.values, pf.returns().values, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(res.position.values, np.sign(pf.assets().values).astype(int))
    if long_only:
        assert pf.cash().min() >= -1e-9  # never levered: a long leaves no negative cash

    # trades: each is an opening fill followed by its closing fill; the open one is last
    trades = pf.trades.records_readable
    closed = trades[trades["Status"] == "Closed"].reset_index(drop=True)
    fills = res.fills
    n_closed = len(closed)
    entries, exits = fills.iloc[0:2 * n_closed:2], fills.iloc[1:2 * n_closed:2]
    assert n_closed > 20
    assert entries["timestamp"].tolist() == closed["Entry Timestamp"].tolist()
    assert exits["timestamp"].tolist() == closed["Exit Timestamp"].tolist()
    np.testing.assert_allclose(entries["price"], closed["Avg Entry Price"], rtol=1e-12)
    np.testing.assert_allclose(exits["price"], closed["Avg Exit Price"], rtol=1e-12)
    np.testing.assert_allclose(entries["quantity"], closed["Size"], rtol=1e-9)
    np.testing.assert_allclose(exits["pnl"], closed["PnL"], rtol=1e-9, atol=1e-9)

    still_open = trades[trades["Status"] == "Open"]
    if ending == "flat":
        assert still_open.empty and res.open_trade is None and len(fills) == 2 * n_closed
    else:
        # marked at the last close with no exit fee, outside the closed-trade count
        (_, vt), = still_open.iterrows()
        ot = res.open_trade
        assert len(fills) == 2 * n_closed + 1
        assert ot["side"] == ending == vt["Direction"].lower()
        assert ot["entry_timestamp"] == vt["Entry Timestamp"]
        assert ot["entry_price"] == pytest.approx(vt["Avg Entry Price"], rel=1e-12)
        assert ot["quantity"] == pytest.approx(vt["Size"], rel=1e-9)
        assert ot["mark_price"] == close[-1] == pytest.approx(vt["Avg Exit Price"], rel=1e-12)
        assert vt["Exit Fees"] == 0.0
        assert ot["entry_fee"] == pytest.approx(vt["Entry Fees"], rel=1e-9)
        assert ot["unrealised_pnl"] == pytest.approx(vt["PnL"], rel=1e-9)
        assert fills["cumulative_pnl"].iloc[-1] + ot["unrealised_pnl"] == pytest.approx(
            res.equity.iloc[-1] - 10_000, rel=1e-9)

    # every metric
    m = res.metrics
    r = pf.returns().values
    years = N / PPY
    orders = pf.orders.records_readable
    expected = {
        "sharpe": pf.sharpe_ratio(**YEAR),
        "sortino": pf.sortino_ratio(**YEAR),
        "cum_return": pf.total_return(),
        "annual_return": pf.annualized_return(**YEAR),
        "annual_volatility": pf.annualized_volatility(**YEAR),
        "max_drawdown": pf.max_drawdown(),
        "calmar": pf.calmar_ratio(**YEAR),
        "win_rate": pf.trades.closed.win_rate(),
        "trades": pf.trades.closed.count(),
        "trades_per_year": pf.trades.closed.count() / years,
        "es_95": pf.returns_acc.cond_value_at_risk(cutoff=0.05),
        "turnover": float((orders["Size"] * orders["Price"]).sum()) / pf.value().mean() / years,
        "exposure": pf.position_coverage(),
        "final_equity": pf.final_value(),
        "n_bars": N,
        "skew": scipy.stats.skew(r),
        "kurtosis": scipy.stats.kurtosis(r, fisher=False),
    }
    assert set(expected) == set(m)
    for name, value in expected.items():
        assert m[name] == pytest.approx(float(value), rel=1e-9, abs=1e-12), name
