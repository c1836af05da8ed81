"""Pack and model health for GET /healthz?pack_id=&model_id= (Lab spec "Component Health")."""

from __future__ import annotations

from services.lab import health
from serve_app.deps import Caller
from serve_app.errors import invalid, not_found
from serve_app.state import AppState


def pack_health(state: AppState, caller: Caller, pack_id: str) -> dict:
    """``{status, models_count, active_signals}`` counted over the caller's own models."""
    try:
        return health.pack_health(state.catalog, caller.id, pack_id)
    except ValueError as exc:
        raise invalid("pack_id", str(exc)) from None


def model_health(state: AppState, caller: Caller, model_id: str) -> dict:
    """``{status, last_backtest, performance}`` of one of the caller's models (404 otherwise)."""
    try:
        return health.model_health(state.catalog, caller.id, model_id)
    except LookupError:
        raise not_found("model", model_id) from None
