"""Admin: run the daily batch now and inspect runs (every step of every portfolio)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from services.risk import batch
from cluster.catalog.models import new_id
from compute.marketdata import calendar
from serve_app.deps import AdminDep, OffsetQuery, StateDep
from serve_app.envelope import async_accepted, envelope
from serve_app.errors import invalid, not_found
from serve_app.jobrunner import start_job
from serve_app.schemas.batch import BatchAccepted, BatchRequest, BatchRun, BatchRunDetail
from serve_app.schemas.common import Envelope, error_responses

router = APIRouter(prefix="/admin/batch", tags=["admin"])


@router.post("/run", status_code=202, summary="Run the daily batch now as a job (admin only)",
             response_model=BatchAccepted, responses=error_responses(400, 401, 403, 429, 503))
async def run_batch(
    caller: AdminDep,
    state: StateDep,
    body: BatchRequest = Body(default_factory=BatchRequest),
):
    run_id = new_id("batch")
    params = {"trigger": "manual", "run_id": run_id}
    if body.date is not None:
        if body.date > dt.date.today():
            raise invalid("date", "must not be in the future")
        if not calendar.is_session(body.date):
            raise invalid("date", f"{body.date} is not an NYSE trading session")
        params["as_of"] = body.date.isoformat()
    job, _ = await start_job(state, caller, "batch.daily", params, estimated_duration_ms=30_000, queue_group="batch", queue_limit=1)
    return JSONResponse(dict(async_accepted(job.id, job.status, job.estimated_duration_ms), run_id=run_id), status_code=202)


@router.get("/runs", summary="Batch runs, newest first (admin only)", response_model=Envelope[list[BatchRun]],
            responses=error_responses(400, 401, 403, 429))
def runs(
    request: Request,
    _: AdminDep,
    state: StateDep,
    limit: int = Query(50, ge=1, le=500),
    offset: OffsetQuery = 0,
):
    return envelope(request, batch.list_runs(state.catalog, limit, offset))


@router.get("/runs/{run_id}", summary="One run with every step of every portfolio (admin only)",
            response_model=Envelope[BatchRunDetail], responses=error_responses(401, 403, 404, 429))
def run_detail(run_id: str, request: Request, _: AdminDep, state: StateDep):
    try:
        return envelope(request, batch.get_run(state.catalog, run_id))
    except LookupError:
        raise not_found("batch run", run_id) from None
