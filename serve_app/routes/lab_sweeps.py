"""Sweeps (Lab spec "Run Sweep"): a grid of backtest configurations run on Ray Tune in chunks.

``POST /backtest_sweep`` records the sweep and starts a ``lab.sweep`` job (queued beyond the
tier's sweeps-at-once quota); ``GET /backtest_sweep/{id}`` shows progress, best so far and an
ETA; ``POST .../cancel`` stops it (finished chunks stay on the leaderboard); ``POST .../resume``
re-runs an interrupted sweep, computing only the chunks not stored yet.
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from serve_app.deps import Caller, CallerDep, OffsetQuery, StateDep
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import ApiError, not_found
from serve_app.lab_jobs import submit_sweep, submit_sweep_job
from serve_app.schemas import sweeps as schemas
from serve_app.schemas.common import error_responses
from serve_app.state import AppState
from services.lab import sweeps

router = APIRouter(tags=["lab sweeps"])


@router.post("/backtest_sweep", status_code=202, summary="Run a sweep of backtest configurations (Ray Tune, chunked)",
             response_model=schemas.SweepAccepted, responses=error_responses(400, 401, 404, 429, 503))
async def create_sweep(body: schemas.SweepRequest, caller: CallerDep, state: StateDep):
    return SigmaJSONResponse(await submit_sweep(state, caller, body), status_code=202)


def _own(state: AppState, caller: Caller, sweep_id: str):
    try:
        return sweeps.get_sweep(state.catalog, caller.id, sweep_id)
    except LookupError:
        raise not_found("sweep", sweep_id) from None


@router.get("/backtest_sweep", summary="Your sweeps, newest first", response_model=schemas.SweepList,
            responses=error_responses(400, 401, 429))
def list_sweeps(caller: CallerDep, state: StateDep, limit: int = Query(50, ge=1, le=500), offset: OffsetQuery = 0):
    rows = sweeps.list_sweeps(state.catalog, caller.id, limit=limit, offset=offset)
    return SigmaJSONResponse({"items": [sweeps.sweep_view(s, m) for s, m in rows], "limit": limit, "offset": offset})


@router.get("/backtest_sweep/{sweep_id}", summary="Sweep progress (done/total), best so far, ETA",
            response_model=schemas.Sweep, responses=error_responses(401, 404, 429))
def get_sweep(sweep_id: str, caller: CallerDep, state: StateDep):
    sweep, model_id = _own(state, caller, sweep_id)
    return SigmaJSONResponse(sweeps.sweep_view(sweep, model_id))


@router.post("/backtest_sweep/{sweep_id}/cancel", summary="Stop a sweep; finished chunks are kept",
             response_model=schemas.Sweep, responses=error_responses(401, 404, 409, 429))
def cancel_sweep(sweep_id: str, caller: CallerDep, state: StateDep):
    _own(state, caller, sweep_id)
    try:
        sweep = sweeps.cancel_sweep(state.catalog, caller.id, sweep_id)
    except ValueError as exc:
        raise ApiError(409, "CONFLICT", str(exc), field="sweep_id") from None
    _, model_id = _own(state, caller, sweep_id)
    return SigmaJSONResponse(sweeps.sweep_view(sweep, model_id))


@router.post("/backtest_sweep/{sweep_id}/resume", status_code=202,
             summary="Re-run an interrupted sweep: stored chunks are skipped, only the rest is computed",
             response_model=schemas.Sweep, responses=error_responses(401, 404, 409, 429, 503))
async def resume_sweep(sweep_id: str, caller: CallerDep, state: StateDep):
    _own(state, caller, sweep_id)
    try:
        sweep = sweeps.prepare_resume(state.catalog, caller.id, sweep_id)
    except ValueError as exc:
        raise ApiError(409, "CONFLICT", str(exc), field="sweep_id") from None
    job_id, position = await submit_sweep_job(state, caller, sweep.id, sweep.total_configs - sweep.done_configs)
    sweep, model_id = _own(state, caller, sweep_id)
    return SigmaJSONResponse(sweeps.sweep_view(sweep, model_id, queue_position=position), status_code=202)
