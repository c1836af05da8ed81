"""Your own models (compute/estimators.py) on plain arrays: the allow-list and parameter checks
name the field, fits equal the library's own fit on the same rows (independent oracle), the
stored weights round-trip and are refused under other library versions."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from compute import estimators as est
from compute.estimators import DEFAULT_ALLOWED_MODULES as ALLOWED


def _data(n=400, d=4, classes=(-1, 1), seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.array([1.0, 10.0, 0.1, 3.0])[:d] + np.array([0.0, 50.0, 1.0, -2.0])[:d]
    logit = X[:, 0] - 0.2 * (X[:, 1] - 50.0) + 5.0 * (X[:, 2] - 1.0) + rng.standard_normal(n)
    if len(classes) == 2:
        y = np.where(logit > 0, classes[1], classes[0])
    else:
        y = np.select([logit < -0.7, logit > 0.7], [classes[0], classes[2]], classes[1])
    return X, y.astype(np.float64)


@pytest.mark.parametrize("name, params, field, words", [
    ("LogisticRegression", {}, "config.estimator", "dotted class name"),
    ("os.system", {}, "config.estimator", "not in the allowed"),
    ("subprocess.Popen", {}, "config.estimator", "not in the allowed"),
    ("sklearn.linear_model._base.LinearModel", {}, "config.estimator", "private"),
    ("sklearn.linear_model.NoSuchModel", {}, "config.estimator", "has no class"),
    ("sklearn.linear_model.LinearRegression", {}, "config.estimator", "predict_proba"),
    ("sklearn.linear_model.LogisticRegression", {"epochs": 3}, "config.params.epochs", "unknown parameter"),
    ("sklearn.linear_model.LogisticRegression", {"C": -1.0}, "config.params.C", "refused"),
    ("sklearn.linear_model.LogisticRegression", {"C": float("nan")}, "config.params.C", "JSON"),
    ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 0}, "config.params.max_iter", "refused"),
    ("sklearn.ensemble.HistGradientBoostingClassifier", [1, 2], "config.params", "object"),
])
def test_bad_names_and_params_name_the_field(name, params, field, words):
    with pytest.raises(est.EstimatorError) as err:
        est.normalise_config({"estimator": name, "params": params}, ALLOWED)
    assert err.value.field == field and words in err.value.reason, err.value


def test_modules_outside_the_allow_list_are_never_imported(monkeypatch):
    import importlib
    import sys

    seen = []
    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module", lambda name, *a: seen.append(name) or real(name, *a))
    with pytest.raises(est.EstimatorError):
        est.resolve_estimator("antigravity.Fly", ALLOWED)
    assert seen == [] and "antigravity" not in sys.modules
    # a narrower list refuses what the default allows; a module that is allowed but absent says so
    with pytest.raises(est.EstimatorError, match="not in the allowed"):
        est.resolve_estimator("sklearn.ensemble.HistGradientBoostingClassifier", ["sklearn.linear_model"])
    with pytest.raises(est.EstimatorError, match="cannot be imported here"):
        est.resolve_estimator("sigma_not_installed_pkg.Model", ["sigma_not_installed_pkg"])
    # prefixes match whole dotted parts: "sklearn.linear" does not allow sklearn.linear_model
    with pytest.raises(est.EstimatorError, match="not in the allowed"):
        est.resolve_estimator("sklearn.linear_model.LogisticRegression", ["sklearn.linear"])


def test_other_settings_beside_an_estimator_are_refused():
    with pytest.raises(est.EstimatorError) as err:
        est.normalise_config({"estimator": "sklearn.linear_model.LogisticRegression", "epochs": 5}, ALLOWED)
    assert err.value.field == "config.epochs"
    for key, value in (("standardize", "yes"), ("holdout_fraction", 0.9)):
        with pytest.raises(est.EstimatorError) as err:
            est.normalise_config({"estimator": "sklearn.linear_model.LogisticRegression", key: value}, ALLOWED)
        assert err.value.field == f"config.{key}"


def _oracle_fit(cls, params, X, y, n_fit, standardize):
    mean, scale = X[:n_fit].mean(axis=0), X[:n_fit].std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Z = (X - mean) / scale if standardize else X
    model = cls(**params).fit(Z[:n_fit], y[:n_fit])
    return model.predict_proba(Z)


@pytest.mark.parametrize("name, params, standardize, classes", [
    ("sklearn.linear_model.LogisticRegression", {"C": 0.5}, True, (-1, 1)),
    ("sklearn.linear_model.LogisticRegression", {}, True, (-1, 0, 1)),
    ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 50, "random_state": 0}, False, (-1, 1)),
    ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 30}, True, (-1, 0, 1)),
])
def test_fit_equals_scikit_learns_own_fit(name, params, standardize, classes):
    import importlib

    X, y = _data(classes=classes)
    model = est.train_estimator(X, y, {"estimator": name, "params": params, "standardize": standardize}, ALLOWED)
    n_fit = len(y) - int(np.ceil(len(y) * 0.2))
    module, _, cls_name = name.rpartition(".")
    expected = _oracle_fit(getattr(importlib.import_module(module), cls_name), params, X, y, n_fit, standardize)
    got = model.predict_proba(X)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert model.classes == classes and model.metrics["n_fit"] == n_fit and model.metrics["n_eval"] == len(y) - n_fit
    if len(classes) == 2:
        np.testing.assert_allclose(model.score(X), expected[:, 1], rtol=0, atol=1e-12)
    else:
        np.testing.assert_allclose(model.score(X), (1 + expected[:, 2] - expected[:, 0]) / 2, rtol=0, atol=1e-12)
    # held-out metrics are the eval rows' (accuracy recomputed)
    acc = np.mean(np.asarray(classes)[np.argmax(expected[n_fit:], axis=1)] == y[n_fit:])
    assert model.metrics["raw"]["accuracy"] == pytest.approx(acc)
    # stored and loaded: the same predictions, the versions that wrote it in the manifest
    data = model.to_bytes()
    back = est.load_model(data, ALLOWED)
    np.testing.assert_array_equal(back.predict_proba(X), got)
    manifest = est.read_manifest(data)
    assert manifest["estimator"] == name and manifest["versions"] == est.library_versions(name)
    assert {"python", "numpy", "sklearn", "joblib"} <= set(manifest["versions"])


def test_xgboost_classifier_equals_its_own_fit():
    xgboost = pytest.importorskip("xgboost", reason="xgboost-cpu is in the test extra")
    X, y = _data()
    params = {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.08, "subsample": 0.9,
              "colsample_bytree": 0.9, "random_state": 0, "n_jobs": 1}
    model = est.train_estimator(X, y, {"estimator": "xgboost.XGBClassifier", "params": params}, ALLOWED)
    n_fit = len(y) - int(np.ceil(len(y) * 0.2))
    mean, scale = X[:n_fit].mean(axis=0), X[:n_fit].std(axis=0)
    Z = (X - mean) / scale
    ref = xgboost.XGBClassifier(**params).fit(Z[:n_fit], (y[:n_fit] > 0).astype(int))
    np.testing.assert_allclose(model.predict_proba(X), ref.predict_proba(Z), rtol=0, atol=1e-7)
    assert "xgboost" in model.versions
    with pytest.raises(est.EstimatorError) as err:
        est.normalise_config({"estimator": "xgboost.XGBClassifier", "params": {"max_depth": -3}}, ALLOWED)
    assert err.value.field == "config.params.max_depth"


def _with_manifest(data: bytes, change) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for info in src.infolist():
            raw = src.read(info.filename)
            if info.filename == "manifest.json":
                manifest = json.loads(raw)
                change(manifest)
                raw = json.dumps(manifest).encode()
            zf.writestr(info, raw)
    return out.getvalue()


def test_other_library_versions_are_refused_clearly():
    X, y = _data()
    model = est.train_estimator(X, y, {"estimator": "sklearn.linear_model.LogisticRegression"}, ALLOWED)
    old = _with_manifest(model.to_bytes(), lambda m: m["versions"].update(sklearn="0.24.2", numpy="1.19.5"))
    with pytest.raises(est.VersionMismatch) as err:
        est.load_model(old, ALLOWED)
    text = str(err.value)
    assert "sklearn 0.24.2" in text and "numpy 1.19.5" in text and "retrain" in text
    import sklearn

    assert f"running {sklearn.__version__}" in text
    with pytest.raises(est.EstimatorError) as err:
        est.load_model(model.to_bytes(), ["sklearn.ensemble"])
    assert err.value.field == "model_id"


def test_built_in_weights_still_load():
    from compute.train import TrainedModel, train_model

    X, y = _data()
    built_in = train_model(X, y, {"epochs": 2})
    assert isinstance(est.load_model(built_in.to_bytes(), ALLOWED), TrainedModel)
