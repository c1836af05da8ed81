"""Lab models: create from a template, list, get, and the admin's update and delete."""

from __future__ import annotations

import logging

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from cluster.artifacts import ArtifactStore
from cluster.catalog import Backtest, Catalog, LabModel, LeaderboardEntry, Matrix, Sweep, Training, User
from cluster.catalog.models import utcnow
from compute import pack_config
from compute import packs as packs_mod
from services.lab.common import LabInputError, code_version

log = logging.getLogger("sigma.lab")


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
    """A model from a template; the model id follows docs/spec/reference.md naming and is unique per user.

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
