"""Portfolio Greeks (spec 6.2) and Greeks of hypothetical positions (spec 6.3)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from services.portfolio import service, views
from serve_app.deps import CallerDep, PortfolioId, StateDep, book_for
from serve_app.envelope import SigmaJSONResponse, async_accepted, envelope
from serve_app.errors import service_errors
from serve_app.jobrunner import start_job
from serve_app.market import get_provider
from serve_app.schemas import risk as schemas
from serve_app.schemas.common import AsyncAccepted, Envelope, also, error_responses

router = APIRouter(prefix="/risk/greeks", tags=["risk"])


@router.get("", summary="Greek totals now and after the nearest expiry (spec 6.2)",
            response_model=Envelope[schemas.PortfolioGreeks], responses=error_responses(400, 401, 404, 429, 503))
def portfolio_greeks(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    include_after_expiry: bool = Query(True),
    view: str = Query("portfolio", pattern="^(portfolio|longs|shorts)$"),
    portfolio_id: PortfolioId = None,
):
    book = book_for(state, caller, portfolio_id)
    return envelope(request, views.risk_greeks(book, view, include_after_expiry), cache_status=book.cache_status)


@router.post("/calculate", summary="Greeks of hypothetical positions (spec 6.3); mode=sync|async",
             response_model=Envelope[schemas.HypotheticalGreeks],
             responses={**also(202, AsyncAccepted, "mode=async: a job; poll its poll_url"),
                        **error_responses(400, 401, 429, 503)})
async def calculate(
    request: Request,
    body: schemas.HypotheticalBody,
    caller: CallerDep,
    state: StateDep,
    mode: str = Query("sync", pattern="^(sync|async)$"),
):
    limit = service.MAX_HYPOTHETICAL_SYNC if mode == "sync" else service.MAX_HYPOTHETICAL
    with service_errors():
        specs = service.parse_hypothetical(body.get("positions"), limit)
    if mode == "async":
        job, _ = await start_job(state, caller, "portfolio.greeks", {"positions": body["positions"]},
                                 estimated_duration_ms=500 + 2 * len(specs))
        return SigmaJSONResponse(async_accepted(job.id, job.status, job.estimated_duration_ms), status_code=202)
    from starlette.concurrency import run_in_threadpool

    frame = await run_in_threadpool(service.price_position_specs, get_provider(state), specs)
    return envelope(request, views.hypothetical_greeks(frame))
