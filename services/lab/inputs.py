"""Walk-forward inputs: a model's matrix, folds and out-of-sample scores, as backtests and sweeps take them."""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from cluster.artifacts import ArtifactStore
from cluster.catalog import Catalog
from compute import packs as packs_mod
from compute.train import feature_columns
from services.lab.common import ANNUAL_SESSIONS, DEFAULT_SPLITS, LabInputError, code_version, parse_date
from services.lab.matrices import get_matrix, load_matrix
from services.lab.models import get_model
from compute.estimators import is_estimator_config, library_versions
from services.lab.training import allowed_model_modules, latest_training, training_config

log = logging.getLogger("sigma.lab")


@dataclass
class LabInputs:
    """Everything a backtest or a sweep of one model needs, computed once.

    Out-of-sample rows are ``matrix.iloc[first:]``; the per-bar arrays (``open``, ``close``,
    ``hour``, ``scores``, ``segments``, ``timestamps``) cover those rows only. ``scores`` are
    walk-forward scores (fold k's model, trained on ``folds[k].train`` only, scores fold k's
    test rows); ``train_scores[k]`` are fold k's in-sample scores, the only data top_pct
    cut-offs may be fitted on. Costs are the risk profile's (bps, one way).
    """

    model_pk: int
    model_id: str
    pack: Any
    risk_profile: str
    matrix_sha: str
    matrix: pd.DataFrame
    feature_names: list[str]
    train_config: dict
    train_allowed_hours: list[int] | None
    folds: list
    first: int
    n_splits: int
    label_horizon: int
    embargo: int
    scores: np.ndarray
    segments: np.ndarray
    train_scores: list[np.ndarray]
    open: np.ndarray
    close: np.ndarray
    hour: np.ndarray
    timestamps: pd.DatetimeIndex
    fees_bps: float
    slippage_bps: float
    periods_per_year: float
    extras: dict = field(default_factory=dict)

    @property
    def is_options(self) -> bool:
        return self.pack.instrument == "options"

    def fold_boundaries(self) -> list[dict]:
        return [{"fold": f.index, "train_end": int(f.train[-1]) + 1, "test_start": f.test_start,
                 "test_end": f.test_end} for f in self.folds]


def bars_per_year(matrix: pd.DataFrame, cadence: str) -> float:
    """Annualisation: 252 sessions times the typical number of bars per session."""
    if cadence == "daily" or len(matrix) == 0:
        return ANNUAL_SESSIONS
    per_session = matrix.groupby("session_date").size()
    return ANNUAL_SESSIONS * float(per_session.max())


def _fold_scores(frame: pd.DataFrame, folds, cfg: dict, hours, feature_names, progress=None,
                 allowed_modules=None):
    """Each fold's model (either kind: ``compute.estimators.fit_from_matrix``) trained on its
    training rows, scoring them and its test rows."""
    from compute import estimators

    allowed = allowed_model_modules(allowed_modules)
    train_scores, test_scores = [], []
    for k, fold in enumerate(folds):
        train_df = frame.iloc[fold.train]
        test_df = frame.iloc[fold.test]
        try:
            model = estimators.fit_from_matrix(train_df, cfg, allowed, allowed_hours=hours, features=feature_names)
        except estimators.EstimatorError as exc:
            raise LabInputError("model_id", f"the model's latest training: {exc}") from None
        except ValueError as exc:
            raise LabInputError("config.splits", f"fold {k} cannot be trained ({exc}); use fewer splits "
                                "or a longer matrix") from None
        train_scores.append(model.score(train_df[feature_names]))
        test_scores.append(model.score(test_df[feature_names]))
        if progress:
            progress((k + 1) / len(folds), f"fold {k + 1}/{len(folds)} trained")
    return train_scores, test_scores


def model_inputs(catalog: Catalog, store: ArtifactStore, user_id: int, model_id: str, matrix_sha: str | None = None,
                 *, start_date=None, end_date=None, n_splits: int = DEFAULT_SPLITS, embargo: int | None = None,
                 risk_profile: str | None = None, progress: Callable | None = None,
                 allowed_modules=None) -> LabInputs:
    """Walk-forward inputs of the user's model (see ``LabInputs``).

    The trainer settings are those of the model's latest completed training (else the
    model's/template's trainer defaults); an estimator training (your own model) is refitted
    per fold the same way, from the modules ``allowed_modules`` permits (default: settings). ``start_date``/``end_date`` restrict the matrix
    rows used (inclusive session dates). Purge = the label horizon; ``embargo`` defaults to
    the label horizon too.
    """
    from compute.walkforward import walk_forward_splits

    model = get_model(catalog, user_id, model_id)
    pack = packs_mod.get_pack(model.pack_id)
    try:
        matrix_row = get_matrix(catalog, model.id, matrix_sha)
    except LookupError as exc:
        raise LabInputError("matrix_sha", str(exc)) from None
    frame = load_matrix(store, matrix_row)
    if start_date is not None or end_date is not None:
        dates = pd.to_datetime(frame["session_date"])
        keep = np.ones(len(frame), dtype=bool)
        if start_date is not None:
            keep &= (dates >= pd.Timestamp(parse_date(start_date, "start_date"))).to_numpy()
        if end_date is not None:
            keep &= (dates <= pd.Timestamp(parse_date(end_date, "end_date"))).to_numpy()
        frame = frame[keep]
    frame = frame.sort_values("timestamp", kind="mergesort").reset_index(drop=True)
    training = latest_training(catalog, model.id)
    if training is not None:
        cfg = dict(training.config)
        hours = cfg.pop("allowed_hours", None)
    else:
        cfg = training_config(model, None)
        hours = None
    horizon = int(pack.label.horizon_bars)
    embargo = horizon if embargo is None else int(embargo)
    if not 1 <= int(n_splits) <= 20:
        raise LabInputError("config.splits", "must be between 1 and 20")
    try:
        folds = walk_forward_splits(len(frame), int(n_splits), horizon, embargo)
    except ValueError as exc:
        raise LabInputError("config.splits", f"{exc} ({len(frame)} matrix rows in the date range)") from None
    feature_names = feature_columns(frame)
    # Fold scores are a pure function of these inputs: kept in the artifact store so a sweep
    # after a backtest of the same model (or a second sweep) does not retrain every fold. A
    # cache: an unreadable entry is a miss, a racing writer with other bytes is ignored.
    import json

    key_doc = {"matrix_sha": matrix_row.matrix_sha, "rows": len(frame),
               "span": [str(frame["timestamp"].iloc[0]), str(frame["timestamp"].iloc[-1])],
               "train_config": cfg, "allowed_hours": hours, "features": list(feature_names),
               "splits": int(n_splits), "purge": horizon, "embargo": embargo, "code": code_version()}
    if is_estimator_config(cfg):  # your own model's scores also depend on its library versions
        key_doc["libraries"] = library_versions(cfg["estimator"])
    key = json.dumps(key_doc, sort_keys=True, default=str)
    cache_path = f"walkforward/{hashlib.sha256(key.encode()).hexdigest()}/fold_scores.npz"
    train_scores = test_scores = None
    try:
        with np.load(io.BytesIO(store.get(cache_path))) as cached:
            train_scores = [cached[f"train_{k}"] for k in range(len(folds))]
            test_scores = [cached[f"test_{k}"] for k in range(len(folds))]
    except Exception:  # noqa: BLE001 - any miss or damage: recompute
        train_scores = test_scores = None
    if train_scores is None:
        train_scores, test_scores = _fold_scores(frame, folds, cfg, hours, feature_names, progress, allowed_modules)
        buffer = io.BytesIO()
        np.savez(buffer, **{f"train_{k}": np.asarray(t, dtype=np.float64) for k, t in enumerate(train_scores)},
                 **{f"test_{k}": np.asarray(t, dtype=np.float64) for k, t in enumerate(test_scores)})
        try:
            store.put(buffer.getvalue(), path=cache_path)
        except Exception:  # noqa: BLE001 - the cache never fails the caller
            log.warning("could not cache walk-forward scores at %s", cache_path, exc_info=True)
    elif progress:
        progress(1.0, f"{len(folds)} folds from cache")
    first = folds[0].test_start
    n_oos = len(frame) - first
    scores = np.full(n_oos, np.nan)
    segments = np.zeros(n_oos, dtype=np.int64)
    for fold, ts in zip(folds, test_scores):
        scores[fold.test_start - first:fold.test_end - first] = ts
        segments[fold.test_start - first:fold.test_end - first] = fold.index
    oos = frame.iloc[first:]
    profile = risk_profile or model.risk_profile
    policy = pack.policy(profile)
    return LabInputs(
        model_pk=model.id, model_id=model.model_id, pack=pack, risk_profile=profile,
        matrix_sha=matrix_row.matrix_sha, matrix=frame, feature_names=feature_names, train_config=cfg,
        train_allowed_hours=hours, folds=folds, first=first, n_splits=int(n_splits), label_horizon=horizon,
        embargo=embargo, scores=scores, segments=segments, train_scores=[np.asarray(t) for t in train_scores],
        open=oos["open"].to_numpy(np.float64), close=oos["close"].to_numpy(np.float64),
        hour=oos["hour"].to_numpy(np.int64), timestamps=pd.DatetimeIndex(oos["timestamp"]),
        fees_bps=policy.fees_bps, slippage_bps=policy.slippage_bps,
        periods_per_year=bars_per_year(frame, pack.cadence),
        extras={"test_scores": test_scores},
    )
