"""Trainings: quotas, the trainer's config, the training job's work, stored weights."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy import func, select

from cluster.artifacts import ArtifactStore
from cluster.catalog import Catalog, LabModel, Training
from cluster.catalog.models import utcnow
from compute import packs as packs_mod
from services.lab.common import LabInputError, code_version
from compute.jsonsafe import json_safe
from services.lab.matrices import get_matrix, load_matrix
from services.lab.models import get_model

log = logging.getLogger("sigma.lab")

TRAIN_QUOTAS = {  # per user: (per day, at once); tiers may raise them (docs/spec/reference.md quotas)
    "free": (20, 2), "basic": (20, 2), "pro": (20, 2), "enterprise": (100, 4),
}


def train_quota(tier: str) -> tuple[int, int]:
    return TRAIN_QUOTAS.get(tier, TRAIN_QUOTAS["free"])


def trainings_last_day(catalog: Catalog, user_id: int) -> int:
    since = utcnow() - dt.timedelta(days=1)
    with catalog.session() as s:
        return int(s.scalar(select(func.count()).select_from(Training)
                            .join(LabModel, LabModel.id == Training.model_pk)
                            .where(LabModel.user_id == user_id, Training.created_at >= since)) or 0)


def allowed_model_modules(allowed: Sequence[str] | None = None) -> list[str]:
    """The estimator module allow-list: the caller's settings' ``model_modules`` (default: the
    process's settings)."""
    if allowed is not None:
        return list(allowed)
    from cluster.config import get_settings

    return list(get_settings().model_modules)


def training_config(model: LabModel, config: Mapping[str, Any] | None,
                    allowed_modules: Sequence[str] | None = None) -> dict:
    """The model's trainer settings overridden by the request's, validated and defaults-filled.

    A config naming an ``estimator`` is your own scikit-learn-compatible model
    (``compute.estimators``): it is checked against the allow-list and stands alone (the
    template's built-in trainer settings do not apply to it)."""
    from compute import estimators
    from compute.train import TrainConfig, config_errors

    if estimators.is_estimator_config(config):
        try:
            return estimators.normalise_config(config, allowed_model_modules(allowed_modules))
        except estimators.EstimatorError as exc:
            raise LabInputError(exc.field, exc.reason) from None
    base = dict((model.config or {}).get("trainer") or packs_mod.get_pack(model.pack_id).trainer.to_dict())
    override = dict(config or {})
    errors = config_errors(override, "config.")
    if errors:
        raise LabInputError(errors[0]["field"], errors[0]["message"])
    try:
        return TrainConfig.from_dict({**base, **override}).to_dict()
    except ValueError as exc:
        raise LabInputError("config", str(exc)) from None


def trainer_config_sha(config: Mapping[str, Any]) -> str:
    """The lineage hash of a normalised trainer config (either kind)."""
    from compute import estimators
    from compute.train import config_sha

    return estimators.config_sha(config) if estimators.is_estimator_config(config) else config_sha(config)


def check_allowed_hours(pack_id: str, hours, field_name: str = "allowed_hours") -> list[int] | None:
    if hours is None:
        return None
    pack = packs_mod.get_pack(pack_id)
    open_h = int(pack.session.open[:2])
    close_h = int(pack.session.close[:2]) - (1 if pack.session.close.endswith(":00") else 0)
    if pack.cadence == "daily":
        open_h = close_h = 9  # daily bars carry the session open hour
    if not isinstance(hours, (list, tuple)) or not hours:
        raise LabInputError(field_name, "must be a non-empty list of hours")
    out = []
    for h in hours:
        if isinstance(h, bool) or not isinstance(h, int) or not open_h <= h <= close_h:
            raise LabInputError(field_name, f"hours must lie within {open_h}-{close_h} (America/New_York) "
                                f"for {pack.cadence} bars")
        out.append(int(h))
    return sorted(set(out))


def create_training(catalog: Catalog, user_id: int, model_id: str, matrix_sha: str | None,
                    allowed_hours, config: Mapping[str, Any] | None,
                    allowed_modules: Sequence[str] | None = None) -> tuple[Training, LabModel]:
    """Validate a training request and record it (status queued); the job fills it in. Bad
    input (an estimator outside the allow-list, an unknown parameter) writes nothing."""
    model = get_model(catalog, user_id, model_id)
    try:
        matrix = get_matrix(catalog, model.id, matrix_sha)
    except LookupError as exc:
        raise LabInputError("matrix_sha", str(exc)) from None
    hours = check_allowed_hours(model.pack_id, allowed_hours)
    cfg = training_config(model, config, allowed_modules)

    with catalog.session() as s:
        row = Training(model_pk=model.id, matrix_sha=matrix.matrix_sha,
                       config={**cfg, "allowed_hours": hours}, config_sha=trainer_config_sha(cfg),
                       code_version=code_version(), status="queued")
        s.add(row)
        s.flush()
        return row, model


def estimate_train_seconds(rows: int, config: Mapping[str, Any]) -> int:
    """Rough wall time: a few microseconds per row-epoch plus the worker start-up."""
    epochs = int(config.get("epochs", 30))
    return int(max(2, 2 + rows * epochs * 2e-6 * (4 if config.get("model") == "mlp" else 1)))


def run_training(catalog: Catalog, store: ArtifactStore, training_id: str, progress: Callable | None = None,
                 allowed_modules: Sequence[str] | None = None) -> dict:
    """Fit the model on its matrix, store the weights by SHA (an estimator's with the library
    versions that wrote them), record lineage. The job body."""
    from compute import estimators

    with catalog.session() as s:
        tr = s.get(Training, training_id)
        if tr is None:
            raise LookupError(f"training {training_id} not found")
        tr.status = "running"
        model = s.get(LabModel, tr.model_pk)
        cfg = dict(tr.config)
        matrix_sha = tr.matrix_sha
    matrix_row = get_matrix(catalog, model.id, matrix_sha)
    frame = load_matrix(store, matrix_row)
    if progress:
        progress(0.2, "matrix loaded")
    hours = cfg.pop("allowed_hours", None)
    try:
        trained = estimators.fit_from_matrix(frame, cfg, allowed_model_modules(allowed_modules), allowed_hours=hours)
    except estimators.EstimatorError as exc:
        with catalog.session() as s:
            tr = s.get(Training, training_id)
            tr.status, tr.finished_at = "failed", utcnow()
            tr.metrics = {"error": str(exc)}
        raise LabInputError(exc.field, exc.reason) from None
    except ValueError as exc:
        with catalog.session() as s:
            tr = s.get(Training, training_id)
            tr.status, tr.finished_at = "failed", utcnow()
            tr.metrics = {"error": str(exc)}
        raise LabInputError("matrix_sha", f"cannot train on this matrix: {exc}") from None
    if progress:
        progress(0.8, "weights fitted")
    ref = store.put(trained.to_bytes(), prefix="weights", ext="bin")
    metrics = json_safe({k: v for k, v in trained.metrics.items() if k != "train_loss"}
                         | {"final_train_loss": trained.metrics["train_loss"][-1] if trained.metrics.get("train_loss") else None,
                            "features": list(trained.feature_names), "classes": list(trained.classes)})
    with catalog.session() as s:
        tr = s.get(Training, training_id)
        tr.weights_sha, tr.weights_path = ref.sha, ref.path
        tr.status, tr.finished_at, tr.metrics = "completed", utcnow(), metrics
        m = s.get(LabModel, tr.model_pk)
        m.lineage = {**(m.lineage or {}), "matrix_sha": tr.matrix_sha, "config_sha": tr.config_sha,
                     "weights_sha": ref.sha, "code_version": tr.code_version, "training_id": tr.id,
                     "estimator": cfg.get("estimator"),
                     "library_versions": getattr(trained, "versions", None) or None}
        m.updated_at = utcnow()
        lineage = dict(m.lineage)
    return {"training_id": training_id, "model_id": model.model_id, "weights_sha": ref.sha,
            "weights_path": ref.path, "metrics": metrics, "lineage": lineage}


def latest_training(catalog: Catalog, model_pk: int) -> Training | None:
    with catalog.session() as s:
        return s.scalar(select(Training).where(Training.model_pk == model_pk, Training.status == "completed")
                        .order_by(Training.finished_at.desc()).limit(1))


def load_weights(store: ArtifactStore, training: Training, allowed_modules: Sequence[str] | None = None):
    """The training's stored model: a built-in ``TrainedModel`` or an ``EstimatorModel`` (both
    score with ``score``/``predict_proba``). Estimator weights written by other library
    versions, or whose estimator is no longer allowed, raise ``LabInputError`` on ``model_id``."""
    from compute import estimators

    data = store.get(training.weights_path, sha=training.weights_sha)
    try:
        return estimators.load_model(data, allowed_model_modules(allowed_modules))
    except estimators.EstimatorError as exc:
        raise LabInputError("model_id", exc.reason) from None
    except estimators.VersionMismatch as exc:
        raise LabInputError("model_id", str(exc)) from None
