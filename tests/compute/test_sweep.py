"""The multi-configuration sweep kernel must agree with single backtests, config by config."""

import math

import numpy as np
import pandas as pd
import pytest

from compute import stats
from compute.backtest import BacktestConfig, run_backtest, signal_cutoffs
from compute.backtest_nb import METRIC_NAMES
from compute.sweep import SweepGrid, make_grid, run_sweep


def _hourly_market(n_days=120, seed=0):
    idx = pd.DatetimeIndex([
        ts for day in pd.bdate_range("2024-01-02", periods=n_days)
        for ts in pd.date_range(day + pd.Timedelta("09:30:00"), periods=7, freq="h")
    ])
    n = len(idx)
    rng = np.random.default_rng(seed)
    close = 400 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.concatenate(([400.0], close[:-1])) * np.exp(rng.normal(0, 0.001, n))
    score = np.clip(0.5 + 0.1 * rng.standard_normal(n), 0, 1)
    return idx, open_, close, score


def _assert_same_metrics(sweep_metrics, single_metrics):
    for name in METRIC_NAMES:
        a, b = sweep_metrics[name], single_metrics[name]
        if isinstance(b, float) and math.isnan(b):
            assert math.isnan(a), name
        else:
            assert a == pytest.approx(b, rel=1e-12, abs=1e-12), name


def test_sweep_equals_single_backtests_for_every_config():
    idx, open_, close, score = _hourly_market()
    n = len(idx)
    segments = np.repeat(np.arange(3), [n // 3, n // 3, n - 2 * (n // 3)])
    rng = np.random.default_rng(1)
    train_scores = [np.clip(0.5 + 0.1 * rng.standard_normal(300 + 100 * s), 0, 1) for s in range(3)]
    base = BacktestConfig(periods_per_year=1764)
    configs = [
        BacktestConfig(value=0.55, periods_per_year=1764),
        BacktestConfig(value=0.6, exit_value=0.52, fees_bps=3, slippage_bps=5, periods_per_year=1764),
        BacktestConfig(value=0.55, long_only=True, allowed_hours=(13, 14, 15), periods_per_year=1764),
        BacktestConfig(kind="top_pct", value=0.1, periods_per_year=1764),
        BacktestConfig(kind="top_pct", value=0.15, exit_value=0.3, allowed_hours=(10, 11), periods_per_year=1764),
        BacktestConfig(value=0.52, top_pct=0.2, fees_bps=0, slippage_bps=0, periods_per_year=1764),
        BacktestConfig(value=0.9, periods_per_year=1764),  # never trades
    ]
    grid = SweepGrid.from_configs(configs)
    result = run_sweep(open_, close, score, grid, index=idx, segments=segments, train_scores=train_scores)
    assert len(result) == len(configs)
    for i, cfg in enumerate(configs):
        assert grid.config(i) == cfg
        cuts = np.stack([signal_cutoffs(cfg, train_scores[s]) for s in range(3)])
        single = run_backtest(open_, close, score, cfg, index=idx, segments=segments, segment_cutoffs=cuts)
        _assert_same_metrics(result.metrics_of(i), single.metrics)
    assert result.metrics["trades"][-1] == 0
    assert base.periods_per_year == grid.base.periods_per_year


def test_full_grid_matches_single_backtests_on_a_sample():
    idx, open_, close, score = _hourly_market(seed=2)
    grid = make_grid(
        thresholds=np.round(np.linspace(0.5, 0.7, 11), 3),
        exit_thresholds=[0.5, 0.55],
        allowed_hours=[None, (13, 14, 15), (9, 10, 11, 12)],
        fees_bps=[0.0, 2.0],
        long_only=[False, True],
        base=BacktestConfig(periods_per_year=1764),
    )
    result = run_sweep(open_, close, score, grid, index=idx)
    assert result.to_frame().shape[0] == len(grid)
    for i in np.random.default_rng(0).choice(len(grid), 12, replace=False):
        single = run_backtest(open_, close, score, grid.config(i), index=idx)
        _assert_same_metrics(result.metrics_of(i), single.metrics)


def test_sweep_result_does_not_depend_on_grid_order_or_threads():
    # Neighbouring configurations hand each other a tail hint; whatever the order (and so the
    # hints), every figure is bit-for-bit the same.
    import numba

    idx, open_, close, score = _hourly_market(seed=3)
    grid = make_grid(thresholds=np.round(np.linspace(0.5, 0.7, 21), 3), exit_thresholds=[0.45, 0.5],
                     fees_bps=[0.0, 1.0, 5.0], allowed_hours=[None, (13, 14, 15)],
                     base=BacktestConfig(periods_per_year=1764))
    ordered = run_sweep(open_, close, score, grid, index=idx)
    perm = np.random.default_rng(0).permutation(len(grid))
    shuffled_grid = SweepGrid(grid.kind[perm], grid.value[perm], grid.exit_value[perm], grid.top_pct[perm],
                              grid.long_only[perm], grid.hours_id[perm], grid.fees_bps[perm],
                              grid.slippage_bps[perm], grid.hour_sets, grid.base)
    shuffled = run_sweep(open_, close, score, shuffled_grid, index=idx)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single_thread = run_sweep(open_, close, score, grid, index=idx)
    finally:
        numba.set_num_threads(threads)
    for name in METRIC_NAMES:
        np.testing.assert_array_equal(shuffled.metrics[name], ordered.metrics[name][perm], err_msg=name)
        np.testing.assert_array_equal(single_thread.metrics[name], ordered.metrics[name], err_msg=name)


def test_spec_example_grid_has_36_configs():
    grid = make_grid(thresholds=[0.5, 0.6, 0.7, 0.8], top_pct=[5, 10, 15],
                     allowed_hours=[[9, 10, 11], [12, 13, 14], [9, 10, 11, 12, 13, 14, 15]])
    assert len(grid) == 36
    assert sorted(set(grid.top_pct)) == pytest.approx([0.05, 0.10, 0.15])
    frame = grid.to_frame()
    assert frame["allowed_hours"].iloc[0] == [9, 10, 11]


def test_grid_skips_exits_above_entry_and_slices():
    grid = make_grid(thresholds=[0.55, 0.6], exit_thresholds=[0.5, 0.58], fees_bps=[1, 2, 3])
    # (0.55, 0.5), (0.6, 0.5), (0.6, 0.58) x 3 fee levels
    assert len(grid) == 9
    chunk = grid.slice(3, 6)
    assert len(chunk) == 3 and chunk.config(0) == grid.config(3)
    with pytest.raises(ValueError):
        make_grid()
    with pytest.raises(ValueError):
        make_grid(top_pct=[0.7])


def test_top_pct_needs_training_scores():
    idx, open_, close, score = _hourly_market(n_days=10)
    with pytest.raises(ValueError):
        run_sweep(open_, close, score, make_grid(top_pct=[0.1]), index=idx)
    res = run_sweep(open_, close, score, make_grid(top_pct=[0.1]), index=idx, train_scores=score[:30])
    single = run_backtest(open_, close, score, BacktestConfig(kind="top_pct", value=0.1), index=idx,
                          train_scores=score[:30])
    _assert_same_metrics(res.metrics_of(0), single.metrics)


def test_deflated_sharpe_of_a_sweep():
    idx, open_, close, score = _hourly_market(seed=3)
    grid = make_grid(thresholds=np.linspace(0.5, 0.7, 21), base=BacktestConfig(periods_per_year=1764))
    result = run_sweep(open_, close, score, grid, index=idx)
    dsr = result.deflated_sharpe()
    ok = np.isfinite(dsr)
    assert ok.any() and np.all((dsr[ok] >= 0) & (dsr[ok] <= 1))
    # deflating against many trials can only lower the probability of skill
    psr = stats.probabilistic_sharpe_ratio(result.metrics["sharpe"], 0.0, result.metrics["n_bars"],
                                           result.metrics["skew"], result.metrics["kurtosis"], 1764)
    assert np.all(dsr[ok] <= psr[ok] + 1e-15)
    i = int(np.flatnonzero(ok)[0])
    sharpe_var = np.var(result.metrics["sharpe"][np.isfinite(result.metrics["sharpe"])], ddof=1)
    assert dsr[i] == pytest.approx(stats.deflated_sharpe_ratio(
        result.metrics["sharpe"][i], len(grid), int(result.metrics["n_bars"][i]),
        result.metrics["skew"][i], result.metrics["kurtosis"][i], sharpe_var, 1764), rel=1e-12)


def _daily_market(n=1200, seed=0, drift=0.0002, vol=0.012):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(drift, vol, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, 0.002, n))
    z = np.zeros(n)
    shocks = rng.standard_normal(n)
    for t in range(1, n):
        z[t] = 0.8 * z[t - 1] + 0.6 * shocks[t]
    return open_, close, 1.0 / (1.0 + np.exp(-0.4 * z))


@pytest.mark.parametrize("seed,slippage,borrow", [(0, 0.0, 0.0), (1, 2.0, 50.0), (2, 5.0, 300.0)])
def test_fee_levels_sharing_one_pass_equal_single_backtests(seed, slippage, borrow):
    # Configurations differing only in fees share one reference run (compute.sweep_nb): longs,
    # shorts paying borrow, reversals, hysteresis, long-only, fees up to 50 bps.
    open_, close, score = _daily_market(seed=seed)
    idx = pd.bdate_range("2015-01-02", periods=len(close))
    base = BacktestConfig(periods_per_year=252, slippage_bps=slippage, borrow_bps=borrow)
    grid = make_grid(thresholds=[0.52, 0.56, 0.6], exit_thresholds=[0.45, 0.5],
                     fees_bps=[0, 0.5, 3, 10, 50], long_only=[False, True], base=base)
    result = run_sweep(open_, close, score, grid, index=idx)
    assert min(result.metrics["trades"]) > 10
    for i in range(len(grid)):
        single = run_backtest(open_, close, score, grid.config(i), index=idx)
        _assert_same_metrics(result.metrics_of(i), single.metrics)


def test_fee_group_with_holding_limits_and_a_wiped_out_short():
    # Holding limits are part of the shared path. An always-short book on a price that rises
    # twenty-fold is wiped out (equity <= 0), where the shared path does not hold: those
    # configurations run alone. Every one equals its single backtest.
    from compute.sweep_nb import evaluate_configs, fee_groups

    open_, close, score = _daily_market(n=800, seed=4, drift=0.004, vol=0.01)
    n = len(close)
    signal = signal_cutoffs(BacktestConfig(value=0.52, exit_value=0.5), None)
    always_short = np.array([1.2, 1.1, 1.2, 1.1])  # short entry and exit above every score
    rows = [(signal, fee, 0) for fee in (0.0, 2.0, 20.0)] + [(signal, fee, 7) for fee in (0.0, 2.0, 20.0)] \
        + [(always_short, fee, 0) for fee in (0.0, 2.0, 20.0)]
    k = len(rows)
    cuts = np.stack([r[0] for r in rows])[:, None, :]
    fees = np.array([r[1] for r in rows])
    holds = np.array([r[2] for r in rows], dtype=float)
    slip = np.full(k, 3e-4)
    order, starts = fee_groups(cuts, np.zeros(k, dtype=np.int64), slip, holds)
    assert np.diff(starts).tolist() == [3, 3, 3]
    out = evaluate_configs(open_, close, score, np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64), cuts,
                           np.zeros(k, dtype=np.int64), np.array([[False, True]]), fees * 1e-4, slip, BacktestConfig().initial_capital, 252.0,
                           0.95, 2, 0.0, holds)
    for i, (cut, fee, hold) in enumerate(rows):
        cfg = BacktestConfig(fees_bps=fee, slippage_bps=3, periods_per_year=252)
        single = run_backtest(open_, close, score, cfg, tradable=np.ones(n, dtype=bool),
                              segment_cutoffs=cut[None, :], max_hold=hold)
        _assert_same_metrics(dict(zip(METRIC_NAMES, out[i])), single.metrics)
    assert out[3:6, METRIC_NAMES.index("trades")].min() > out[0:3, METRIC_NAMES.index("trades")].max()
    assert (out[6:, METRIC_NAMES.index("final_equity")] <= 0).all()
