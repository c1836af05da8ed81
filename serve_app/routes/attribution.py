"""P&L attribution (portfolio spec 5.3): one day's P&L by position, tag or position type."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query, Request

from services.risk import service
from serve_app.deps import CallerDep, PortfolioId, StateDep
from serve_app.envelope import envelope
from serve_app.errors import invalid, service_errors
from serve_app.market import get_provider
from serve_app.schemas.common import Envelope, IsoDate, error_responses
from serve_app.schemas.risk import Attribution, AttributionMeta

router = APIRouter(prefix="/attribution", tags=["risk"])


@router.get("/positions", summary="One day's P&L and contribution percent by position, tag or type (spec 5.3)",
            response_model=Envelope[Attribution, AttributionMeta], responses=error_responses(400, 401, 404, 429, 503))
def positions(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    date: IsoDate | None = Query(None, description="session date YYYY-MM-DD (default: the latest session)"),
    group_by: str = Query("position", alias="groupBy", pattern="^(position|tag|type)$"),
    portfolio_id: PortfolioId = None,
):
    if date is not None and date > dt.date.today():
        raise invalid("date", "must not be in the future")
    with service_errors("date"):
        data = service.attribution(state.catalog, get_provider(state), caller.id, portfolio_id, date=date, group_by=group_by)
    return envelope(request, data, meta={"source": "live", "as_of": data["date"]})
