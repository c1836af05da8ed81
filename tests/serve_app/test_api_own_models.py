"""Your own models and scheduled live signals on the live Serve app.

Item 5: LogisticRegression, HistGradientBoostingClassifier and XGBClassifier trained through POST /train equal
scikit-learn's own fit on the same matrix rows (independent oracle); bad names, names outside
the allow-list and bad parameters are 400s naming the field with nothing written; the
estimator model then runs a walk-forward backtest, a sweep and a live signal like any other.

Item 6: POST/GET/DELETE /signals/subscriptions (another user's id is a 404), the scheduler's
tick driven at given instants, and a real local HTTP receiver getting ``signal.generated``
from the platform's webhook dispatcher."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from tests.serve_app.test_api_platform import V1, assert_error
from tests.serve_app.test_api_sweeps import _wait_sweep
from tests.services.test_signal_subscriptions import SECRET, Receiver, ny


def _model(api, h, template, ticker, start="2021-01-04", end="2023-12-29"):
    resp = api.http.post(f"{V1}/models", json={"template_id": template, "config": {"ticker": ticker}}, headers=h)
    assert resp.status_code == 201, resp.text
    mid = resp.json()["model_id"]
    m = api.http.post(f"{V1}/build_matrix", json={"model_id": mid, "start_date": start, "end_date": end}, headers=h)
    assert m.status_code == 200, m.text
    return mid, m.json()["matrix_sha"]


def _trainings(api, mid) -> int:
    from cluster.catalog import LabModel, Training

    with api.catalog.session() as s:
        return int(s.scalar(select(func.count()).select_from(Training).join(LabModel, LabModel.id == Training.model_pk)
                            .where(LabModel.model_id == mid)))


# the catalog back ends are covered by tests/services/test_signal_subscriptions.py (both); the
# estimators' fits do not depend on them
@pytest.mark.postgresql_only
def test_your_own_models_through_the_api(api):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from cluster.artifacts import ArtifactStore
    from cluster.catalog import Training
    from services.lab import matrices, models
    from services.lab.training import load_weights

    user, h = "own_ann", api.headers("own_ann")
    mid, sha = _model(api, h, "swingsigma_default", "MSFT")

    # bad input: a 400 naming the field, and nothing written
    bad = [({"estimator": "LogisticRegression"}, "config.estimator"),
           ({"estimator": "os.system"}, "config.estimator"),
           ({"estimator": "builtins.eval", "params": {}}, "config.estimator"),
           ({"estimator": "sklearn.linear_model.NoSuchClassifier"}, "config.estimator"),
           ({"estimator": "sklearn.linear_model.LogisticRegression", "params": {"n_estimatorz": 3}},
            "config.params.n_estimatorz"),
           ({"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": -1}}, "config.params.C"),
           ({"estimator": "sklearn.ensemble.HistGradientBoostingClassifier", "params": {"learning_rate": "fast"}},
            "config.params.learning_rate"),
           ({"estimator": "sklearn.linear_model.LogisticRegression", "epochs": 3}, "config.epochs")]
    for config, field in bad:
        assert_error(api.http.post(f"{V1}/train", json={"model_id": mid, "config": config}, headers=h), 400,
                     "INVALID_PARAMETER", field=field)
    assert _trainings(api, mid) == 0

    store = ArtifactStore(api.settings.resolved_storage_url)
    frame = matrices.load_matrix(store, matrices.get_matrix(api.catalog, models.get_model(api.catalog, api_uid(api, user),
                                                                                            mid).id, sha))
    cols = [c for c in frame.columns if c.startswith("f_")]
    rows = frame[frame["label"].notna()].sort_values("timestamp", kind="mergesort")
    X, y = rows[cols].to_numpy(np.float64), rows["label"].to_numpy()
    n_fit = len(y) - int(np.ceil(len(y) * 0.2))
    mean, scale = X[:n_fit].mean(axis=0), X[:n_fit].std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    everything = frame[cols].to_numpy(np.float64)
    cases = [("sklearn.linear_model.LogisticRegression", {"C": 0.5, "max_iter": 500}, True,
              lambda p: LogisticRegression(**p).fit((X[:n_fit] - mean) / scale, y[:n_fit])
              .predict_proba((everything - mean) / scale)),
             ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 60, "random_state": 0}, False,
              lambda p: HistGradientBoostingClassifier(**p).fit(X[:n_fit], y[:n_fit]).predict_proba(everything))]
    # the original Sigma Lab's XGBoost settings (xgboost-cpu is in the test extra); XGBoost wants
    # class indices 0..K-1
    import xgboost

    y_index = np.searchsorted(np.unique(y), y)
    cases.append(("xgboost.XGBClassifier", {"n_estimators": 300, "max_depth": 4, "learning_rate": 0.08,
                                            "subsample": 0.9, "colsample_bytree": 0.9, "random_state": 0,
                                            "n_jobs": 1}, True,
                  lambda p: xgboost.XGBClassifier(**p).fit((X[:n_fit] - mean) / scale, y_index[:n_fit])
                  .predict_proba((everything - mean) / scale)))
    for name, params, standardize, oracle in cases:
        resp = api.http.post(f"{V1}/train", json={"model_id": mid, "matrix_sha": sha, "config": {
            "estimator": name, "params": params, "standardize": standardize}}, headers=h)
        assert resp.status_code == 202, resp.text
        job = api.wait_job(resp.json()["job_id"], user, timeout=180)
        assert job["status"] == "completed", job
        with api.catalog.session() as s:
            training = s.get(Training, resp.json()["training_id"])
        weights = load_weights(store, training)
        # 1e-9: the job fits in a Ray worker whose BLAS threads can order lbfgs' sums otherwise
        # (seen: 8e-12); in one process the fits agree to 1e-12 (tests/compute/test_estimators.py)
        np.testing.assert_allclose(weights.predict_proba(frame[cols]), oracle(params), rtol=0, atol=1e-9)
        lineage = api.http.get(f"{V1}/models/{mid}", headers=h).json()["lineage"]
        assert lineage["weights_sha"] == training.weights_sha and lineage["estimator"] == name
        import sklearn

        assert lineage["library_versions"]["sklearn"] == sklearn.__version__
        assert training.metrics["estimator"] == name and training.metrics["n_fit"] == n_fit

    # downstream: a walk-forward backtest, a sweep and a live signal of the estimator model
    bt = api.http.post(f"{V1}/backtest", json={"model_id": mid, "config": {"kind": "thresholds", "value": 0.55,
                                                                            "splits": 3}}, headers=h)
    assert bt.status_code == 202, bt.text
    assert api.wait_job(bt.json()["job_id"], user, timeout=240)["status"] == "completed"
    result = api.http.get(f"{V1}/backtest/{bt.json()['backtest_id']}", headers=h).json()
    assert result["status"] == "completed" and result["metrics"]["sharpe"] is not None and len(result["folds"]) == 3
    sweep = api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": {"thresholds": [0.55, 0.6],
                                                                                  "splits": 3}, "tag": "own"},
                          headers=h)
    assert sweep.status_code == 202, sweep.text
    done = _wait_sweep(api, user, sweep.json()["sweep_id"], timeout=240)
    assert done["status"] == "completed" and done["done_configs"] == 2, done
    generated = api.http.post(f"{V1}/signals/generate", json={"model_id": mid, "as_of": "2024-03-01"}, headers=h)
    assert generated.status_code in (200, 201), generated.text
    assert generated.json()["decision"]["training_id"] == training.id


def api_uid(api, username):
    from cluster.catalog import User

    with api.catalog.session() as s:
        return s.scalar(select(User.id).where(User.username == username))


@pytest.mark.postgresql_only
def test_signal_subscriptions_routes_and_the_scheduled_webhook(api):
    from cluster.artifacts import ArtifactStore
    from compute.marketdata import make_provider
    from services.lab import subscriptions

    user, h, eve = "own_sub", api.headers("own_sub"), api.headers("own_eve")
    mid, sha = _model(api, h, "longsigma_default", "MSFT")
    # not trained yet: 400 naming the model; unknown model: 404
    assert_error(api.http.post(f"{V1}/signals/subscriptions", json={"model_id": mid}, headers=h), 400,
                 "INVALID_PARAMETER", field="model_id")
    assert_error(api.http.post(f"{V1}/signals/subscriptions", json={"model_id": "NOPE_equity_5d_daily"}, headers=h),
                 404, "NOT_FOUND")
    assert_error(api.http.post(f"{V1}/signals/subscriptions", json={"model_id": mid, "extra": 1}, headers=h), 400,
                 "INVALID_PARAMETER")
    train = api.http.post(f"{V1}/train", json={"model_id": mid, "matrix_sha": sha, "config": {
        "estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"random_state": 0}}}, headers=h)
    assert api.wait_job(train.json()["job_id"], user, timeout=180)["status"] == "completed"
    assert_error(api.http.post(f"{V1}/signals/subscriptions", json={"model_id": mid, "portfolio_id": "pf_nope"},
                                headers=h), 400, "INVALID_PARAMETER", field="portfolio_id")

    created = api.http.post(f"{V1}/signals/subscriptions", json={"model_id": mid}, headers=h)
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["subscription_id"].startswith("sub_") and sub["cadence"] == "daily" and sub["active"] is True
    assert sub["runs"] == 0 and sub["next_bar_close"] is not None
    assert_error(api.http.post(f"{V1}/signals/subscriptions", json={"model_id": mid}, headers=h), 409, "CONFLICT",
                 field="model_id")
    listing = api.http.get(f"{V1}/signals/subscriptions", headers=h).json()
    assert listing["total"] == 1 and listing["items"][0]["subscription_id"] == sub["subscription_id"]
    assert api.http.get(f"{V1}/signals/subscriptions", headers=eve).json()["total"] == 0
    sid = sub["subscription_id"]
    assert_error(api.http.get(f"{V1}/signals/subscriptions/{sid}", headers=eve), 404, "NOT_FOUND")
    assert_error(api.http.delete(f"{V1}/signals/subscriptions/{sid}", headers=eve), 404, "NOT_FOUND")

    receiver = Receiver()
    try:
        hook = api.http.post(f"{V1}/webhooks", json={"url": receiver.url, "events": ["signal.generated"],
                                                     "secret": SECRET}, headers=h)
        assert hook.status_code == 201, hook.text
        # the scheduler's tick, driven at given instants (the market as it was then)
        from cluster.catalog import SignalSubscription

        with api.catalog.session() as s:  # as if subscribed before the 29 February close
            s.get(SignalSubscription, sid).checked_until = ny(2024, 2, 29, 12, 0).to_pydatetime()
        provider = make_provider(api.settings.market_data, seed=api.settings.market_data_seed)
        store = ArtifactStore(api.settings.resolved_storage_url)

        def tick(when):
            provider.clock = lambda: when.timestamp()
            return [r for r in subscriptions.run_due(api.catalog, store, provider, now=when.to_pydatetime(),
                                                     allowed_modules=api.settings.model_modules)
                    if r["subscription_id"] == sid]

        assert tick(ny(2024, 2, 29, 15, 30)) == []  # before the close
        [ran] = tick(ny(2024, 2, 29, 16, 0))
        assert ran["status"] == "generated", ran
        assert tick(ny(2024, 3, 29, 16, 30))[0]["skipped_closes"] == 19  # Good Friday: the newest close is 28 March
        signals = api.http.get(f"{V1}/signals", params={"model_id": mid, "limit": 100}, headers=h).json()["items"]
        assert sorted(pd.Timestamp(s["timestamp"]).tz_convert("America/New_York").date().isoformat()
                      for s in signals) == ["2024-02-29", "2024-03-28"]
        assert all(s["details"]["capital_source"] == "default" for s in signals)
        one = api.http.get(f"{V1}/signals/subscriptions/{sid}", headers=h).json()
        assert one["runs"] == 2 and one["signals_generated"] == 2 and one["last_status"] == "generated"
        # the platform's dispatcher delivered both to the receiver, signed
        deadline = time.monotonic() + 60
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(r["body"]["data"]["signal_id"] for r in receiver.received) == sorted(s["signal_id"] for s in signals)
        assert all(r["verified"] and r["event"] == "signal.generated" for r in receiver.received)
    finally:
        receiver.close()

    # the Python client's methods
    from sigma_client import Client, SigmaAPIError
    from tests.conftest import TEST_PASSWORD

    with Client(api.base_url) as c:
        c.login(user, TEST_PASSWORD)
        assert [i.subscription_id for i in c.signal_subscriptions()] == [sid]
        assert c.signal_subscription(sid).runs == 2
        with pytest.raises(SigmaAPIError) as err:
            c.subscribe_signals(mid)
        assert err.value.status == 409 and err.value.field == "model_id"
        with pytest.raises(SigmaAPIError) as err:
            c.train_estimator(mid, "os.system")
        assert err.value.status == 400 and err.value.field == "config.estimator"
        assert dict(c.unsubscribe_signals(sid)) == {"subscription_id": sid, "deleted": True}
    assert_error(api.http.get(f"{V1}/signals/subscriptions/{sid}", headers=h), 404, "NOT_FOUND")
    assert_error(api.http.delete(f"{V1}/signals/subscriptions/{sid}", headers=h), 404, "NOT_FOUND")
    assert api.http.get(f"{V1}/signals", params={"model_id": mid}, headers=h).json()["total"] == 2  # signals stay


def test_the_scheduler_runs_the_subscriptions_tick():
    from services.risk.batch import PERIODIC_TASKS

    assert "services.lab.subscriptions:scheduled_tick" in PERIODIC_TASKS
