"""Live signals (Lab spec "Signals API"): generate one from a trained model's newest bar, list,
read and cancel them, rank models by their settled signals. The rules are in
``services.lab.signals``."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from services.lab import signals
from services.lab.common import LabInputError
from serve_app.deps import Caller, Offset, current_user, get_state
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import ApiError, invalid, not_found
from serve_app.market import get_provider
from serve_app.state import AppState

router = APIRouter(tags=["lab signals"])


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(..., min_length=1, max_length=80)
    as_of: dt.date | None = Field(None, description="score the newest bar on or before this date (default today)")


@router.post("/signals/generate", summary="Score the model's newest bar; a signal when it clears the thresholds")
def generate(body: GenerateRequest, caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    try:
        view, created, decision = signals.generate_signal(state.catalog, state.store, get_provider(state), caller.id,
                                                          body.model_id, body.as_of)
    except LookupError:
        raise not_found("model", body.model_id) from None
    except LabInputError as exc:
        raise invalid(exc.field, exc.reason) from None
    return SigmaJSONResponse({"signal": view, "created": created, "decision": decision},
                             status_code=201 if created else 200)


@router.get("/signals", summary="Your live signals, newest bar first")
def list_signals(model_id: str | None = Query(None, max_length=80), status: str | None = Query(None, max_length=16),
                 start: dt.datetime | None = None, end: dt.datetime | None = None,
                 limit: int = Query(20, ge=1, le=500), offset: int = Offset,
                 caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    try:
        page = signals.list_signals(state.catalog, get_provider(state), caller.id, model_id=model_id, status=status,
                                    start=start, end=end, limit=limit, offset=offset)
    except LabInputError as exc:
        raise invalid(exc.field, exc.reason) from None
    return SigmaJSONResponse(page)


@router.get("/signals/leaderboard", summary="Your models ranked by their settled signals' live record")
def leaderboard(pack: str | None = Query(None, max_length=32), risk_profile: str | None = Query(None, max_length=16),
                start: dt.date | None = None, end: dt.date | None = None,
                caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    try:
        board = signals.signals_leaderboard(state.catalog, get_provider(state), caller.id, pack_id=pack,
                                            risk_profile=risk_profile, start=start, end=end)
    except LabInputError as exc:
        raise invalid(exc.field, exc.reason) from None
    except ValueError as exc:
        raise invalid("pack", str(exc)) from None
    return SigmaJSONResponse(board)


@router.get("/signals/{signal_id}", summary="One signal")
def get_signal(signal_id: str, caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    try:
        return SigmaJSONResponse(signals.get_signal(state.catalog, get_provider(state), caller.id, signal_id))
    except LookupError:
        raise not_found("signal", signal_id) from None


@router.post("/signals/{signal_id}/cancel", summary="Cancel an active signal")
def cancel_signal(signal_id: str, caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    try:
        return SigmaJSONResponse(signals.cancel_signal(state.catalog, get_provider(state), caller.id, signal_id))
    except LookupError:
        raise not_found("signal", signal_id) from None
    except ValueError as exc:
        raise ApiError(409, "CONFLICT", str(exc), field="signal_id") from None
