"""Lab admin (Lab spec "Admin API"): change or delete any user's model. Admin role only.

A model id is unique per user, so when several users own the same id the admin names the
owner with ``?user=<username>`` (409 otherwise).
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from services.lab import models
from serve_app.deps import AdminDep, StateDep
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import ApiError, invalid, not_found, service_errors
from serve_app.schemas.common import error_responses
from serve_app.schemas.lab import ModelDeleted, ModelUpdated, PatchModel
from serve_app.state import AppState

router = APIRouter(prefix="/admin", tags=["admin"])


def _one(state: AppState, model_id: str, user: str | None):
    found = models.find_models_admin(state.catalog, model_id, user)
    if not found:
        raise not_found("model", model_id)
    if len(found) > 1:
        owners = sorted(u for _, u in found)
        raise ApiError(409, "CONFLICT", f"{len(found)} users own a model {model_id}; name one with ?user= "
                       f"(one of {owners})", field="user")
    return found[0]


@router.patch("/models/{model_id}", summary="Update a model's config (admin)", response_model=ModelUpdated,
              responses=error_responses(400, 401, 403, 404, 409, 429))
def patch_model(model_id: str, body: PatchModel, admin: AdminDep, state: StateDep,
                user: str | None = Query(None, max_length=64)):
    model, owner = _one(state, model_id, user)
    if body.config is None and body.name is None and body.risk_profile is None:
        raise invalid("config", "give config, name or risk_profile to change")
    with service_errors():
        updated = models.update_model_admin(state.catalog, model.id, config=body.config, name=body.name,
                                             risk_profile=body.risk_profile)
    return SigmaJSONResponse({**models.model_detail(updated, owner), "status": "updated"})


@router.delete("/models/{model_id}", summary="Delete a model, its rows and its artifacts (admin)",
               response_model=ModelDeleted, responses=error_responses(400, 401, 403, 404, 409, 429))
def delete_model(model_id: str, admin: AdminDep, state: StateDep, user: str | None = Query(None, max_length=64)):
    model, owner = _one(state, model_id, user)
    report = models.delete_model_admin(state.catalog, state.store, model.id)
    return SigmaJSONResponse({"model_id": model_id, "user": owner, "status": "deleted", **report})
