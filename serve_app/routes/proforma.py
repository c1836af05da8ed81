"""Single-trade what-if (portfolio spec 7.5) and hedge search (spec 7.6)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from services.proforma import service
from serve_app.deps import CallerDep, PortfolioId, StateDep
from serve_app.envelope import SigmaJSONResponse, async_accepted, envelope
from serve_app.errors import service_errors
from serve_app.jobrunner import start_job
from serve_app.market import get_provider
from serve_app.schemas import proforma as schemas
from serve_app.schemas.common import AsyncAccepted, Envelope, also, error_responses

router = APIRouter(prefix="/proforma", tags=["proforma"])


@router.post("/trade", summary="The impact of one trade on the current book (spec 7.5); mode=sync|async",
             response_model=Envelope[schemas.TradeImpact],
             responses={**also(202, AsyncAccepted, "mode=async: a job; poll its poll_url"),
                        **error_responses(400, 401, 404, 429, 503)})
async def trade(request: Request, body: schemas.TradeBody, caller: CallerDep, state: StateDep,
                mode: str = Query("sync", pattern="^(sync|async)$"), portfolio_id: PortfolioId = None):
    from starlette.concurrency import run_in_threadpool

    if mode == "async":
        with service_errors():
            service.get_portfolio_id(state.catalog, caller.id, portfolio_id)
        job, _ = await start_job(state, caller, "proforma.trade", {"body": body, "portfolio_id": portfolio_id},
                                 estimated_duration_ms=1500)
        return SigmaJSONResponse(async_accepted(job.id, job.status, job.estimated_duration_ms), status_code=202)

    def run():
        with service_errors():
            return service.trade_whatif(state.catalog, get_provider(state), caller.id, body, portfolio_id)

    return envelope(request, await run_in_threadpool(run))


@router.post("/hedge", status_code=202, summary="Search hedges for a risk within a budget, as a Ray job (spec 7.6)",
             response_model=AsyncAccepted, responses=error_responses(400, 401, 404, 429, 503))
async def hedge(body: schemas.HedgeBody, caller: CallerDep, state: StateDep, portfolio_id: PortfolioId = None):
    from services.proforma import hedge as hedge_service

    with service_errors():
        hedge_service.validate(body)
        service.get_portfolio_id(state.catalog, caller.id, portfolio_id)
    job, _ = await start_job(state, caller, "proforma.hedge", {**body, "portfolio_id": portfolio_id},
                             estimated_duration_ms=8000)
    return SigmaJSONResponse(async_accepted(job.id, job.status, job.estimated_duration_ms), status_code=202)
