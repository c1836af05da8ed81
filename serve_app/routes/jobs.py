"""Jobs (portfolio spec section 14): status, result, cancel; plus a probe job for operators."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from cluster.catalog import Job
from cluster.jobs import job_view, request_cancel
from serve_app.deps import Caller, CallerDep, OffsetQuery, StateDep
from serve_app.envelope import SigmaJSONResponse, async_accepted, envelope
from serve_app.errors import ApiError, not_found
from serve_app.jobrunner import start_job
from serve_app.schemas import jobs as schemas
from serve_app.schemas.common import AsyncAccepted, Envelope, error_responses
from serve_app.state import AppState

router = APIRouter(prefix="/jobs", tags=["jobs"])


def _own_job(state: AppState, caller: Caller, job_id: str) -> Job:
    with state.catalog.session() as s:
        job = s.get(Job, job_id)
        # Another user's job is indistinguishable from a missing one.
        if job is None or job.user_id != caller.id:
            raise not_found("job", job_id)
        return job


@router.get("", summary="Your jobs, newest first", response_model=Envelope[list[schemas.Job]],
            responses=error_responses(400, 401, 429))
def list_jobs(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    status: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: OffsetQuery = 0,
):
    query = select(Job).where(Job.user_id == caller.id)
    if status:
        query = query.where(Job.status == status)
    with state.catalog.session() as s:
        jobs = s.scalars(query.order_by(Job.created_at.desc()).limit(limit).offset(offset)).all()
    return envelope(request, [job_view(j) for j in jobs])


@router.get("/{job_id}", summary="Job status", response_model=Envelope[schemas.Job],
            responses=error_responses(401, 404, 429))
def get_job(job_id: str, request: Request, caller: CallerDep, state: StateDep):
    return envelope(request, job_view(_own_job(state, caller, job_id)))


@router.get("/{job_id}/result", summary="Job result (the original endpoint's data once completed)",
            response_model=Envelope[schemas.JobResult], responses=error_responses(401, 404, 429))
def get_job_result(job_id: str, request: Request, caller: CallerDep, state: StateDep):
    job = _own_job(state, caller, job_id)
    data = {"job_id": job.id, "status": job.status, "result": job.result if job.status == "completed" else None}
    if job.status == "failed":
        data["error"] = job.error
    return envelope(request, data)


@router.post("/{job_id}/cancel", summary="Cancel a queued or running job", response_model=Envelope[schemas.JobCancelled],
             responses=error_responses(401, 404, 409, 429))
async def cancel_job(job_id: str, request: Request, caller: CallerDep, state: StateDep):
    job = _own_job(state, caller, job_id)
    if job.status in ("completed", "failed"):
        raise ApiError(409, "CONFLICT", f"job {job_id} already {job.status}; nothing to cancel", field="job_id")
    status = request_cancel(state.catalog, job_id)
    if state.job_manager is not None:
        await state.job_manager.cancel.remote(job_id)
    return envelope(request, {"job_id": job_id, "status": status})


@router.post("/probe", status_code=202, summary="Run a probe job on a worker (node, speed); for operators and smoke tests",
             response_model=AsyncAccepted, responses=error_responses(400, 401, 429, 503))
async def probe(body: schemas.ProbeRequest, caller: CallerDep, state: StateDep):
    job, _ = await start_job(state, caller, "system.probe", body.model_dump(), estimated_duration_ms=int(body.duration_s * 1000) + 500)
    return SigmaJSONResponse(async_accepted(job.id, job.status, job.estimated_duration_ms), status_code=202)
