"""Your own models: any scikit-learn-compatible classifier (``fit`` / ``predict_proba``) by
dotted name with parameters, beside the built-in numba trainers (``compute.train``).

A training config names one with ``estimator`` (e.g. ``sklearn.linear_model.LogisticRegression``,
``sklearn.ensemble.HistGradientBoostingClassifier``, ``xgboost.XGBClassifier``) and its
``params``; ``standardize`` (default true) z-scores the features with the fitting rows' mean and
standard deviation first, as the built-in trainers do; ``holdout_fraction`` (default 0.2) keeps
the last rows out of the fit for the held-out metrics. Nothing else is accepted.

Safety: only modules under an allow-list of dotted prefixes are ever imported
(``DEFAULT_ALLOWED_MODULES``, the ``model_modules`` setting); the name is checked before any
import, a private class (``_Name``) is refused, and parameters must be a class's own
(``get_params``) with JSON values. scikit-learn's own parameter validation runs before anything
is stored; estimators without it (XGBoost) are fitted once on a tiny sample instead.

The fit: labels are the matrix's (two or three classes, e.g. -1/1 or -1/0/1); the estimator sees
class indices 0..K-1 (XGBoost requires them) and ``EstimatorModel`` maps its columns back, so
``predict_proba`` has one column per label value in ascending order and ``score`` is the same
[0, 1] score as ``TrainedModel.score`` (P(UP), or (1 + P(UP) - P(DOWN)) / 2 for three classes):
walk-forward backtests, sweeps and live signals use either model through that interface.

Weights: a zip of ``manifest.json`` (format, estimator name and params, classes, features,
standardisation, metrics, and the library versions that wrote it: Python major.minor, numpy,
scikit-learn, joblib, the estimator's own package) and ``estimator.joblib`` (joblib's pickle of
the fitted object). ``load_model`` refuses to unpickle when any recorded version differs from
the running one (``VersionMismatch``, naming both) or when the estimator is outside the allow-list.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import io
import json
import math
import re
import sys
import zipfile
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

FORMAT = "sigma.estimator/1"
#: Importable module prefixes (dotted; "sklearn.ensemble" allows sklearn.ensemble.* too).
DEFAULT_ALLOWED_MODULES: tuple[str, ...] = (
    "sklearn.linear_model", "sklearn.ensemble", "sklearn.tree", "sklearn.naive_bayes",
    "sklearn.neighbors", "sklearn.neural_network", "sklearn.discriminant_analysis", "sklearn.svm",
    "xgboost", "lightgbm",
)
SETTINGS = ("estimator", "params", "standardize", "holdout_fraction")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_PARAM_IN_MESSAGE = re.compile(r"The '([A-Za-z_][A-Za-z0-9_]*)' parameter")
#: Packages whose versions a manifest records (beside the estimator's own top-level package).
_BASE_PACKAGES = ("numpy", "sklearn", "joblib")


class EstimatorError(ValueError):
    """Bad estimator input; ``field`` names the request field (e.g. ``config.params.C``)."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class VersionMismatch(ValueError):
    """Stored weights were written by other library versions than the running ones."""


def is_estimator_config(config: Any) -> bool:
    """True when a trainer config names an estimator (else it is a built-in trainer's)."""
    return isinstance(config, Mapping) and "estimator" in config


def module_allowed(module: str, allowed: Sequence[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in allowed)


def resolve_estimator(name: Any, allowed: Sequence[str], field_name: str = "config.estimator") -> type:
    """The class behind a dotted name, imported only when its module is allowed."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise EstimatorError(field_name, "must be a dotted class name such as sklearn.linear_model.LogisticRegression")
    module, _, cls_name = name.rpartition(".")
    if not module_allowed(module, allowed):
        raise EstimatorError(field_name, f"{module} is not in the allowed model modules {list(allowed)} "
                             "(setting model_modules, SIGMA_MODEL_MODULES)")
    if cls_name.startswith("_") or any(part.startswith("_") for part in module.split(".")):
        raise EstimatorError(field_name, "private names are not importable")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise EstimatorError(field_name, f"module {module} cannot be imported here ({exc}); "
                             "install it (xgboost: pip install xgboost-cpu)") from None
    cls = getattr(mod, cls_name, None)
    if not inspect.isclass(cls):
        raise EstimatorError(field_name, f"{module} has no class {cls_name}")
    if not (callable(getattr(cls, "fit", None)) and hasattr(cls, "predict_proba")):
        raise EstimatorError(field_name, f"{name} is not a classifier with fit and predict_proba")
    return cls


def _json_value(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if depth < 2 and isinstance(value, list):
        return all(_json_value(v, depth + 1) for v in value)
    if depth < 2 and isinstance(value, dict):
        return all(isinstance(k, str) and _json_value(v, depth + 1) for k, v in value.items())
    return False


def _param_names(cls: type) -> list[str]:
    try:
        return sorted(cls().get_params(deep=False))
    except Exception:  # noqa: BLE001 - a class without defaults: its signature's keyword names
        sig = inspect.signature(cls.__init__)
        return sorted(p for p, v in sig.parameters.items()
                      if p != "self" and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD))


def _tiny_fit(estimator, n_classes: int = 2) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((48, 3))
    y = np.arange(48) % n_classes
    estimator.fit(X, y)


def make_estimator(cls: type, params: Any, prefix: str = "config.params"):
    """An unfitted estimator of ``cls`` with ``params``, its parameters checked (field-named)."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise EstimatorError(prefix, "must be an object of the estimator's parameters")
    names = _param_names(cls)
    for key, value in params.items():
        if key not in names:
            raise EstimatorError(f"{prefix}.{key}", f"unknown parameter of {cls.__name__}; expected one of {names}")
        if not _json_value(value):
            raise EstimatorError(f"{prefix}.{key}", "must be a JSON number, string, boolean, null or a list/object of them")
    try:
        est = cls(**dict(params))
    except (TypeError, ValueError) as exc:
        raise EstimatorError(prefix, f"{cls.__name__} refused the parameters: {exc}") from None
    validate = getattr(est, "_validate_params", None)
    try:
        if callable(validate) and getattr(est, "_parameter_constraints", None) is not None:
            validate()  # scikit-learn's own constraints: names the parameter
        else:
            _tiny_fit(est)  # no declared constraints (XGBoost): a fit on a tiny sample
    except Exception as exc:  # noqa: BLE001 - any refusal is the caller's input
        hit = _PARAM_IN_MESSAGE.search(str(exc))
        name = hit.group(1) if hit and hit.group(1) in params else None
        if name is None:
            bad = [k for k in params if re.search(rf"\b{re.escape(k)}\b", str(exc))]
            name = bad[0] if len(bad) == 1 else None
        raise EstimatorError(f"{prefix}.{name}" if name else prefix,
                             f"{cls.__name__} refused the parameters: {str(exc)[:300]}") from None
    return est


def normalise_config(config: Mapping[str, Any], allowed: Sequence[str], prefix: str = "config.") -> dict:
    """Validate an estimator training config; returns ``{estimator, params, standardize,
    holdout_fraction}`` with defaults filled. ``EstimatorError`` names the field."""
    for key in config:
        if key not in SETTINGS:
            raise EstimatorError(f"{prefix}{key}", f"not a setting of an estimator training; expected one of "
                                 f"{list(SETTINGS)} (the built-in trainers' settings apply without estimator)")
    name = config.get("estimator")
    cls = resolve_estimator(name, allowed, f"{prefix}estimator")
    make_estimator(cls, config.get("params"), f"{prefix}params")
    standardize = config.get("standardize", True)
    if not isinstance(standardize, bool):
        raise EstimatorError(f"{prefix}standardize", "must be true or false")
    holdout = config.get("holdout_fraction", 0.2)
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0.05 <= holdout <= 0.5:
        raise EstimatorError(f"{prefix}holdout_fraction", "must be within [0.05, 0.5]")
    return {"estimator": name, "params": dict(config.get("params") or {}), "standardize": standardize,
            "holdout_fraction": float(holdout)}


def config_sha(config: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a normalised estimator config."""
    text = json.dumps(dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def library_versions(estimator_name: str) -> dict[str, str]:
    """Versions a stored estimator depends on: Python (major.minor) and the packages that
    unpickle it (numpy, sklearn, joblib and the estimator's own top-level package)."""
    out = {"python": f"{sys.version_info.major}.{sys.version_info.minor}"}
    top = estimator_name.split(".")[0]
    for pkg in dict.fromkeys((*_BASE_PACKAGES, top)):
        try:
            out[pkg] = str(importlib.import_module(pkg).__version__)
        except Exception:  # noqa: BLE001 - a package that is not installed records no version
            continue
    return out


# ---------------------------------------------------------------- the model

@dataclass
class EstimatorModel:
    """A fitted estimator behind the ``TrainedModel`` interface (``feature_names``,
    ``classes``, ``predict_proba``, ``predict``, ``score``, ``to_bytes``, ``sha``)."""

    estimator_name: str
    params: dict
    estimator: Any
    classes: tuple[int, ...]
    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    standardize: bool
    config: dict = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    model = "estimator"

    def _matrix(self, X) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self.feature_names if c not in X.columns]
            if missing:
                raise ValueError(f"X lacks feature columns {missing}")
            X = X.loc[:, list(self.feature_names)].to_numpy(dtype=np.float64)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(f"X must have {len(self.feature_names)} columns")
        return (X - self.mean) / self.scale if self.standardize else X

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, n x len(classes), columns in ``classes`` order."""
        raw = np.asarray(self.estimator.predict_proba(self._matrix(X)), dtype=np.float64)
        fitted = [int(c) for c in np.asarray(self.estimator.classes_)]
        out = np.zeros((raw.shape[0], len(self.classes)))
        out[:, fitted] = raw
        return out

    def predict(self, X) -> np.ndarray:
        return np.asarray(self.classes)[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X) -> np.ndarray:
        from compute.train import score_from_proba

        return score_from_proba(self.classes, self.predict_proba(X))

    def manifest(self) -> dict:
        return {"format": FORMAT, "estimator": self.estimator_name, "params": self.params,
                "classes": list(self.classes), "feature_names": list(self.feature_names),
                "standardize": self.standardize, "mean": [float(v) for v in self.mean],
                "scale": [float(v) for v in self.scale], "config": self.config, "metrics": self.metrics,
                "versions": self.versions}

    def to_bytes(self) -> bytes:
        import joblib

        blob = io.BytesIO()
        joblib.dump(self.estimator, blob)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            text = json.dumps(self.manifest(), sort_keys=True, separators=(",", ":"), allow_nan=True)
            zf.writestr(zipfile.ZipInfo("manifest.json", (1980, 1, 1, 0, 0, 0)), text.encode())
            zf.writestr(zipfile.ZipInfo("estimator.joblib", (1980, 1, 1, 0, 0, 0)), blob.getvalue())
        return buf.getvalue()

    def sha(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()


def read_manifest(data: bytes) -> dict | None:
    """The manifest of an estimator archive, or None for another kind of weights."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if "manifest.json" not in zf.namelist():
                return None
            return json.loads(zf.read("manifest.json"))
    except zipfile.BadZipFile:
        return None


def estimator_from_bytes(data: bytes, allowed: Sequence[str]) -> EstimatorModel:
    """Load stored estimator weights; ``VersionMismatch`` when they were written by other
    library versions, ``EstimatorError`` when the estimator is no longer allowed."""
    import joblib

    manifest = read_manifest(data)
    if manifest is None or manifest.get("format") != FORMAT:
        raise ValueError("not an estimator archive")
    name = manifest["estimator"]
    module = name.rpartition(".")[0]
    if not module_allowed(module, allowed):
        raise EstimatorError("model_id", f"the model's estimator {name} is not in the allowed model modules "
                             f"{list(allowed)} (setting model_modules)")
    stored = dict(manifest.get("versions") or {})
    running = library_versions(name)
    differ = {k: (v, running.get(k)) for k, v in stored.items() if running.get(k) != v}
    if differ:
        detail = ", ".join(f"{k} {old} (running {new or 'not installed'})" for k, (old, new) in sorted(differ.items()))
        raise VersionMismatch(f"the weights of {name} were saved with {detail}; refusing to load them with other "
                              "library versions: retrain the model (POST /train) or install the recorded versions")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        estimator = joblib.load(io.BytesIO(zf.read("estimator.joblib")))
    return EstimatorModel(estimator_name=name, params=manifest.get("params") or {}, estimator=estimator,
                          classes=tuple(int(c) for c in manifest["classes"]),
                          feature_names=tuple(manifest["feature_names"]),
                          mean=np.asarray(manifest["mean"], dtype=np.float64),
                          scale=np.asarray(manifest["scale"], dtype=np.float64),
                          standardize=bool(manifest["standardize"]), config=manifest.get("config") or {},
                          metrics=manifest.get("metrics") or {}, versions=stored)


def load_model(data: bytes, allowed: Sequence[str]):
    """Stored weights of either kind: an ``EstimatorModel`` or a built-in ``TrainedModel``."""
    from compute.train import TrainedModel

    if read_manifest(data) is not None:
        return estimator_from_bytes(data, allowed)
    return TrainedModel.from_bytes(data)


# ---------------------------------------------------------------- training

def train_estimator(X, y, config: Mapping[str, Any], allowed: Sequence[str],
                    feature_names: Sequence[str] | None = None) -> EstimatorModel:
    """Fit a normalised estimator config on time-ordered rows (rows with a NaN label dropped):
    the first ``1 - holdout_fraction`` of rows fit it, the rest give the held-out metrics
    (``raw`` and ``calibrated``, the same figures: an estimator is not recalibrated here)."""
    from compute.train import held_out_metrics, prepare_xy

    cfg = normalise_config(config, allowed)
    cls = resolve_estimator(cfg["estimator"], allowed)
    X, y_index, classes, feature_names = prepare_xy(X, y, feature_names)
    n = len(y_index)
    n_fit = n - int(math.ceil(n * cfg["holdout_fraction"]))
    if n_fit < 10 or n - n_fit < 5:
        raise ValueError(f"too few labelled rows to train ({n})")
    missing = sorted(set(range(len(classes))) - set(np.unique(y_index[:n_fit]).tolist()))
    if missing:
        raise ValueError(f"the fitting rows lack label class(es) {[classes[i] for i in missing]}")
    if cfg["standardize"]:
        mean = X[:n_fit].mean(axis=0)
        scale = X[:n_fit].std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
    else:
        mean, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
    estimator = make_estimator(cls, cfg["params"])
    model = EstimatorModel(estimator_name=cfg["estimator"], params=cfg["params"], estimator=estimator,
                           classes=classes, feature_names=tuple(feature_names), mean=mean, scale=scale,
                           standardize=cfg["standardize"], config=cfg, versions=library_versions(cfg["estimator"]))
    estimator.fit(model._matrix(X[:n_fit]), y_index[:n_fit])
    metrics = held_out_metrics(classes, y_index[n_fit:], model.predict_proba(X[n_fit:]))
    model.metrics = {"raw": metrics, "calibrated": metrics, "n_fit": int(n_fit), "n_calibration": 0,
                     "n_eval": int(n - n_fit), "estimator": cfg["estimator"], "library_versions": model.versions}
    return model


def fit_from_matrix(matrix: pd.DataFrame, config: Mapping[str, Any], allowed: Sequence[str],
                    allowed_hours: Sequence[int] | None = None, features: Sequence[str] | None = None):
    """Either trainer on a ``compute.features`` matrix: an estimator config trains an
    ``EstimatorModel``, any other config the built-in ``compute.train`` trainer."""
    from compute.train import TrainConfig, feature_columns, train_from_matrix

    if not is_estimator_config(config):
        return train_from_matrix(matrix, TrainConfig.from_dict(config), allowed_hours=allowed_hours,
                                 features=features)
    cols = list(features) if features is not None else feature_columns(matrix)
    rows = matrix[matrix["label"].notna()]
    if allowed_hours is not None:
        rows = rows[rows["hour"].isin(list(allowed_hours))]
    if "timestamp" in rows.columns:
        rows = rows.sort_values("timestamp", kind="mergesort")
    return train_estimator(rows[cols], rows["label"].to_numpy(), config, allowed, feature_names=cols)
