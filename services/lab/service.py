"""Lab service: models CRUD, feature matrices, walk-forward inputs, results.

Everything here takes a ``Catalog`` (one ``catalog.session()`` unit of work per change) and,
where artifacts are involved, an ``ArtifactStore``; routers and jobs call these functions,
the issue-7 sweep, leaderboard and signal code builds on them.

Errors: ``LookupError`` for a model or matrix that does not exist *for this user* (routes turn
it into 404, so another user's model is indistinguishable from a missing one);
``LabInputError(field, reason)`` (a ``ValueError``) for bad input naming the field.

Matrices are content-addressed twice over: ``matrix_sha`` is
``compute.features.matrix_sha`` of the canonical description of the inputs (data source and
version, tickers, dates, cadence, session, features and parameters, label, implied-vol
digest, feature code version); ``content_sha`` is the SHA-256 of the Parquet bytes, verified
on every read. The same request is recognised *before* any market data is fetched by its
``request_sha`` (the same description minus the implied-vol digest, which would need the
option chains to compute; the provider's ``data_version`` pins those), so repeating a
request returns the stored matrix without recomputing it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from cluster.artifacts import ArtifactStore
from cluster.catalog import Backtest, Catalog, LabModel, LeaderboardEntry, Matrix, Sweep, Training, User
from cluster.catalog.models import utcnow
from compute import pack_config
from compute import packs as packs_mod
from compute.train import feature_columns
from compute.features import (
    build_matrix_from_provider,
    canonical_matrix_description,
    matrix_sha as description_sha,
    resolve_features,
)

log = logging.getLogger("sigma.lab")

#: Request limits: a matrix spans at most this many calendar days per cadence.
MAX_SPAN_DAYS = {"daily": 366 * 30, "hourly": 366 * 5}
DEFAULT_SPLITS = 5
ANNUAL_SESSIONS = 252.0
_CODE_FILES = ("features.py", "indicators.py", "indicators_nb.py", "train.py", "train_nb.py",
               "backtest.py", "backtest_nb.py", "walkforward.py", "gates.py", "stats.py", "stats_nb.py")


class LabInputError(ValueError):
    """Bad input to a Lab operation; ``field`` names the offending request field."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# ----------------------------------------------------------------- helpers

def clean_json(value: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python (PostgreSQL JSON has no NaN)."""
    # exact-type fast paths first: a sweep cleans a metric dict and a config per configuration
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, Mapping):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [clean_json(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, (dt.datetime, dt.date, pd.Timestamp)):
        return value.isoformat()
    return value


def _finite(value) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


_code_version: str | None = None


def code_version() -> str:
    """First 16 hex digits of the SHA-256 of the compute modules behind matrices, trainers and
    backtests: recorded in every lineage so a result names the code that produced it."""
    global _code_version
    if _code_version is None:
        import compute

        here = Path(compute.__file__).resolve().parent
        h = hashlib.sha256()
        for name in _CODE_FILES:
            path = here / name
            h.update(name.encode())
            if path.exists():
                h.update(path.read_bytes())
        _code_version = h.hexdigest()[:16]
    return _code_version


def parse_date(value, field_name: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise LabInputError(field_name, "must be a date in YYYY-MM-DD format") from None


# ----------------------------------------------------------------- packs and templates

def list_packs() -> list[dict]:
    """Every pack with its policies and the ids of its templates."""
    out = []
    for pack in packs_mod.list_packs():
        d = pack.to_dict()
        d["templates"] = [t.template_id for t in packs_mod.templates_for(pack.pack_id)]
        out.append(d)
    return out


def pack_templates(pack_id: str) -> list[dict]:
    try:
        return [t.to_dict() for t in packs_mod.templates_for(pack_id)]
    except ValueError as exc:
        raise LookupError(str(exc)) from None


# ----------------------------------------------------------------- models

def model_summary(model: LabModel) -> dict:
    """One row of ``GET /models`` (Lab spec)."""
    metrics = model.metrics or {}
    lineage = model.lineage or {}
    return {
        "model_id": model.model_id,
        "pack_id": model.pack_id,
        "name": model.name,
        "updated_at": model.updated_at.isoformat() if model.updated_at else None,
        "sharpe": metrics.get("sharpe"),
        "cum_ret": metrics.get("cum_ret"),
        "lineage": {
            "matrix_sha": lineage.get("matrix_sha"),
            "config_sha": lineage.get("config_sha"),
            "risk_profile": model.risk_profile,
        },
    }


def model_detail(model: LabModel, username: str | None = None) -> dict:
    """``GET /models/{id}``: config, latest metrics and full lineage."""
    lineage = dict(model.lineage or {})
    lineage.setdefault("matrix_sha", None)
    lineage.setdefault("config_sha", None)
    lineage.setdefault("weights_sha", None)
    lineage.setdefault("code_version", None)
    lineage["created_by"] = username
    lineage["created_at"] = model.created_at.isoformat() if model.created_at else None
    lineage["risk_profile"] = model.risk_profile
    lineage["template_id"] = model.template_id
    return {
        "model_id": model.model_id,
        "pack_id": model.pack_id,
        "template_id": model.template_id,
        "name": model.name,
        "risk_profile": model.risk_profile,
        "config": model.config,
        "metrics": model.metrics,
        "lineage": lineage,
        "created_at": model.created_at.isoformat() if model.created_at else None,
        "updated_at": model.updated_at.isoformat() if model.updated_at else None,
    }


def create_model(catalog: Catalog, user_id: int, template_id: str, *, name: str | None = None,
                 risk_profile: str | None = None, config: dict | None = None) -> LabModel:
    """A model from a template; the model id follows REFERENCE.md naming and is unique per user.

    ``risk_profile`` may come as a top-level field or inside ``config``; a clash is an error.
    A duplicate model id raises ``LabInputError`` on ``config.variant`` (add a variant to
    create a second model of the same ticker and pack).
    """
    config = dict(config or {})
    if risk_profile is not None:
        if risk_profile not in packs_mod.RISK_PROFILES:
            raise LabInputError("risk_profile", f"must be one of {list(packs_mod.RISK_PROFILES)}")
        if config.get("risk_profile") not in (None, risk_profile):
            raise LabInputError("config.risk_profile", "differs from risk_profile")
        config["risk_profile"] = risk_profile
    errors = pack_config.validate_template_config(template_id, config)
    if errors:
        first = errors[0]
        raise LabInputError(first["field"], first["message"])
    merged = pack_config.merged_config(template_id, config)
    mid = merged.pop("model_id")
    pack_id = merged["pack_id"]
    try:
        with catalog.session() as s:
            exists = s.scalar(select(LabModel.id).where(LabModel.user_id == user_id, LabModel.model_id == mid))
            if exists is not None:
                raise LabInputError("config.variant", f"you already have a model {mid}; give this one a "
                                    "config.variant (e.g. \"v2\") or another ticker")
            model = LabModel(user_id=user_id, model_id=mid, pack_id=pack_id, template_id=template_id,
                             name=name, risk_profile=merged["risk_profile"], config=merged,
                             lineage={"code_version": code_version()})
            s.add(model)
            s.flush()
            return model
    except IntegrityError:
        raise LabInputError("config.variant", f"you already have a model {mid}") from None


def get_model(catalog: Catalog, user_id: int, model_id: str) -> LabModel:
    """The user's model; ``LookupError`` when missing or another user's."""
    with catalog.session() as s:
        model = s.scalar(select(LabModel).where(LabModel.user_id == user_id, LabModel.model_id == model_id))
        if model is None:
            raise LookupError(f"model {model_id} not found")
        return model


def list_models(catalog: Catalog, user_id: int, *, model_id: str | None = None, pack_id: str | None = None,
                limit: int = 100, offset: int = 0) -> tuple[list[LabModel], int]:
    where = [LabModel.user_id == user_id]
    if model_id:
        where.append(LabModel.model_id == model_id)
    if pack_id:
        where.append(LabModel.pack_id == pack_id)
    with catalog.session() as s:
        total = s.scalar(select(func.count()).select_from(LabModel).where(*where)) or 0
        rows = s.scalars(select(LabModel).where(*where).order_by(LabModel.updated_at.desc(), LabModel.id.desc())
                         .limit(limit).offset(offset)).all()
    return list(rows), int(total)


def find_models_admin(catalog: Catalog, model_id: str, username: str | None = None) -> list[tuple[LabModel, str]]:
    """Models with this id across users (admin routes), optionally of one user."""
    query = select(LabModel, User.username).join(User, User.id == LabModel.user_id).where(LabModel.model_id == model_id)
    if username:
        query = query.where(User.username == username)
    with catalog.session() as s:
        return [(m, u) for m, u in s.execute(query).all()]


def update_model_admin(catalog: Catalog, model_pk: int, *, config: dict | None = None, name: str | None = None,
                       risk_profile: str | None = None) -> LabModel:
    """Admin change of a model's config (merged over the current one and re-validated),
    name or risk profile. The model id never changes (results and lineage refer to it)."""
    with catalog.session() as s:
        model = s.get(LabModel, model_pk)
        if model is None:
            raise LookupError(f"model {model_pk} not found")
        current = dict(model.config or {})
        override = {k: current[k] for k in pack_config.CONFIG_KEYS if k in current}
        if config:
            for key, value in config.items():
                if key == "trainer" and isinstance(value, dict):
                    override["trainer"] = {**override.get("trainer", {}), **value}
                elif key == "thresholds" and isinstance(value, dict):
                    override["thresholds"] = {**(override.get("thresholds") or {}), **value}
                else:
                    override[key] = value
        if risk_profile is not None:
            if risk_profile not in packs_mod.RISK_PROFILES:
                raise LabInputError("risk_profile", f"must be one of {list(packs_mod.RISK_PROFILES)}")
            override["risk_profile"] = risk_profile
        for key in ("ticker", "variant"):
            if key in (config or {}) and config[key] != current.get(key):
                raise LabInputError(f"config.{key}", "cannot change: the model id is derived from it; create a new model")
        errors = pack_config.validate_template_config(model.template_id, override)
        if errors:
            raise LabInputError(errors[0]["field"], errors[0]["message"])
        merged = pack_config.merged_config(model.template_id, override)
        merged.pop("model_id", None)
        model.config = merged
        model.risk_profile = merged["risk_profile"]
        if name is not None:
            model.name = name
        model.updated_at = utcnow()
        s.flush()
        return model


def delete_model_admin(catalog: Catalog, store: ArtifactStore, model_pk: int) -> dict:
    """Delete a model's rows and the artifacts only it references (another model built from the
    same request shares the matrix file; that file stays)."""
    with catalog.session() as s:
        model = s.get(LabModel, model_pk)
        if model is None:
            raise LookupError(f"model {model_pk} not found")
        paths: set[str] = set()
        paths.update(p for p in s.scalars(select(Matrix.path).where(Matrix.model_pk == model_pk)) if p)
        paths.update(p for p in s.scalars(select(Training.weights_path).where(Training.model_pk == model_pk)) if p)
        paths.update(p for p in s.scalars(select(Backtest.fills_path).where(Backtest.model_pk == model_pk)) if p)
        shared: set[str] = set()
        if paths:
            shared.update(s.scalars(select(Matrix.path).where(Matrix.model_pk != model_pk, Matrix.path.in_(paths))))
            shared.update(s.scalars(select(Training.weights_path).where(Training.model_pk != model_pk,
                                                                      Training.weights_path.in_(paths))))
            shared.update(s.scalars(select(Backtest.fills_path).where(Backtest.model_pk != model_pk,
                                                                    Backtest.fills_path.in_(paths))))
        counts = {}
        for table in (LeaderboardEntry, Sweep, Backtest, Training, Matrix):
            res = s.execute(delete(table).where(table.model_pk == model_pk))
            counts[table.__tablename__] = res.rowcount
        s.delete(model)
    removed = []
    for path in sorted(paths - shared):
        try:
            store.delete(path)
            removed.append(path)
        except Exception:  # noqa: BLE001 - rows are gone; a leftover file is logged, not fatal
            log.exception("could not delete artifact %s", path)
    return {"deleted_rows": counts, "deleted_artifacts": removed, "kept_shared_artifacts": sorted(paths & shared)}


# ----------------------------------------------------------------- matrices

def _model_ticker(model: LabModel) -> str:
    return (model.config or {}).get("ticker") or packs_mod.get_pack(model.pack_id).default_ticker


def matrix_path(model_id: str, sha: str) -> str:
    return f"matrices/{model_id}_{sha[:8]}.parquet"


def matrix_response(row: Matrix) -> dict:
    return {
        "matrix_sha": row.matrix_sha,
        "rows": row.rows,
        "columns": row.columns,
        "size_mb": round(row.size_bytes / 1e6, 4),
        "status": "completed",
        "path": row.path,
        "content_sha": row.content_sha,
        "start_date": row.description.get("start"),
        "end_date": row.description.get("end"),
        "features": [f["name"] for f in row.description.get("features", [])],
    }


def _frame_to_parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False, engine="pyarrow", compression="zstd")
    return buf.getvalue()


def build_matrix(catalog: Catalog, store: ArtifactStore, provider, user_id: int, model_id: str,
                 start_date, end_date, features: Sequence[str] | None = None) -> tuple[dict, bool]:
    """Build (or find) the model's feature matrix; returns ``(response, created)``.

    ``features`` default to the model's indicators. Rows are the pack's session bars of the
    model's ticker between the dates; the pack's label and the prices the backtester needs are
    columns (``compute.features``). The same request returns the stored matrix without
    fetching a bar.
    """
    model = get_model(catalog, user_id, model_id)
    pack = packs_mod.get_pack(model.pack_id)
    start = parse_date(start_date, "start_date")
    end = parse_date(end_date, "end_date")
    if start > end:
        raise LabInputError("end_date", "must not be before start_date")
    if end > dt.date.today():
        raise LabInputError("end_date", "must not be in the future")
    if (end - start).days > MAX_SPAN_DAYS[pack.cadence]:
        raise LabInputError("start_date", f"{pack.cadence} matrices span at most "
                            f"{MAX_SPAN_DAYS[pack.cadence] // 366} years")
    names = list(features) if features else list((model.config or {}).get("indicators") or pack.default_features)
    try:
        resolved = resolve_features(names)
    except ValueError as exc:
        raise LabInputError("features", str(exc)) from None
    feature_names = [f.name for f in resolved]
    ticker = _model_ticker(model)
    request_desc = canonical_matrix_description(
        pack, [ticker], start, end, feature_names,
        data_source=getattr(provider, "name", type(provider).__name__),
        data_version=provider.data_version)
    request_sha = description_sha(request_desc)
    with catalog.session() as s:
        for row in s.scalars(select(Matrix).where(Matrix.model_pk == model.id)):
            if (row.description or {}).get("request_sha") == request_sha:
                return matrix_response(row), False
    try:
        frame, description = build_matrix_from_provider(provider, pack, [ticker], start, end, feature_names)
    except ValueError as exc:
        raise LabInputError("features", str(exc)) from None
    if len(frame) == 0:
        raise LabInputError("start_date", f"no {pack.cadence} bars with complete features between "
                            f"{start} and {end}; widen the date range")
    sha = description_sha(description)
    data = _frame_to_parquet(frame)
    path = matrix_path(model.model_id, sha)
    ref = store.put(data, path=path)
    stored_desc = dict(description, request_sha=request_sha)
    try:
        with catalog.session() as s:
            row = Matrix(model_pk=model.id, matrix_sha=sha, content_sha=ref.sha, path=path, rows=int(len(frame)),
                         columns=int(frame.shape[1]), size_bytes=ref.size, description=clean_json(stored_desc))
            s.add(row)
            m = s.get(LabModel, model.id)
            m.lineage = {**(m.lineage or {}), "matrix_sha": sha}
            m.updated_at = utcnow()
            s.flush()
            return matrix_response(row), True
    except IntegrityError:
        # The same request raced us: the other writer stored the same matrix.
        with catalog.session() as s:
            row = s.scalar(select(Matrix).where(Matrix.model_pk == model.id, Matrix.matrix_sha == sha))
            return matrix_response(row), False


def get_matrix(catalog: Catalog, model_pk: int, matrix_sha: str | None) -> Matrix:
    """The model's matrix with this sha (a unique prefix of 8+ hex digits is accepted), or its
    latest; ``LookupError`` if there is none."""
    with catalog.session() as s:
        if matrix_sha is None:
            row = latest_matrix(catalog, model_pk)
            if row is None:
                raise LookupError("this model has no matrix yet; POST /build_matrix first")
            return row
        sha = str(matrix_sha).lower()
        rows = s.scalars(select(Matrix).where(Matrix.model_pk == model_pk)).all()
        hits = [r for r in rows if r.matrix_sha == sha or (len(sha) >= 8 and r.matrix_sha.startswith(sha))]
        if len(hits) != 1:
            raise LookupError(f"matrix {matrix_sha} not found for this model")
        return hits[0]


def latest_matrix(catalog: Catalog, model_pk: int) -> Matrix | None:
    with catalog.session() as s:
        return s.scalar(select(Matrix).where(Matrix.model_pk == model_pk)
                        .order_by(Matrix.created_at.desc(), Matrix.id.desc()).limit(1))


def load_matrix(store: ArtifactStore, matrix_row: Matrix) -> pd.DataFrame:
    """The stored matrix, its bytes verified against the recorded content SHA-256."""
    data = store.get(matrix_row.path, sha=matrix_row.content_sha)
    return pd.read_parquet(io.BytesIO(data), engine="pyarrow")


# ----------------------------------------------------------------- training

TRAIN_QUOTAS = {  # per user: (per day, at once); tiers may raise them (REFERENCE.md quotas)
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


def training_config(model: LabModel, config: Mapping[str, Any] | None) -> dict:
    """The model's trainer settings overridden by the request's, validated and defaults-filled."""
    from compute.train import TrainConfig, config_errors

    base = dict((model.config or {}).get("trainer") or packs_mod.get_pack(model.pack_id).trainer.to_dict())
    override = dict(config or {})
    errors = config_errors(override, "config.")
    if errors:
        raise LabInputError(errors[0]["field"], errors[0]["message"])
    try:
        return TrainConfig.from_dict({**base, **override}).to_dict()
    except ValueError as exc:
        raise LabInputError("config", str(exc)) from None


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
                    allowed_hours, config: Mapping[str, Any] | None) -> tuple[Training, LabModel]:
    """Validate a training request and record it (status queued); the job fills it in."""
    model = get_model(catalog, user_id, model_id)
    try:
        matrix = get_matrix(catalog, model.id, matrix_sha)
    except LookupError as exc:
        raise LabInputError("matrix_sha", str(exc)) from None
    hours = check_allowed_hours(model.pack_id, allowed_hours)
    cfg = training_config(model, config)
    from compute.train import config_sha

    with catalog.session() as s:
        row = Training(model_pk=model.id, matrix_sha=matrix.matrix_sha,
                       config={**cfg, "allowed_hours": hours}, config_sha=config_sha(cfg),
                       code_version=code_version(), status="queued")
        s.add(row)
        s.flush()
        return row, model


def estimate_train_seconds(rows: int, config: Mapping[str, Any]) -> int:
    """Rough wall time: a few microseconds per row-epoch plus the worker start-up."""
    epochs = int(config.get("epochs", 30))
    return int(max(2, 2 + rows * epochs * 2e-6 * (4 if config.get("model") == "mlp" else 1)))


def run_training(catalog: Catalog, store: ArtifactStore, training_id: str, progress: Callable | None = None) -> dict:
    """Fit the model on its matrix, store the weights by SHA, record lineage. The job body."""
    from compute.train import TrainConfig, train_from_matrix

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
        trained = train_from_matrix(frame, TrainConfig.from_dict(cfg), allowed_hours=hours)
    except ValueError as exc:
        with catalog.session() as s:
            tr = s.get(Training, training_id)
            tr.status, tr.finished_at = "failed", utcnow()
            tr.metrics = {"error": str(exc)}
        raise LabInputError("matrix_sha", f"cannot train on this matrix: {exc}") from None
    if progress:
        progress(0.8, "weights fitted")
    ref = store.put(trained.to_bytes(), prefix="weights", ext="bin")
    metrics = clean_json({k: v for k, v in trained.metrics.items() if k != "train_loss"}
                         | {"final_train_loss": trained.metrics["train_loss"][-1] if trained.metrics.get("train_loss") else None,
                            "features": list(trained.feature_names), "classes": list(trained.classes)})
    with catalog.session() as s:
        tr = s.get(Training, training_id)
        tr.weights_sha, tr.weights_path = ref.sha, ref.path
        tr.status, tr.finished_at, tr.metrics = "completed", utcnow(), metrics
        m = s.get(LabModel, tr.model_pk)
        m.lineage = {**(m.lineage or {}), "matrix_sha": tr.matrix_sha, "config_sha": tr.config_sha,
                     "weights_sha": ref.sha, "code_version": tr.code_version, "training_id": tr.id}
        m.updated_at = utcnow()
        lineage = dict(m.lineage)
    return {"training_id": training_id, "model_id": model.model_id, "weights_sha": ref.sha,
            "weights_path": ref.path, "metrics": metrics, "lineage": lineage}


def latest_training(catalog: Catalog, model_pk: int) -> Training | None:
    with catalog.session() as s:
        return s.scalar(select(Training).where(Training.model_pk == model_pk, Training.status == "completed")
                        .order_by(Training.finished_at.desc()).limit(1))


def load_weights(store: ArtifactStore, training: Training):
    from compute.train import TrainedModel

    return TrainedModel.from_bytes(store.get(training.weights_path, sha=training.weights_sha))


# ----------------------------------------------------------------- walk-forward inputs

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


def _fold_scores(frame: pd.DataFrame, folds, cfg: dict, hours, feature_names, progress=None):
    from compute.train import TrainConfig, train_from_matrix

    config = TrainConfig.from_dict(cfg)
    train_scores, test_scores = [], []
    for k, fold in enumerate(folds):
        train_df = frame.iloc[fold.train]
        test_df = frame.iloc[fold.test]
        try:
            model = train_from_matrix(train_df, config, allowed_hours=hours, features=feature_names)
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
                 risk_profile: str | None = None, progress: Callable | None = None) -> LabInputs:
    """Walk-forward inputs of the user's model (see ``LabInputs``).

    The trainer settings are those of the model's latest completed training (else the
    model's/template's trainer defaults). ``start_date``/``end_date`` restrict the matrix
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

    key = json.dumps({"matrix_sha": matrix_row.matrix_sha, "rows": len(frame),
                      "span": [str(frame["timestamp"].iloc[0]), str(frame["timestamp"].iloc[-1])],
                      "train_config": cfg, "allowed_hours": hours, "features": list(feature_names),
                      "splits": int(n_splits), "purge": horizon, "embargo": embargo, "code": code_version()},
                     sort_keys=True, default=str)
    cache_path = f"walkforward/{hashlib.sha256(key.encode()).hexdigest()}/fold_scores.npz"
    train_scores = test_scores = None
    try:
        with np.load(io.BytesIO(store.get(cache_path))) as cached:
            train_scores = [cached[f"train_{k}"] for k in range(len(folds))]
            test_scores = [cached[f"test_{k}"] for k in range(len(folds))]
    except Exception:  # noqa: BLE001 - any miss or damage: recompute
        train_scores = test_scores = None
    if train_scores is None:
        train_scores, test_scores = _fold_scores(frame, folds, cfg, hours, feature_names, progress)
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


# ----------------------------------------------------------------- backtests

BACKTEST_KEYS = ("kind", "value", "exit_value", "top_pct", "long_only", "allowed_hours", "splits", "embargo")


def backtest_config(pack_id: str, config: Mapping[str, Any] | None) -> dict:
    """Validate the spec's backtest ``config`` body; returns the normalised dict."""
    from compute.backtest import BacktestConfig

    config = dict(config or {})
    for key in config:
        if key not in BACKTEST_KEYS:
            raise LabInputError(f"config.{key}", f"unknown setting; expected one of {list(BACKTEST_KEYS)}")
    kind = config.get("kind", "thresholds")
    if kind not in ("thresholds", "top_pct"):
        raise LabInputError("config.kind", "must be thresholds or top_pct")
    default_value = 0.55 if kind == "thresholds" else 0.10
    value = config.get("value", default_value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LabInputError("config.value", "must be a number")
    hours = check_allowed_hours(pack_id, config.get("allowed_hours"), "config.allowed_hours")
    splits = config.get("splits", DEFAULT_SPLITS)
    if isinstance(splits, bool) or not isinstance(splits, int) or not 1 <= splits <= 20:
        raise LabInputError("config.splits", "must be an integer between 1 and 20")
    embargo = config.get("embargo")
    if embargo is not None and (isinstance(embargo, bool) or not isinstance(embargo, int) or not 0 <= embargo <= 500):
        raise LabInputError("config.embargo", "must be an integer between 0 and 500")
    long_only = config.get("long_only", False)
    if not isinstance(long_only, bool):
        raise LabInputError("config.long_only", "must be true or false")
    out = {"kind": kind, "value": float(value), "exit_value": config.get("exit_value"),
           "top_pct": config.get("top_pct"), "long_only": long_only, "allowed_hours": hours,
           "splits": splits, "embargo": embargo}
    try:
        BacktestConfig(kind=kind, value=float(value), exit_value=out["exit_value"], top_pct=out["top_pct"],
                       long_only=long_only, allowed_hours=None if hours is None else tuple(hours))
    except (ValueError, TypeError) as exc:
        text = str(exc)
        name = "config.exit_value" if "exit" in text else "config.top_pct" if "top_pct" in text and kind == "thresholds" else "config.value"
        raise LabInputError(name, text) from None
    return out


def create_backtest(catalog: Catalog, user_id: int, model_id: str, config: Mapping[str, Any] | None,
                    matrix_sha: str | None, start_date=None, end_date=None,
                    risk_profile: str | None = None) -> tuple[Backtest, LabModel]:
    """Validate a backtest request and record it (status queued)."""
    model = get_model(catalog, user_id, model_id)
    cfg = backtest_config(model.pack_id, config)
    try:
        matrix = get_matrix(catalog, model.id, matrix_sha)
    except LookupError as exc:
        raise LabInputError("matrix_sha", str(exc)) from None
    start = parse_date(start_date, "start_date") if start_date else None
    end = parse_date(end_date, "end_date") if end_date else None
    if start and end and start > end:
        raise LabInputError("end_date", "must not be before start_date")
    profile = risk_profile or model.risk_profile
    if profile not in packs_mod.RISK_PROFILES:
        raise LabInputError("risk_profile", f"must be one of {list(packs_mod.RISK_PROFILES)}")
    cfg["start_date"] = start.isoformat() if start else None
    cfg["end_date"] = end.isoformat() if end else None
    with catalog.session() as s:
        bt = Backtest(user_id=user_id, model_pk=model.id, matrix_sha=matrix.matrix_sha, config=cfg,
                      risk_profile=profile, status="queued")
        s.add(bt)
        s.flush()
        return bt, model


def walk_forward_from_inputs(inputs: LabInputs, bt: Mapping[str, Any]):
    """The walk-forward backtest of one configuration on precomputed inputs
    (``compute.walkforward.run_walk_forward`` replaying the fold scores), plus, for options
    packs, the 0DTE contract P&L along the same decisions."""
    from compute.backtest import BacktestConfig
    from compute.walkforward import WalkForwardConfig, run_walk_forward

    config = BacktestConfig(
        kind=bt.get("kind", "thresholds"), value=float(bt.get("value", 0.55)), exit_value=bt.get("exit_value"),
        top_pct=bt.get("top_pct"), long_only=bool(bt.get("long_only", False)),
        allowed_hours=None if bt.get("allowed_hours") is None else tuple(bt["allowed_hours"]),
        fees_bps=inputs.fees_bps, slippage_bps=inputs.slippage_bps, periods_per_year=inputs.periods_per_year)
    wf = WalkForwardConfig(backtest=config, n_splits=inputs.n_splits, label_horizon=inputs.label_horizon,
                           embargo=inputs.embargo)
    replay = iter(zip(inputs.train_scores, inputs.extras["test_scores"]))

    def fit_predict(train_df, test_df):
        return next(replay)

    frame = inputs.matrix.set_index(pd.DatetimeIndex(inputs.matrix["timestamp"]))
    if inputs.is_options:
        from services.lab.options import options_walk_forward

        return options_walk_forward(frame, fit_predict, wf, inputs)
    return run_walk_forward(frame, fit_predict, wf)


def metrics_view(metrics: Mapping[str, Any]) -> dict:
    """Backtest metrics under the Lab spec's names (``cum_ret``) plus every engine figure."""
    out = clean_json(dict(metrics))
    out["cum_ret"] = out.get("cum_return")
    out["es95"] = out.get("es_95")
    return out


def run_backtest_job(catalog: Catalog, store: ArtifactStore, backtest_id: str, progress: Callable | None = None) -> dict:
    """The ``lab.backtest`` job body: inputs, walk-forward run, gate, fills, result rows."""
    from compute.gates import evaluate_gate, ranking_score

    with catalog.session() as s:
        bt = s.get(Backtest, backtest_id)
        if bt is None:
            raise LookupError(f"backtest {backtest_id} not found")
        bt.status = "running"
        model = s.get(LabModel, bt.model_pk)
        cfg, matrix_sha, profile, user_id = dict(bt.config), bt.matrix_sha, bt.risk_profile, bt.user_id
    try:
        inputs = model_inputs(catalog, store, user_id, model.model_id, matrix_sha, start_date=cfg.get("start_date"),
                              end_date=cfg.get("end_date"), n_splits=cfg.get("splits") or DEFAULT_SPLITS,
                              embargo=cfg.get("embargo"), risk_profile=profile,
                              progress=(lambda f, m: progress(0.8 * f, m)) if progress else None)
        result = walk_forward_from_inputs(inputs, cfg)
    except (LabInputError, LookupError) as exc:
        with catalog.session() as s:
            row = s.get(Backtest, backtest_id)
            row.status, row.error, row.finished_at = "failed", str(exc), utcnow()
        raise
    metrics = metrics_view(result.metrics)
    gate = evaluate_gate(inputs.pack, profile, result.metrics, cfg)
    score = ranking_score(inputs.pack, result.metrics)
    fills = result.backtest.fills
    from services.lab.export import fills_csv

    ref = store.put(fills_csv(fills).encode(), prefix="fills", ext="csv")
    folds = clean_json(result.folds)
    record_backtest_result(
        catalog, user_id=user_id, model_pk=model.id, model_id=model.model_id, pack_id=model.pack_id,
        risk_profile=profile, config=cfg, metrics=metrics, gate=gate, score=score, folds=folds,
        matrix_sha=inputs.matrix_sha, backtest_id=backtest_id, fills_sha=ref.sha, fills_path=ref.path)
    return {"backtest_id": backtest_id, "model_id": model.model_id, "status": "completed", "metrics": metrics,
            "gate": gate, "score": _finite(score), "fills": int(len(fills))}


def record_backtest_result(catalog: Catalog, *, user_id: int, model_pk: int, model_id: str, pack_id: str,
                           risk_profile: str, config: Mapping[str, Any], metrics: Mapping[str, Any],
                           gate: Mapping[str, Any], score: float | None = None, folds: list | None = None,
                           matrix_sha: str | None = None, backtest_id: str | None = None, job_id: str | None = None,
                           fills_sha: str | None = None, fills_path: str | None = None,
                           sweep_id: str | None = None, config_index: int | None = None, tag: str | None = None,
                           update_model: bool = True, emit: bool = True) -> tuple[str, str]:
    """Write (or complete) a ``Backtest`` row and its ``LeaderboardEntry``; returns their ids.

    ``metrics`` use engine names plus ``cum_ret``; the leaderboard's headline columns (sharpe,
    cum_ret, max_drawdown, win_rate, trades, deflated_sharpe, score, gate_pass, gate_reasons)
    are filled from them. The model's latest metrics are updated and ``backtest.completed``
    is emitted (webhooks) after the commit.
    """
    metrics = clean_json(dict(metrics))
    metrics.setdefault("cum_ret", metrics.get("cum_return"))
    gate = {"pass": bool(gate.get("pass")), "reasons": list(gate.get("reasons") or [])}
    now = utcnow()
    with catalog.session() as s:
        bt = s.get(Backtest, backtest_id) if backtest_id else None
        if bt is None:
            bt = Backtest(user_id=user_id, model_pk=model_pk, config=clean_json(dict(config)), risk_profile=risk_profile)
            if backtest_id:
                bt.id = backtest_id
            s.add(bt)
        bt.job_id = job_id or bt.job_id
        bt.matrix_sha = matrix_sha or bt.matrix_sha
        bt.status, bt.metrics, bt.folds, bt.gate = "completed", metrics, clean_json(folds or []), gate
        bt.fills_sha, bt.fills_path, bt.finished_at, bt.error = fills_sha, fills_path, now, None
        s.flush()
        entry = LeaderboardEntry(
            user_id=user_id, model_pk=model_pk, model_id=model_id, pack_id=pack_id, backtest_id=bt.id,
            sweep_id=sweep_id, config_index=config_index, tag=tag, risk_profile=risk_profile,
            config=clean_json(dict(config)), metrics=metrics, gate_pass=gate["pass"], gate_reasons=gate["reasons"],
            score=_finite(score), sharpe=_finite(metrics.get("sharpe")),
            deflated_sharpe=_finite(metrics.get("deflated_sharpe")), cum_ret=_finite(metrics.get("cum_ret")),
            max_drawdown=_finite(metrics.get("max_drawdown")), win_rate=_finite(metrics.get("win_rate")),
            trades=int(metrics["trades"]) if metrics.get("trades") is not None else None)
        s.add(entry)
        if update_model:
            m = s.get(LabModel, model_pk)
            if m is not None:
                m.metrics = {**metrics, "backtest_id": bt.id, "gate": gate}
                m.updated_at = now
        s.flush()
        ids = (bt.id, entry.id)
    if emit:
        emit_event(catalog, user_id, "backtest.completed",
                   {"backtest_id": ids[0], "model_id": model_id, "status": "success", "metrics": metrics})
    return ids


def fail_backtest(catalog: Catalog, backtest_id: str, message: str) -> None:
    with catalog.session() as s:
        bt = s.get(Backtest, backtest_id)
        if bt is not None and bt.status not in ("completed",):
            bt.status, bt.error, bt.finished_at = "failed", message, utcnow()


def get_backtest(catalog: Catalog, user_id: int, backtest_id: str) -> tuple[Backtest, str]:
    """The user's backtest and its model id; ``LookupError`` otherwise."""
    with catalog.session() as s:
        row = s.execute(select(Backtest, LabModel.model_id).join(LabModel, LabModel.id == Backtest.model_pk)
                        .where(Backtest.id == backtest_id, Backtest.user_id == user_id)).first()
        if row is None:
            raise LookupError(f"backtest {backtest_id} not found")
        return row[0], row[1]


def backtest_view(bt: Backtest, model_id: str, estimated_completion: str | None = None) -> dict:
    return {
        "backtest_id": bt.id,
        "model_id": model_id,
        "status": bt.status,
        "risk_profile": bt.risk_profile,
        "matrix_sha": bt.matrix_sha,
        "config": bt.config,
        "metrics": bt.metrics,
        "folds": bt.folds,
        "gate": bt.gate,
        "error": bt.error,
        "created_at": bt.created_at.isoformat() if bt.created_at else None,
        "finished_at": bt.finished_at.isoformat() if bt.finished_at else None,
        "estimated_completion": estimated_completion,
        "export_url": f"/api/v1/export/backtest/{bt.id}?format=csv" if bt.fills_path else None,
    }


# ----------------------------------------------------------------- events and health

def emit_event(catalog: Catalog, user_id: int, event: str, data: dict) -> Any:
    """Hand an event to the webhooks area (``cluster.webhooks.enqueue``); skipped only while
    that module does not exist. A delivery problem never undoes the result it announces."""
    try:
        from cluster.webhooks import enqueue
    except ModuleNotFoundError as exc:
        if exc.name == "cluster.webhooks":
            return None
        raise
    try:
        return enqueue(catalog, user_id, event, clean_json(data))
    except Exception:  # noqa: BLE001
        log.exception("could not enqueue %s for user %s", event, user_id)
        return None


def pack_health(catalog: Catalog, user_id: int, pack_id: str) -> dict:
    pack = packs_mod.get_pack(pack_id)  # ValueError for an unknown pack
    with catalog.session() as s:
        count = s.scalar(select(func.count()).select_from(LabModel)
                         .where(LabModel.user_id == user_id, LabModel.pack_id == pack.pack_id)) or 0
    from services.lab.signals import active_signals  # signals imports this module

    return {"status": "healthy", "models_count": int(count), "active_signals": active_signals(catalog, user_id, pack.pack_id)}


def model_health(catalog: Catalog, user_id: int, model_id: str) -> dict:
    """``{status, last_backtest, performance}``: performance is meeting_target when the latest
    completed backtest passed its gate, below_target when it failed it, untested without one."""
    model = get_model(catalog, user_id, model_id)
    with catalog.session() as s:
        last = s.scalar(select(Backtest).where(Backtest.model_pk == model.id, Backtest.status == "completed")
                        .order_by(Backtest.finished_at.desc()).limit(1))
        last_any = s.scalar(select(Backtest).where(Backtest.model_pk == model.id)
                            .order_by(Backtest.created_at.desc()).limit(1))
    if last is None:
        performance = "untested"
    else:
        performance = "meeting_target" if (last.gate or {}).get("pass") else "below_target"
    status = "healthy"
    if last_any is not None and last_any.status == "failed":
        status = "degraded"
    if not (model.lineage or {}).get("matrix_sha"):
        status = "untrained" if last is None else status
    return {"status": status, "last_backtest": last.finished_at.isoformat() if last and last.finished_at else None,
            "performance": performance, "gate": last.gate if last else None}
