"""Lab trainers: logistic regression and a small MLP, calibrated, serialisable without pickle.

``train_model(X, y, config)`` fits on time-ordered rows:

1. the last ``holdout_fraction`` of rows is held out; with calibration on, its first half
   fits the calibrator and its second half is the evaluation set (otherwise all of it
   evaluates), so reported metrics are out of sample for both weights and calibrator;
2. features are standardised with the mean and std of the fitting rows only;
3. weights are fitted by mini-batch gradient descent (``compute.train_nb``) honouring
   learning_rate, epochs, batch_size, l2, optimizer and seed;
4. probabilities are calibrated by Platt scaling (logistic fit on the model's logit) or
   isotonic regression (PAV), one-vs-rest per class and renormalised for >2 classes.

Labels: two classes (e.g. -1/1 or 0/1) train a binary model whose positive class is the larger
label; three classes (DOWN -1, FLAT 0, UP 1) train a softmax model. ``TrainedModel.score``
maps probabilities to the [0, 1] score the backtester thresholds: P(UP) for binary models and
(1 + P(UP) - P(DOWN)) / 2 for three classes (0.5 = no edge, FLAT mass pulls towards 0.5).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from compute import train_nb

#: Feature columns of a matrix carry this prefix (``compute.features`` names them).
FEATURE_PREFIX = "f_"


def feature_columns(matrix: pd.DataFrame) -> list[str]:
    """The feature columns of a matrix (those prefixed ``f_``), in order."""
    return [c for c in matrix.columns if c.startswith(FEATURE_PREFIX)]

FORMAT = "sigma.model/1"
_EPS = 1e-12

_CHECKS: dict[str, tuple[Any, Any]] = {
    "model": (str, ("logistic", "mlp")),
    "learning_rate": ((int, float), (0.0, 10.0)),
    "epochs": (int, (1, 10_000)),
    "batch_size": (int, (1, 1_000_000)),
    "l2": ((int, float), (0.0, 100.0)),
    "optimizer": (str, ("sgd", "adam")),
    "hidden": ((list, tuple), None),
    "activation": (str, ("tanh", "relu")),
    "calibration": (str, ("platt", "isotonic", "none")),
    "holdout_fraction": ((int, float), (0.05, 0.5)),
    "seed": (int, (0, 2**31 - 2)),
}


def config_errors(config: Mapping[str, Any], prefix: str = "") -> list[dict[str, str]]:
    """Field-named problems of a trainer config dict (``[]`` when valid)."""
    if not isinstance(config, Mapping):
        return [{"field": prefix.rstrip(".") or "config", "message": "must be an object"}]
    errors: list[dict[str, str]] = []
    for key, value in config.items():
        fname = f"{prefix}{key}"
        if key not in _CHECKS:
            errors.append({"field": fname,
                           "message": f"unknown trainer setting; expected one of {sorted(_CHECKS)}"})
            continue
        types, allowed = _CHECKS[key]
        if isinstance(value, bool) or not isinstance(value, types):
            errors.append({"field": fname, "message": "has the wrong type"})
        elif key == "hidden":
            if len(value) > 2 or any(isinstance(h, bool) or not isinstance(h, int)
                                     or not 1 <= h <= 1024 for h in value):
                errors.append({"field": fname,
                               "message": "must list at most 2 layer sizes between 1 and 1024"})
        elif isinstance(allowed[0], str):
            if value not in allowed:
                errors.append({"field": fname, "message": f"must be one of {list(allowed)}"})
        else:
            lo, hi = allowed
            ok = lo < value <= hi if key == "learning_rate" else lo <= value <= hi
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                errors.append({"field": fname, "message": f"must be within [{lo}, {hi}]"
                               + (" and above 0" if key == "learning_rate" else "")})
    return errors


@dataclass(frozen=True)
class TrainConfig:
    """Trainer settings. ``hidden`` empty = logistic; ``model="mlp"`` needs 1 or 2 layers."""

    model: str = "logistic"
    learning_rate: float = 0.01
    epochs: int = 30
    batch_size: int = 256
    l2: float = 1e-3
    optimizer: str = "adam"
    hidden: tuple[int, ...] = ()
    activation: str = "tanh"
    calibration: str = "platt"
    holdout_fraction: float = 0.2
    seed: int = 0

    @classmethod
    def from_dict(cls, config: Mapping[str, Any] | None) -> "TrainConfig":
        """Build from a dict (unknown or invalid keys raise ValueError naming the field)."""
        config = dict(config or {})
        errors = config_errors(config)
        if errors:
            raise ValueError("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        if "hidden" in config:
            config["hidden"] = tuple(config["hidden"])
        cfg = cls(**config)
        if cfg.model == "mlp" and not cfg.hidden:
            cfg = cls(**{**asdict(cfg), "hidden": (16,)})
        if cfg.model == "logistic" and cfg.hidden:
            raise ValueError("hidden: logistic models have no hidden layers (use model=mlp)")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def config_sha(config: TrainConfig | Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a (defaults-filled) trainer config."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    text = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- metrics (held-out data)

def log_loss(y_index: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-likelihood -mean(log p(true class)), natural log; proba n x K."""
    p = proba[np.arange(len(y_index)), y_index]
    return float(-np.mean(np.log(np.clip(p, 1e-15, 1.0))))


def accuracy(y_index: np.ndarray, proba: np.ndarray) -> float:
    """Share of rows whose most probable class is the true one."""
    return float(np.mean(np.argmax(proba, axis=1) == y_index))


def brier_score(y_index: np.ndarray, proba: np.ndarray) -> float:
    """Multi-class Brier score mean(sum_k (p_k - 1[y = k])^2); for two classes this is twice
    the binary Brier score (p - y)^2."""
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(y_index)), y_index] = 1.0
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve by the Mann-Whitney rank formula (ties get average ranks);
    NaN when only one class is present."""
    from scipy.stats import rankdata

    pos = np.asarray(positive, dtype=bool)
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


# ---------------------------------------------------------------- calibration

def platt_fit(score: np.ndarray, positive: np.ndarray, iterations: int = 100) -> tuple[float, float]:
    """Platt scaling: (a, b) maximising the likelihood of P(pos) = sigmoid(a logit(s) + b).

    Newton-Raphson with backtracking on the two parameters, Platt's smoothed targets
    ((n+ + 1)/(n+ + 2) and 1/(n- + 2)) so separable data do not diverge.
    """
    s = np.clip(np.asarray(score, dtype=np.float64), 1e-9, 1 - 1e-9)
    x = np.log(s / (1.0 - s))
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    t = np.where(pos, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    def objective(a: float, b: float) -> float:
        z = a * x + b  # -log-likelihood, written with logaddexp to stay finite
        return float(np.sum(t * np.logaddexp(0.0, -z) + (1.0 - t) * np.logaddexp(0.0, z)))

    a, b = 1.0, 0.0
    f = objective(a, b)
    for _ in range(iterations):
        p = 0.5 * (1.0 + np.tanh(0.5 * (a * x + b)))
        g = np.array([np.sum((p - t) * x), np.sum(p - t)])
        w = p * (1.0 - p) + 1e-12
        h = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]])
        h += 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        # backtracking (Lin, Lin & Weng 2007): a flat Hessian far from the optimum makes the
        # full Newton step overshoot
        scale = 1.0
        while scale > 1e-10:
            na, nb = a - scale * step[0], b - scale * step[1]
            nf = objective(na, nb)
            if nf <= f + 1e-4 * scale * float(g @ -step):
                break
            scale *= 0.5
        else:
            break
        converged = abs(f - nf) < 1e-12 * max(1.0, abs(f))
        a, b, f = na, nb, nf
        if converged or np.max(np.abs(scale * step)) < 1e-10:
            break
    return float(a), float(b)


def platt_apply(score: np.ndarray, a: float, b: float) -> np.ndarray:
    s = np.clip(np.asarray(score, dtype=np.float64), 1e-9, 1 - 1e-9)
    return 0.5 * (1.0 + np.tanh(0.5 * (a * np.log(s / (1.0 - s)) + b)))


def isotonic_fit(score: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic (non-decreasing) map from score to P(pos) by pool-adjacent-violators."""
    order = np.argsort(score, kind="mergesort")
    x = np.ascontiguousarray(np.asarray(score, dtype=np.float64)[order])
    y = np.ascontiguousarray(np.asarray(positive, dtype=np.float64)[order])
    return train_nb.isotonic_fit_nb(x, y, np.ones_like(x))


def isotonic_apply(score: np.ndarray, bx: np.ndarray, by: np.ndarray) -> np.ndarray:
    return np.clip(np.interp(score, bx, by), 1e-6, 1 - 1e-6)


# ---------------------------------------------------------------- model

def _act_code(name: str) -> int:
    return train_nb.ACT_TANH if name == "tanh" else train_nb.ACT_RELU


@dataclass
class TrainedModel:
    """A fitted, calibrated model. ``classes`` are the label values (e.g. (-1, 0, 1))."""

    model: str
    classes: tuple[int, ...]
    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    sizes: np.ndarray
    params: np.ndarray
    activation: str
    calibration: str
    calib_ab: np.ndarray  # Platt (a, b) per calibrated output, shape (m, 2)
    calib_x: np.ndarray  # isotonic knots of all outputs, concatenated
    calib_y: np.ndarray
    calib_splits: np.ndarray  # offsets into calib_x / calib_y, length m + 1
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    # -- prediction
    def _matrix(self, X) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self.feature_names if c not in X.columns]
            if missing:
                raise ValueError(f"X lacks feature columns {missing}")
            X = X.loc[:, list(self.feature_names)].to_numpy(dtype=np.float64)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(f"X must have {len(self.feature_names)} columns")
        return np.ascontiguousarray((X - self.mean) / self.scale)

    def raw_proba(self, X) -> np.ndarray:
        """Uncalibrated class probabilities, n x len(classes)."""
        out = train_nb.predict_proba_nb(self._matrix(X), self.params, self.sizes,
                                        _act_code(self.activation))
        if out.shape[1] == 1:
            out = np.column_stack([1.0 - out[:, 0], out[:, 0]])
        return out

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated class probabilities, n x len(classes), columns in ``classes`` order."""
        return _calibrate(self, self.raw_proba(X))

    def predict(self, X) -> np.ndarray:
        """Most probable label value per row."""
        return np.asarray(self.classes)[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X) -> np.ndarray:
        """Backtest score in [0, 1]: P(UP) (binary) or (1 + P(UP) - P(DOWN)) / 2 (3 classes)."""
        return _score(self.classes, self.predict_proba(X))

    # -- serialisation (zip of .npy arrays + JSON; no pickle, fixed timestamps)
    _ARRAYS = ("mean", "scale", "sizes", "params", "calib_ab", "calib_x", "calib_y",
               "calib_splits")

    def to_bytes(self) -> bytes:
        meta = {"format": FORMAT, "model": self.model, "classes": list(self.classes),
                "feature_names": list(self.feature_names), "activation": self.activation,
                "calibration": self.calibration, "config": self.config, "metrics": self.metrics}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for name in self._ARRAYS:
                arr_buf = io.BytesIO()
                np.lib.format.write_array(arr_buf, np.ascontiguousarray(getattr(self, name)),
                                          allow_pickle=False)
                zf.writestr(zipfile.ZipInfo(f"{name}.npy", (1980, 1, 1, 0, 0, 0)),
                            arr_buf.getvalue())
            text = json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=True)
            zf.writestr(zipfile.ZipInfo("meta.json", (1980, 1, 1, 0, 0, 0)), text.encode())
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "TrainedModel":
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise ValueError(f"not a model archive: {exc}") from None
        with zf:
            meta = json.loads(zf.read("meta.json"))
            if meta.get("format") != FORMAT:
                raise ValueError(f"unsupported model format {meta.get('format')!r}")
            arrays = {name: np.lib.format.read_array(io.BytesIO(zf.read(f"{name}.npy")),
                                                     allow_pickle=False)
                      for name in cls._ARRAYS}
        return cls(model=meta["model"], classes=tuple(meta["classes"]),
                   feature_names=tuple(meta["feature_names"]), activation=meta["activation"],
                   calibration=meta["calibration"], config=meta["config"],
                   metrics=meta["metrics"], **arrays)

    def sha(self) -> str:
        """SHA-256 of ``to_bytes()``: the key its weights are stored under."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def coefficients(self) -> tuple[np.ndarray, float]:
        """Binary logistic only: (weights, intercept) on the original, unstandardised features,
        so that logit P(pos) = x @ w + b before calibration."""
        if self.model != "logistic" or self.sizes[-1] != 1:
            raise ValueError("coefficients exist for binary logistic models only")
        d = len(self.feature_names)
        w_std = self.params[:d]
        b_std = self.params[d]
        w = w_std / self.scale
        return w, float(b_std - np.sum(w_std * self.mean / self.scale))


def _score(classes: Sequence[int], proba: np.ndarray) -> np.ndarray:
    if len(classes) == 2:
        return proba[:, 1]
    cls = list(classes)
    up = proba[:, cls.index(max(cls))]
    down = proba[:, cls.index(min(cls))]
    return (1.0 + up - down) / 2.0


def score_from_proba(classes: Sequence[int], proba: np.ndarray) -> np.ndarray:
    """The [0, 1] backtest score of class probabilities (columns in ``classes`` order): P(UP)
    for two classes, (1 + P(UP) - P(DOWN)) / 2 for three. Every model kind scores this way."""
    return _score(classes, proba)


def _calibrate(model: TrainedModel, raw: np.ndarray) -> np.ndarray:
    if model.calibration == "none":
        return raw
    outputs = [1] if raw.shape[1] == 2 else list(range(raw.shape[1]))
    cal = np.empty((raw.shape[0], len(outputs)))
    for m, k in enumerate(outputs):
        if model.calibration == "platt":
            cal[:, m] = platt_apply(raw[:, k], *model.calib_ab[m])
        else:
            lo, hi = model.calib_splits[m], model.calib_splits[m + 1]
            cal[:, m] = isotonic_apply(raw[:, k], model.calib_x[lo:hi], model.calib_y[lo:hi])
    if raw.shape[1] == 2:
        return np.column_stack([1.0 - cal[:, 0], cal[:, 0]])
    total = cal.sum(axis=1, keepdims=True)
    return cal / np.where(total > 0, total, 1.0)


def _metrics(classes, y_index: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    if len(y_index) == 0:
        return {"n": 0}
    up = y_index == len(classes) - 1
    return {"n": int(len(y_index)), "log_loss": log_loss(y_index, proba),
            "accuracy": accuracy(y_index, proba), "brier": brier_score(y_index, proba),
            "auc": roc_auc(up, _score(classes, proba))}


def held_out_metrics(classes: Sequence[int], y_index: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """n, log_loss, accuracy, brier and auc of probabilities on held-out rows (class indices)."""
    return _metrics(classes, y_index, proba)


def prepare_xy(X, y, feature_names: Sequence[str] | None = None):
    """The training rows every trainer starts from: ``X`` as a float matrix (a DataFrame's
    columns name the features, or ``feature_names`` picks them), rows with a NaN label dropped,
    the label classes (two or three integer values, sorted) and each row's class index.
    Returns ``(X, y_index, classes, feature_names)``."""
    if isinstance(X, pd.DataFrame):
        feature_names = list(X.columns) if feature_names is None else list(feature_names)
        X = X.loc[:, feature_names].to_numpy(dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError("X must be 2-D with one row per label")
    if feature_names is None:
        feature_names = [f"x{i}" for i in range(X.shape[1])]
    keep = ~np.isnan(y)
    X, y = X[keep], y[keep]
    if not np.all(np.isfinite(X)):
        raise ValueError("X holds NaN or infinite values")
    classes = tuple(int(c) for c in np.unique(y))
    if not 2 <= len(classes) <= 3:
        raise ValueError(f"labels must hold at least two classes and at most three, got {classes}")
    y_index = np.searchsorted(np.asarray(classes, dtype=np.float64), y).astype(np.int64)
    return X, y_index, classes, list(feature_names)


def train_model(X, y, config: TrainConfig | Mapping[str, Any] | None = None,
                feature_names: Sequence[str] | None = None) -> TrainedModel:
    """Fit a model on time-ordered rows (see module docstring); rows with NaN label dropped.

    ``X`` is n x d (array or DataFrame, whose columns name the features); ``y`` holds integer
    label values (e.g. -1/0/1). Returns a calibrated ``TrainedModel`` whose ``metrics`` hold
    ``raw`` and ``calibrated`` held-out figures (n, log_loss, accuracy, brier, auc),
    the row counts and the training loss per epoch.
    """
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    X, y_index, classes, feature_names = prepare_xy(X, y, feature_names)
    n = len(y_index)
    n_hold = int(math.ceil(n * cfg.holdout_fraction))
    n_fit = n - n_hold
    n_cal = n_hold // 2 if cfg.calibration != "none" else 0
    if n_fit < 10 or n_hold - n_cal < 5:
        raise ValueError(f"too few labelled rows to train ({n})")
    fit, cal, ev = slice(0, n_fit), slice(n_fit, n_fit + n_cal), slice(n_fit + n_cal, n)

    mean = X[fit].mean(axis=0)
    scale = X[fit].std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Xs = np.ascontiguousarray((X - mean) / scale)

    k_out = 1 if len(classes) == 2 else len(classes)
    sizes = np.array([X.shape[1], *cfg.hidden, k_out], dtype=np.int64)
    act = _act_code(cfg.activation)
    params = train_nb.init_params_nb(sizes, act, cfg.seed)
    opt = train_nb.OPT_ADAM if cfg.optimizer == "adam" else train_nb.OPT_SGD
    losses = train_nb.fit_nb(np.ascontiguousarray(Xs[fit]), y_index[fit].copy(), params, sizes,
                             act, float(cfg.learning_rate), int(cfg.epochs),
                             int(cfg.batch_size), float(cfg.l2), opt, int(cfg.seed))

    model = TrainedModel(
        model=cfg.model, classes=classes, feature_names=tuple(feature_names), mean=mean,
        scale=scale, sizes=sizes, params=params, activation=cfg.activation,
        calibration="none", calib_ab=np.zeros((0, 2)), calib_x=np.zeros(0),
        calib_y=np.zeros(0), calib_splits=np.zeros(1, dtype=np.int64), config=cfg.to_dict())
    raw_cal = model.raw_proba(X[cal])
    if cfg.calibration != "none":
        outputs = [1] if len(classes) == 2 else list(range(len(classes)))
        ab, xs, ys, splits = [], [], [], [0]
        for k in outputs:
            positive = y_index[cal] == k
            if cfg.calibration == "platt":
                ab.append(platt_fit(raw_cal[:, k], positive))
            else:
                bx, by = isotonic_fit(raw_cal[:, k], positive)
                xs.append(bx)
                ys.append(by)
                splits.append(splits[-1] + len(bx))
        model.calibration = cfg.calibration
        if ab:
            model.calib_ab = np.asarray(ab, dtype=np.float64)
        if xs:
            model.calib_x, model.calib_y = np.concatenate(xs), np.concatenate(ys)
            model.calib_splits = np.asarray(splits, dtype=np.int64)
    raw_ev = model.raw_proba(X[ev])
    model.metrics = {
        "raw": _metrics(classes, y_index[ev], raw_ev),
        "calibrated": _metrics(classes, y_index[ev], _calibrate(model, raw_ev)),
        "n_fit": int(n_fit), "n_calibration": int(n_cal), "n_eval": int(n - n_fit - n_cal),
        "train_loss": [float(v) for v in losses],
    }
    return model


def train_from_matrix(matrix: pd.DataFrame, config: TrainConfig | Mapping[str, Any] | None = None,
                      allowed_hours: Sequence[int] | None = None,
                      features: Sequence[str] | None = None) -> TrainedModel:
    """Train on a ``compute.features.build_matrix`` frame: its ``f_*`` columns (or
    ``features``) against ``label``, rows in time order, optionally only ``allowed_hours``."""
    cols = list(features) if features is not None else feature_columns(matrix)
    rows = matrix[matrix["label"].notna()]
    if allowed_hours is not None:
        rows = rows[rows["hour"].isin(list(allowed_hours))]
    if "timestamp" in rows.columns:
        rows = rows.sort_values("timestamp", kind="mergesort")
    return train_model(rows[cols], rows["label"].to_numpy(), config, feature_names=cols)
