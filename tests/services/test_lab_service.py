"""Lab service on both catalog back ends (no Ray): matrix idempotence and sensitivity,
verified reads, walk-forward inputs, result rows, admin delete, and a hand-worked 0DTE trade."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cluster.artifacts import ArtifactCorrupted, ArtifactStore
from cluster.catalog import LeaderboardEntry
from services.lab import backtests, common, health, matrices, models
from services.lab.inputs import model_inputs
from compute.greeks import bsm_price
from compute.marketdata import make_provider
from compute.marketdata.options import RISK_FREE_RATE
from serve_app.users import create_user


class CountingProvider:
    """The synthetic provider, counting every data call (to prove a request is not recomputed)."""

    def __init__(self, seed=7):
        self.inner = make_provider("synthetic", seed=seed)
        self.calls = 0

    @property
    def data_version(self):
        return self.inner.data_version

    @property
    def name(self):
        return "synthetic"

    def __getattr__(self, attr):
        fn = getattr(self.inner, attr)

        def counted(*a, **k):
            self.calls += 1
            return fn(*a, **k)

        return counted


@pytest.fixture
def lab(catalog, tmp_path):
    store = ArtifactStore(f"file://{tmp_path / 'artifacts'}")
    users = [create_user(catalog, name, "pw-pw-pw-pw-12").id for name in ("ann", "ben")]
    return catalog, store, users


def test_matrix_idempotent_sensitive_and_verified(lab):
    catalog, store, (ann, ben) = lab
    provider = CountingProvider()
    mid = models.create_model(catalog, ann, "swingsigma_default", config={"ticker": "AAPL"}).model_id
    first, created = matrices.build_matrix(catalog, store, provider, ann, mid, "2023-01-01", "2023-06-30")
    assert created and provider.calls > 0 and first["path"] == f"matrices/{mid}_{first['matrix_sha'][:8]}.parquet"
    provider.calls = 0
    again, created = matrices.build_matrix(catalog, store, provider, ann, mid, "2023-01-01", "2023-06-30")
    assert again == first and not created and provider.calls == 0  # same sha, nothing fetched

    shas = {first["matrix_sha"]}
    for args in (("2023-01-02", "2023-06-30", None), ("2023-01-01", "2023-06-29", None),
                 ("2023-01-01", "2023-06-30", ["RSI14", "EMA20"]), ("2023-01-01", "2023-06-30", ["RSI10", "EMA20"]),
                 ("2023-01-01", "2023-06-30", ["EMA20", "RSI10"])):
        shas.add(matrices.build_matrix(catalog, store, provider, ann, mid, args[0], args[1], args[2])[0]["matrix_sha"])
    other_data = matrices.build_matrix(catalog, store, CountingProvider(seed=8), ann, mid, "2023-01-01", "2023-06-30")[0]
    shas.add(other_data["matrix_sha"])
    msft = models.create_model(catalog, ann, "swingsigma_default", config={"ticker": "MSFT"}).model_id
    shas.add(matrices.build_matrix(catalog, store, provider, ann, msft, "2023-01-01", "2023-06-30")[0]["matrix_sha"])
    assert len(shas) == 8  # every input change changes the sha

    model = models.get_model(catalog, ann, mid)
    row = matrices.get_matrix(catalog, model.id, first["matrix_sha"][:12])
    frame = matrices.load_matrix(store, row)
    assert len(frame) == first["rows"] and frame["ticker"].eq("AAPL").all()
    assert pd.Timestamp(frame["session_date"].min()) >= pd.Timestamp("2023-01-01")
    # a byte flipped on disk is caught on read
    full = store._full(row.path)
    data = bytearray(open(full, "rb").read())
    data[len(data) // 2] ^= 0xFF
    import os

    os.chmod(full, 0o644)
    with open(full, "wb") as handle:
        handle.write(bytes(data))
    with pytest.raises(ArtifactCorrupted):
        matrices.load_matrix(store, row)
    with pytest.raises(LookupError):
        models.get_model(catalog, ben, mid)  # another user's model does not exist for ben
    with pytest.raises(common.LabInputError) as err:
        matrices.build_matrix(catalog, store, provider, ann, mid, "2023-06-30", "2023-01-01")
    assert err.value.field == "end_date"


def test_model_inputs_walk_forward_and_results(lab):
    catalog, store, (ann, _) = lab
    provider = make_provider("synthetic", seed=7)
    mid = models.create_model(catalog, ann, "swingsigma_default", config={"ticker": "AAPL"}).model_id
    matrices.build_matrix(catalog, store, provider, ann, mid, "2022-01-01", "2023-12-31")
    inputs = model_inputs(catalog, store, ann, mid, n_splits=4)
    n_oos = len(inputs.matrix) - inputs.first
    assert inputs.scores.shape == inputs.segments.shape == inputs.open.shape == (n_oos,)
    assert np.all((inputs.scores >= 0) & (inputs.scores <= 1))
    assert inputs.periods_per_year == 252.0 and inputs.label_horizon == 5 and inputs.embargo == 5
    assert (inputs.fees_bps, inputs.slippage_bps) == (1.0, 3.0)  # Balanced swing policy
    for fold in inputs.folds:  # purge + embargo: training ends horizon + embargo bars before the test
        assert int(fold.train[-1]) + 1 == fold.test_start - 10
        assert len(inputs.train_scores[fold.index]) == len(fold.train)
    # replaying the stored fold scores reproduces a fresh walk-forward run

    res = backtests.walk_forward_from_inputs(inputs, {"kind": "top_pct", "value": 0.2})
    assert res.metrics["n_folds"] == 4 and np.allclose(res.oos_scores.to_numpy(), inputs.scores)

    metrics = backtests.metrics_view(res.metrics)
    bt_id, entry_id = backtests.record_backtest_result(
        catalog, user_id=ann, model_pk=inputs.model_pk, model_id=mid, pack_id="swingsigma", risk_profile="Balanced",
        config={"kind": "top_pct", "value": 0.2}, metrics=metrics, gate={"pass": False, "reasons": ["x"]}, score=float("-inf"),
        folds=res.folds)
    with catalog.session() as s:
        entry = s.get(LeaderboardEntry, entry_id)
        assert entry.backtest_id == bt_id and entry.score is None and entry.gate_reasons == ["x"]
        assert entry.sharpe == pytest.approx(res.metrics["sharpe"]) and entry.trades == res.metrics["trades"]
        assert entry.cum_ret == pytest.approx(res.metrics["cum_return"])
    assert models.get_model(catalog, ann, mid).metrics["backtest_id"] == bt_id
    assert health.model_health(catalog, ann, mid)["performance"] == "below_target"
    assert health.pack_health(catalog, ann, "swingsigma")["models_count"] == 1


def test_delete_removes_only_unshared_artifacts(lab):
    catalog, store, (ann, ben) = lab
    provider = make_provider("synthetic", seed=7)
    paths = []
    for user in (ann, ben):
        mid = models.create_model(catalog, user, "swingsigma_default", config={"ticker": "AAPL"}).model_id
        paths.append(matrices.build_matrix(catalog, store, provider, user, mid, "2023-01-01", "2023-03-31")[0]["path"])
    assert paths[0] == paths[1]  # same request, same content-addressed file
    ann_pk = models.get_model(catalog, ann, "AAPL_equity_5d_daily").id
    report = models.delete_model_admin(catalog, store, ann_pk)
    assert report["deleted_artifacts"] == [] and report["kept_shared_artifacts"] == [paths[0]]
    assert store.exists(paths[0]) and models.get_model(catalog, ben, "AAPL_equity_5d_daily")
    report = models.delete_model_admin(catalog, store, models.get_model(catalog, ben, "AAPL_equity_5d_daily").id)
    assert report["deleted_artifacts"] == [paths[0]] and not store.exists(paths[0])
    with pytest.raises(LookupError):
        models.get_model(catalog, ann, "AAPL_equity_5d_daily")


def test_zero_dte_trade_worked_by_hand():
    """One session, long from the 13:30 bar: a call bought at the open, expiring at 16:00.
    The Lab runs ``compute.backtest.run_options_backtest`` with the listed strike grid and
    per-bar implied vols, as ``services.lab.options.options_walk_forward`` calls it."""
    from functools import partial

    from compute.backtest import OPTION_MULTIPLIER, PREMIUM_FRACTION, BacktestConfig, run_options_backtest
    from compute.greeks import bsm_greeks
    from compute.marketdata.options import strike_step

    stamps = pd.DatetimeIndex(["2024-03-01 12:30", "2024-03-01 13:30", "2024-03-01 14:30", "2024-03-01 15:30"],
                              tz="America/New_York").tz_convert("UTC")
    open_, close = np.array([500.0, 501.0, 502.0, 503.0]), np.array([501.0, 502.0, 503.0, 504.0])
    fees, slip, sigma = 10.0, 35.0, 0.15
    cfg = BacktestConfig(value=0.6, fees_bps=fees, slippage_bps=slip, allowed_hours=(13, 14, 15),
                         periods_per_year=1764.0)
    # score 1 from the first bar: long decided at the 12:30 close, filled at the 13:30 open
    bt = run_options_backtest(open_, close, np.ones(4), cfg, index=stamps, hours=np.array([12, 13, 14, 15]),
                              implied_vol=np.full(4, sigma), strike_step=partial(strike_step, "SPY"))
    assert list(bt.fills["action"]) == ["BUY", "SELL"]
    strike = bt.extras["contracts"]["strike"].iloc[0]
    years = 2.5 * 3600 / (252 * 390 * 60)  # 13:30 -> 16:00 on the trading clock (2.5 h of 252 x 6.5 h)
    premium = float(bsm_price(501.0, strike, years, RISK_FREE_RATE, 0.0, sigma, True))
    buy = premium * (1 + slip * 1e-4)
    qty = math.floor(PREMIUM_FRACTION * 100_000 / (buy * OPTION_MULTIPLIER))
    assert PREMIUM_FRACTION == 0.05
    assert bt.fills["price"].iloc[0] == pytest.approx(buy) and bt.fills["quantity"].iloc[0] == qty

    step = strike_step("SPY", 501.0)
    grid = strike + step * np.arange(-3, 4)
    deltas = bsm_greeks(np.full(7, 501.0), grid, years, RISK_FREE_RATE, 0.0, sigma, True).delta
    assert np.argmin(np.abs(deltas - 0.35)) == 3 and strike > 501.0  # nearest 0.35 delta: out of the money
    cost = qty * OPTION_MULTIPLIER * buy * (1 + fees * 1e-4)
    # cash-settled at intrinsic at the close; the fee applies to the settlement value too
    payoff = qty * OPTION_MULTIPLIER * max(504.0 - strike, 0.0) * (1 - fees * 1e-4)
    assert payoff > 0 and bt.fills["price"].iloc[1] == pytest.approx(504.0 - strike)
    assert bt.fills["pnl"].iloc[1] == pytest.approx(payoff - cost, abs=0.005)
    assert bt.equity.iloc[-1] == pytest.approx(100_000 - cost + payoff, abs=0.005)
    # position = side held at each close: flat again once the close settles the contract
    assert bt.equity.iloc[0] == 100_000 and list(bt.position) == [0, 1, 1, 0]
