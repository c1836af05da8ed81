"""Lab models (Lab spec "Models API"): create from a template, list, details."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from services.lab import common, models
from serve_app.deps import Caller, Offset, current_user, get_state
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import invalid, not_found
from serve_app.state import AppState

router = APIRouter(tags=["lab"])


class CreateModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(..., min_length=1, max_length=64)
    name: str | None = Field(None, max_length=160)
    risk_profile: str | None = None
    config: dict[str, Any] | None = None


@router.post("/models", status_code=201, summary="Create a model from a template")
def create_model(body: CreateModel, caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    try:
        model = models.create_model(state.catalog, caller.id, body.template_id, name=body.name,
                                     risk_profile=body.risk_profile, config=body.config)
    except common.LabInputError as exc:
        raise invalid(exc.field, exc.reason) from None
    return SigmaJSONResponse({"model_id": model.model_id, "pack_id": model.pack_id,
                              "created_at": model.created_at.isoformat(), "status": "created",
                              "risk_profile": model.risk_profile, "config": model.config}, status_code=201)


@router.get("/models", summary="Your models, newest first")
def list_models(
    model_id: str | None = Query(None, max_length=80),
    pack_id: str | None = Query(None, max_length=32),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Offset,
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    rows, total = models.list_models(state.catalog, caller.id, model_id=model_id, pack_id=pack_id, limit=limit, offset=offset)
    return SigmaJSONResponse({"items": [models.model_summary(m) for m in rows], "total": total,
                              "limit": limit, "offset": offset})


@router.get("/models/{model_id}", summary="Model config, latest metrics and lineage")
def get_model(model_id: str, caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    try:
        model = models.get_model(state.catalog, caller.id, model_id)
    except LookupError:
        raise not_found("model", model_id) from None
    return SigmaJSONResponse(models.model_detail(model, caller.username))
