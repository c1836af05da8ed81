"""Trainers against statsmodels MLE fits, hand-worked calibration/AUC examples and determinism."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from compute import train as T


def logistic_data(n=20000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) * np.array([1.0, 2.0, 0.5, 1.0]) + np.array([0.0, 1.0, -1.0, 0])
    beta, intercept = np.array([1.0, -0.5, 1.5, 0.0]), 0.3
    p = 1 / (1 + np.exp(-(X @ beta + intercept)))
    y = np.where(rng.random(n) < p, 1, -1)
    return X, y, beta, intercept


FAST = {"optimizer": "adam", "learning_rate": 0.005, "epochs": 30, "batch_size": 256, "l2": 0.0}


@pytest.mark.parametrize("cfg", [FAST, {**FAST, "optimizer": "sgd", "learning_rate": 0.5}])
def test_logistic_recovers_coefficients_like_statsmodels(cfg):
    X, y, beta, intercept = logistic_data()
    model = T.train_model(X, y, cfg)
    w, b = model.coefficients()
    n_fit = model.metrics["n_fit"]
    mle = sm.Logit((y[:n_fit] == 1).astype(float), sm.add_constant(X[:n_fit])).fit(disp=0).params
    np.testing.assert_allclose(w, mle[1:], atol=0.05)
    assert b == pytest.approx(mle[0], abs=0.05)
    np.testing.assert_allclose(w, beta, atol=0.1)
    assert model.classes == (-1, 1)


def test_softmax_matches_statsmodels_mnlogit_probabilities():
    rng = np.random.default_rng(1)
    n = 15000
    X = rng.normal(size=(n, 3))
    logits = np.column_stack([0.8 * X[:, 0] - 0.5 * X[:, 1], np.zeros(n), -X[:, 0] + X[:, 2]])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    u = rng.random(n)[:, None]
    y = (u > np.cumsum(p, axis=1)).sum(axis=1) - 1  # labels -1, 0, 1
    model = T.train_model(X, y, {**FAST, "calibration": "none"})
    assert model.classes == (-1, 0, 1)
    n_fit = model.metrics["n_fit"]
    mn = sm.MNLogit(y[:n_fit] + 1, sm.add_constant(X[:n_fit])).fit(disp=0)
    ref = mn.predict(sm.add_constant(X[n_fit:]))
    ours = model.predict_proba(X[n_fit:])
    assert np.max(np.abs(ours - np.asarray(ref))) < 0.03
    score = model.score(X)
    np.testing.assert_allclose(score, (1 + model.predict_proba(X)[:, 2]
                                       - model.predict_proba(X)[:, 0]) / 2)
    assert score.min() >= 0 and score.max() <= 1


def test_mlp_learns_what_logistic_cannot():
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, size=(6000, 2))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1, 0)  # XOR of signs
    mlp = T.train_model(X, y, {"model": "mlp", "hidden": [16], "activation": "tanh",
                               "learning_rate": 0.01, "epochs": 60, "batch_size": 64})
    logit = T.train_model(X, y, {"model": "logistic", "epochs": 20})
    assert mlp.metrics["calibrated"]["accuracy"] > 0.9
    assert logit.metrics["calibrated"]["accuracy"] < 0.65
    relu2 = T.train_model(X, y, {"model": "mlp", "hidden": [16, 8], "activation": "relu",
                                 "learning_rate": 0.01, "epochs": 60, "batch_size": 64})
    assert relu2.metrics["calibrated"]["accuracy"] > 0.9


@pytest.mark.parametrize("cfg", [FAST, {"model": "mlp", "hidden": [8], "epochs": 5},
                                 {"model": "mlp", "hidden": [8, 4], "activation": "relu",
                                  "optimizer": "sgd", "epochs": 3, "calibration": "isotonic"}])
def test_same_seed_same_bytes_and_round_trip(cfg):
    X, y, *_ = logistic_data(4000, seed=3)
    a = T.train_model(X, y, {**cfg, "seed": 7})
    b = T.train_model(X, y, {**cfg, "seed": 7})
    assert a.to_bytes() == b.to_bytes() and a.sha() == b.sha()
    back = T.TrainedModel.from_bytes(a.to_bytes())
    np.testing.assert_array_equal(back.predict_proba(X), a.predict_proba(X))
    assert back.to_bytes() == a.to_bytes()
    assert back.metrics == a.metrics and back.config == a.config
    if cfg.get("model") == "mlp":
        c = T.train_model(X, y, {**cfg, "seed": 8})
        assert c.sha() != a.sha()


def test_bytes_hold_no_pickle():
    X, y, *_ = logistic_data(2000)
    data = T.train_model(X, y, FAST).to_bytes()
    import zipfile
    import io
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "meta.json" in names and all(n.endswith((".npy", ".json")) for n in names)
    with pytest.raises(ValueError, match="archive"):
        T.TrainedModel.from_bytes(b"not a zip")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("meta.json", '{"format": "sigma.model/9"}')
    with pytest.raises(ValueError, match="format"):
        T.TrainedModel.from_bytes(buf.getvalue())


def test_hyperparameters_are_honoured():
    X, y, *_ = logistic_data(3000)
    m = T.train_model(X, y, {**FAST, "epochs": 7})
    assert len(m.metrics["train_loss"]) == 7
    slow = T.train_model(X, y, {**FAST, "learning_rate": 1e-6, "epochs": 2})
    fast = T.train_model(X, y, {**FAST, "epochs": 2, "learning_rate": 0.05})
    assert slow.metrics["raw"]["log_loss"] > fast.metrics["raw"]["log_loss"]
    small = T.train_model(X, y, {**FAST, "batch_size": 16, "epochs": 1,
                                 "learning_rate": 0.05})
    big = T.train_model(X, y, {**FAST, "batch_size": 3000, "epochs": 1,
                               "learning_rate": 0.05})
    assert small.sha() != big.sha()
    strong_l2 = T.train_model(X, y, {**FAST, "l2": 5.0})
    assert np.sum(strong_l2.coefficients()[0] ** 2) < np.sum(m.coefficients()[0] ** 2)


def test_standardisation_fitted_on_training_rows_only():
    X, y, *_ = logistic_data(1000)
    X = X.copy()
    X[-100:, 0] += 1000.0  # a shift in the held-out tail must not leak into the scaler
    m = T.train_model(X, y, FAST)
    np.testing.assert_allclose(m.mean, X[:m.metrics["n_fit"]].mean(axis=0))


def test_platt_recovers_known_scaling():
    rng = np.random.default_rng(4)
    x = rng.normal(0, 2, 40000)
    s = 1 / (1 + np.exp(-x))
    y = rng.random(40000) < 1 / (1 + np.exp(-(0.5 * x - 0.2)))
    a, b = T.platt_fit(s, y)
    assert a == pytest.approx(0.5, abs=0.03) and b == pytest.approx(-0.2, abs=0.03)


def test_isotonic_pav_by_hand():
    # y = 1, 0, 0, 1 on increasing scores: (1, 0) pool to 0.5, then with the next 0 to 1/3
    bx, by = T.isotonic_fit(np.array([0.1, 0.2, 0.3, 0.4]), np.array([1, 0, 0, 1]))
    np.testing.assert_allclose(by, [1 / 3, 1.0])
    np.testing.assert_allclose(bx, [0.2, 0.4])


def test_roc_auc_by_hand():
    assert T.roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert T.roc_auc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    assert np.isnan(T.roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_log_loss_and_brier_by_hand():
    proba = np.array([[0.2, 0.8], [0.6, 0.4]])
    y = np.array([1, 1])
    assert T.log_loss(y, proba) == pytest.approx(-(np.log(0.8) + np.log(0.4)) / 2)
    assert T.brier_score(y, proba) == pytest.approx((2 * 0.2 ** 2 + 2 * 0.6 ** 2) / 2)


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_improves_brier_of_overconfident_scores(method):
    rng = np.random.default_rng(5)
    x = rng.normal(size=20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-x))).astype(int)
    over = 1 / (1 + np.exp(-4 * x))  # four times too confident
    fit, test = slice(0, 10000), slice(10000, None)
    if method == "platt":
        cal = T.platt_apply(over[test], *T.platt_fit(over[fit], y[fit] == 1))
    else:
        cal = T.isotonic_apply(over[test], *T.isotonic_fit(over[fit], y[fit]))
    before = np.mean((over[test] - y[test]) ** 2)
    after = np.mean((cal - y[test]) ** 2)
    assert after < before - 0.01


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_trained_calibration_keeps_or_improves_held_out_brier(method):
    rng = np.random.default_rng(6)
    n = 3000
    X = rng.normal(size=(n, 20))
    y = (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    # many useless features, no L2 and a large step: an overconfident model
    m = T.train_model(X, y, {"learning_rate": 0.2, "epochs": 40, "batch_size": 32, "l2": 0.0,
                             "calibration": method, "holdout_fraction": 0.4})
    assert m.metrics["calibrated"]["brier"] <= m.metrics["raw"]["brier"] + 0.005
    assert m.metrics["n_calibration"] == 600 and m.metrics["n_eval"] == 600


def test_train_from_matrix_uses_features_hours_and_labels():
    rng = np.random.default_rng(7)
    n = 2000
    ts = pd.date_range("2024-01-02 14:30", periods=n, freq="h", tz="UTC")
    f = rng.normal(size=n)
    label = np.where(rng.random(n) < 1 / (1 + np.exp(-2 * f)), 1.0, -1.0)
    label[-3:] = np.nan
    matrix = pd.DataFrame({"timestamp": ts, "hour": ts.hour, "close": 100.0, "f_a": f,
                           "f_noise": rng.normal(size=n), "label": label})
    m = T.train_from_matrix(matrix, {**FAST, "learning_rate": 0.05, "epochs": 200},
                            allowed_hours=[13, 14, 15])
    assert m.feature_names == ("f_a", "f_noise")
    n_rows = int(((matrix["hour"].isin([13, 14, 15])) & matrix["label"].notna()).sum())
    assert m.metrics["n_fit"] + m.metrics["n_calibration"] + m.metrics["n_eval"] == n_rows
    assert m.coefficients()[0][0] > 1.0
    assert m.score(matrix).shape == (n,)


def test_config_validation_names_fields():
    with pytest.raises(ValueError, match="learning_rate"):
        T.TrainConfig.from_dict({"learning_rate": 0})
    with pytest.raises(ValueError, match="epochs"):
        T.TrainConfig.from_dict({"epochs": 2.5})
    with pytest.raises(ValueError, match="bogus"):
        T.TrainConfig.from_dict({"bogus": 1})
    assert T.TrainConfig.from_dict({"model": "mlp"}).hidden == (16,)
    errors = T.config_errors({"batch_size": 0, "activation": "sigmoid"}, "config.trainer.")
    assert {e["field"] for e in errors} == {"config.trainer.batch_size",
                                            "config.trainer.activation"}
    assert T.config_sha({"epochs": 30}) == T.config_sha({}) != T.config_sha({"epochs": 31})


def test_bad_training_data():
    X = np.zeros((100, 2))
    with pytest.raises(ValueError, match="two classes"):
        T.train_model(X, np.ones(100))
    with pytest.raises(ValueError, match="NaN"):
        T.train_model(np.full((100, 2), np.nan), np.r_[np.ones(50), -np.ones(50)])
