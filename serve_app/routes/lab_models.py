"""Lab models (Lab spec "Models API"): create from a template, list, details."""

from __future__ import annotations

from fastapi import APIRouter, Query

from services.lab import models
from serve_app.deps import CallerDep, OffsetQuery, StateDep
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import not_found, service_errors
from serve_app.schemas.common import error_responses
from serve_app.schemas.lab import CreateModel, ModelCreated, ModelDetail, ModelList

router = APIRouter(tags=["lab"])


@router.post("/models", status_code=201, summary="Create a model from a template", response_model=ModelCreated,
             responses=error_responses(400, 401, 429))
def create_model(body: CreateModel, caller: CallerDep, state: StateDep):
    with service_errors():
        model = models.create_model(state.catalog, caller.id, body.template_id, name=body.name,
                                     risk_profile=body.risk_profile, config=body.config)
    return SigmaJSONResponse({"model_id": model.model_id, "pack_id": model.pack_id,
                              "created_at": model.created_at.isoformat(), "status": "created",
                              "risk_profile": model.risk_profile, "config": model.config}, status_code=201)


@router.get("/models", summary="Your models, newest first", response_model=ModelList,
            responses=error_responses(400, 401, 429))
def list_models(
    caller: CallerDep,
    state: StateDep,
    model_id: str | None = Query(None, max_length=80),
    pack_id: str | None = Query(None, max_length=32),
    limit: int = Query(100, ge=1, le=1000),
    offset: OffsetQuery = 0,
):
    rows, total = models.list_models(state.catalog, caller.id, model_id=model_id, pack_id=pack_id, limit=limit, offset=offset)
    return SigmaJSONResponse({"items": [models.model_summary(m) for m in rows], "total": total,
                              "limit": limit, "offset": offset})


@router.get("/models/{model_id}", summary="Model config, latest metrics and lineage", response_model=ModelDetail,
            responses=error_responses(401, 404, 429))
def get_model(model_id: str, caller: CallerDep, state: StateDep):
    try:
        model = models.get_model(state.catalog, caller.id, model_id)
    except LookupError:
        raise not_found("model", model_id) from None
    return SigmaJSONResponse(models.model_detail(model, caller.username))
