"""Walk-forward: purged/embargoed past-only folds, no look-ahead, and the leak check (a real
trainer on shuffled labels must fail the gate while a genuinely predictive signal passes)."""

import numpy as np
import pandas as pd
import pytest

from compute import stats
from compute.backtest import BacktestConfig
from compute.gates import evaluate_gate
from compute.train import train_model
from compute.walkforward import WalkForwardConfig, run_walk_forward, walk_forward_splits

# x0 carries the signal; 19 noise features make a model fitted to shuffled labels point in
# a random direction with little weight on x0, as a real leak-free pipeline would
FEATURES = [f"x{i}" for i in range(20)]
TRAIN_CONFIG = {"model": "logistic", "epochs": 15, "learning_rate": 0.05, "batch_size": 64, "seed": 0}


def test_splits_by_hand():
    folds = walk_forward_splits(12, n_splits=3, label_horizon=1, embargo=1)
    # test_size 12 // 4 = 3: tests [3, 6), [6, 9), [9, 12); training stops purge 1 + embargo 1
    # bars before each test fold: [0, 1), [0, 4), [0, 7)
    assert [f.test.tolist() for f in folds] == [[3, 4, 5], [6, 7, 8], [9, 10, 11]]
    assert [f.train.tolist() for f in folds] == [[0], [0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6]]


@pytest.mark.parametrize("horizon,embargo", [(1, 0), (5, 0), (5, 3), (63, 10)])
def test_training_labels_never_reach_the_test_fold(horizon, embargo):
    for fold in walk_forward_splits(2000, n_splits=5, label_horizon=horizon, embargo=embargo):
        # row t's label uses bars up to t + horizon: all before the test fold, plus the gap
        assert fold.train.max() + horizon + embargo < fold.test_start
        assert fold.train.min() == 0  # expanding window


def test_fixed_size_folds_do_not_move_when_rows_are_appended():
    short = walk_forward_splits(1000, None, 5, 2, test_size=200, min_train=300)
    long_ = walk_forward_splits(1600, None, 5, 2, test_size=200, min_train=300)
    for a, b in zip(short[:-1], long_):
        np.testing.assert_array_equal(a.train, b.train)
        np.testing.assert_array_equal(a.test, b.test)
    assert short[-1].test_end == 1000 and len(long_) == 7
    with pytest.raises(ValueError):
        walk_forward_splits(10, n_splits=3, label_horizon=5)


def synthetic_matrix(n=2520, edge=0.003, seed=0):
    """Daily bars whose next-bar return depends on feature x0 (edge per unit of x0)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(FEATURES)))
    r = np.empty(n)
    r[0] = 0.0
    r[1:] = edge * x[:-1, 0] + 0.01 * rng.standard_normal(n - 1)
    open_ = 100 * np.exp(np.concatenate(([0.0], np.cumsum(r[:-1]))))
    close = open_ * (1 + r)
    label = np.full(n, np.nan)
    label[:-1] = np.where(r[1:] > 0, 1.0, -1.0)
    idx = pd.bdate_range("2014-01-02", periods=n)
    df = pd.DataFrame(x, columns=FEATURES, index=idx)
    df["open"] = open_
    df["close"] = close
    df["label"] = label
    return df


def logistic_fit_predict(train_df, test_df):
    model = train_model(train_df[FEATURES], train_df["label"], TRAIN_CONFIG)
    return model.score(train_df[FEATURES]), model.score(test_df[FEATURES])


def shuffled_fit_predict(train_df, test_df):
    # labels permuted within the training fold: any remaining "skill" would be a leak
    rng = np.random.default_rng(len(train_df))
    shuffled = train_df.assign(label=rng.permutation(train_df["label"].to_numpy()))
    return logistic_fit_predict(shuffled, test_df)


SWING = dict(fees_bps=1.0, slippage_bps=3.0, periods_per_year=252)


@pytest.mark.parametrize("bt", [BacktestConfig(value=0.55, **SWING), BacktestConfig(kind="top_pct", value=0.2, **SWING)])
def test_leak_check_shuffled_labels_fail_the_gate_real_signal_passes(bt):
    df = synthetic_matrix()
    cfg = WalkForwardConfig(backtest=bt, n_splits=5, label_horizon=1, embargo=2)
    honest = run_walk_forward(df, logistic_fit_predict, cfg)
    gate = evaluate_gate("swing", "Balanced", honest.metrics)
    assert gate["pass"], gate["reasons"]
    assert honest.metrics["sharpe"] > 1.5

    leaky = run_walk_forward(df, shuffled_fit_predict, cfg)
    gate = evaluate_gate("swing", "Balanced", leaky.metrics)
    assert not gate["pass"]
    assert not leaky.metrics["sharpe"] >= 1.0  # NaN (no trades) or low


def test_appending_future_bars_never_changes_past_decisions():
    df = synthetic_matrix(n=1800, seed=3)
    cfg = WalkForwardConfig(backtest=BacktestConfig(kind="top_pct", value=0.25, **SWING), n_splits=None,
                            test_size=250, min_train=500, label_horizon=1, embargo=1)
    short = run_walk_forward(df.iloc[:1300], logistic_fit_predict, cfg)
    full = run_walk_forward(df, logistic_fit_predict, cfg)
    cut = 1300 - 500 - 1  # the short run flattens at its last bar
    pd.testing.assert_series_equal(short.oos_scores, full.oos_scores.iloc[:800])
    np.testing.assert_array_equal(short.backtest.position.values[:cut], full.backtest.position.values[:cut])
    np.testing.assert_array_equal(short.backtest.equity.values[:cut], full.backtest.equity.values[:cut])
    np.testing.assert_array_equal(short.cutoffs, full.cutoffs[: len(short.cutoffs)])


def test_cutoffs_fitted_on_training_scores_only_and_fold_figures():
    df = synthetic_matrix(n=1200, seed=5)
    seen = []

    def fit_predict(train_df, test_df):
        # training scores from one distribution, test scores from another: the cut-offs must
        # be the training quantiles
        seen.append((len(train_df), test_df.index[0]))
        rng = np.random.default_rng(len(train_df))
        return rng.uniform(0.4, 0.6, len(train_df)), rng.uniform(0.0, 1.0, len(test_df))

    cfg = WalkForwardConfig(backtest=BacktestConfig(kind="top_pct", value=0.1, **SWING), n_splits=4,
                            label_horizon=5, embargo=2)
    res = run_walk_forward(df, fit_predict, cfg)
    for fold, (n_train, _) in zip(res.folds, seen):
        train_scores = np.random.default_rng(n_train).uniform(0.4, 0.6, n_train)
        assert fold["cutoffs"][0] == pytest.approx(np.quantile(train_scores, 0.9))
        assert fold["cutoffs"][1] == pytest.approx(np.quantile(train_scores, 0.1))
        assert fold["train_end"] == fold["test_start"] - 5 - 2
    sharpes = [f["sharpe"] for f in res.folds]
    assert res.metrics["fold_sharpe_std"] == pytest.approx(np.std(sharpes, ddof=1))
    assert res.metrics["n_folds"] == 4
    assert sum(f["trades"] for f in res.folds) == res.metrics["trades"]
    r = res.backtest.returns.values
    assert res.metrics["sharpe"] == pytest.approx(stats.sharpe(r, 252), rel=1e-9)
    assert 0.0 <= res.metrics["deflated_sharpe"] <= 1.0
    assert res.metrics["deflated_sharpe"] == pytest.approx(res.metrics["psr"])  # one trial
    assert res.segments.tolist() == sorted(res.segments.tolist()) and res.segments.max() == 3


def test_config_from_spec_body():
    cfg = WalkForwardConfig.from_dict({"kind": "thresholds", "value": 0.7, "splits": 5,
                                       "allowed_hours": [9, 10, 11], "embargo": 3})
    assert cfg.n_splits == 5 and cfg.embargo == 3
    assert cfg.backtest.value == 0.7 and cfg.backtest.allowed_hours == (9, 10, 11)
