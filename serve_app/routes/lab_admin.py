"""Lab admin (Lab spec "Admin API"): change or delete any user's model. Admin role only.

A model id is unique per user, so when several users own the same id the admin names the
owner with ``?user=<username>`` (409 otherwise).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from services.lab import common, models
from serve_app.deps import Caller, get_state, require_admin
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import ApiError, invalid, not_found
from serve_app.state import AppState

router = APIRouter(prefix="/admin", tags=["admin"])


class PatchModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] | None = None
    name: str | None = Field(None, max_length=160)
    risk_profile: str | None = None


def _one(state: AppState, model_id: str, user: str | None):
    found = models.find_models_admin(state.catalog, model_id, user)
    if not found:
        raise not_found("model", model_id)
    if len(found) > 1:
        owners = sorted(u for _, u in found)
        raise ApiError(409, "CONFLICT", f"{len(found)} users own a model {model_id}; name one with ?user= "
                       f"(one of {owners})", field="user")
    return found[0]


@router.patch("/models/{model_id}", summary="Update a model's config (admin)")
def patch_model(model_id: str, body: PatchModel, user: str | None = Query(None, max_length=64),
                admin: Caller = Depends(require_admin), state: AppState = Depends(get_state)):
    model, owner = _one(state, model_id, user)
    if body.config is None and body.name is None and body.risk_profile is None:
        raise invalid("config", "give config, name or risk_profile to change")
    try:
        updated = models.update_model_admin(state.catalog, model.id, config=body.config, name=body.name,
                                             risk_profile=body.risk_profile)
    except common.LabInputError as exc:
        raise invalid(exc.field, exc.reason) from None
    return SigmaJSONResponse({**models.model_detail(updated, owner), "status": "updated"})


@router.delete("/models/{model_id}", summary="Delete a model, its rows and its artifacts (admin)")
def delete_model(model_id: str, user: str | None = Query(None, max_length=64),
                 admin: Caller = Depends(require_admin), state: AppState = Depends(get_state)):
    model, owner = _one(state, model_id, user)
    report = models.delete_model_admin(state.catalog, state.store, model.id)
    return SigmaJSONResponse({"model_id": model_id, "user": owner, "status": "deleted", **report})
