"""Portfolio timeline (portfolio spec 4.4): daily equity, exposures, P&L, Greeks and counts.

Days the daily batch snapshotted come from the ``snapshots`` table; other sessions are
reconstructed by pricing the current holdings at that session's close. Ranges longer than
:data:`SYNC_MAX_SESSIONS` sessions run as a job (``mode=async``, the default for them).
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from services.risk import service
from compute.marketdata import calendar
from serve_app.deps import CallerDep, PortfolioId, StateDep
from serve_app.envelope import async_accepted, envelope
from serve_app.errors import invalid, service_errors
from serve_app.jobrunner import start_job
from serve_app.market import get_provider
from serve_app.schemas.common import AsyncAccepted, Envelope, IsoDate, also, error_responses
from serve_app.schemas.portfolio import Timeline, TimelineMeta

router = APIRouter(prefix="/portfolio", tags=["portfolio"])

SYNC_MAX_SESSIONS = 31
MAX_DAYS = 5 * 366


@router.get("/timeline", summary="Daily history of equity, exposures, P&L and Greeks (spec 4.4)",
            response_model=Envelope[Timeline, TimelineMeta],
            responses={**also(202, AsyncAccepted, "mode=async (the default past 31 sessions): a job; poll its poll_url"),
                       **error_responses(400, 401, 404, 429, 503)})
async def portfolio_timeline(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    start: IsoDate | None = Query(None, description="YYYY-MM-DD (default: 30 days before end)"),
    end: IsoDate | None = Query(None, description="YYYY-MM-DD (default: today)"),
    mode: str | None = Query(None, pattern="^(sync|async)$", description=f"default: sync up to {SYNC_MAX_SESSIONS} sessions, else async"),
    portfolio_id: PortfolioId = None,
):
    today = dt.date.today()
    end = end or today
    start = start or end - dt.timedelta(days=30)
    if end > today:
        raise invalid("end", "must not be in the future")
    if start > end:
        raise invalid("start", "must be on or before end")
    if (end - start).days > MAX_DAYS:
        raise invalid("start", f"the range may span at most {MAX_DAYS} days")
    if start < calendar.CALENDAR_START.date():
        raise invalid("start", f"must be on or after {calendar.CALENDAR_START.date()}")
    sessions = len(calendar.sessions(start, end))
    mode = mode or ("sync" if sessions <= SYNC_MAX_SESSIONS else "async")
    if mode == "sync" and sessions > SYNC_MAX_SESSIONS:
        raise invalid("mode", f"{sessions} sessions is too long for sync (at most {SYNC_MAX_SESSIONS}); use mode=async")
    with service_errors("request"):
        pid = service.default_portfolio_id(state.catalog, caller.id, portfolio_id)
    if mode == "async":
        params = {"portfolio_id": pid, "start": start.isoformat(), "end": end.isoformat()}
        job, _ = await start_job(state, caller, "portfolio.timeline", params, estimated_duration_ms=200 * sessions + 1000)
        return JSONResponse(async_accepted(job.id, job.status, job.estimated_duration_ms), status_code=202)

    def compute():
        with service_errors("request"):
            return service.timeline(state.catalog, get_provider(state), caller.id, pid, start=start, end=end)

    data = await run_in_threadpool(compute)
    return envelope(request, data, meta={"sessions": len(data["points"]), "stored_snapshots": data["summary"]["stored_snapshots"]})
