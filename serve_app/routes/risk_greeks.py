"""Portfolio Greeks (spec 6.2) and Greeks of hypothetical positions (spec 6.3)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request

from services.portfolio import service, views
from serve_app.deps import Caller, current_user, get_state
from serve_app.envelope import SigmaJSONResponse, async_accepted, envelope
from serve_app.errors import invalid
from serve_app.jobrunner import start_job
from serve_app.market import get_provider
from serve_app.routes.portfolio import PortfolioId, book_for, service_errors
from serve_app.state import AppState

router = APIRouter(prefix="/risk/greeks", tags=["risk"])


@router.get("", summary="Greek totals now and after the nearest expiry (spec 6.2)")
def portfolio_greeks(
    request: Request,
    include_after_expiry: bool = Query(True),
    view: str = Query("portfolio", pattern="^(portfolio|longs|shorts)$"),
    portfolio_id: str | None = PortfolioId,
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    book = book_for(state, caller, portfolio_id)
    return envelope(request, views.risk_greeks(book, view, include_after_expiry), cache_status=book.cache_status)


@router.post("/calculate", summary="Greeks of hypothetical positions (spec 6.3); mode=sync|async")
async def calculate(
    request: Request,
    body: Any = Body(..., examples=[{"positions": [{"ticker": "AAPL", "type": "LC", "quantity": 20, "strike": 200, "expiration": "2025-12-19"}]}]),
    mode: str = Query("sync", pattern="^(sync|async)$"),
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object with 'positions'")
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
