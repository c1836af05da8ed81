"""The portfolio's charts (issue 14): ``GET /portfolio/chart/{name}.png|svg`` for exposure,
sector, tag, greeks, factors, scenarios and var, drawn by ``services.reports.portfolio_charts``
from the same figures as ``/portfolio/exposures``, ``/risk/greeks``, ``/risk/factors``,
``/risk/scenarios`` and ``/risk/var`` (the risk reports embed the same drawings)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import Response

from serve_app.deps import CallerDep, PortfolioId, StateDep
from serve_app.errors import service_errors
from serve_app.images import IMAGE, chart_name, image_response
from serve_app.market import get_provider
from services.reports.portfolio_charts import PORTFOLIO_CHARTS, portfolio_chart_bytes

router = APIRouter(tags=["portfolio charts"])


@router.get("/portfolio/chart/{chart}", response_class=Response, responses=IMAGE,
            summary="A chart of the portfolio: exposure, sector, tag, greeks, factors, scenarios, var (PNG or SVG)")
def portfolio_chart_route(chart: str, caller: CallerDep, state: StateDep, portfolio_id: PortfolioId = None,
                          level: float = Query(0.95, ge=0.5, le=0.999, description="VaR/ES level (var)")):
    name, ext = chart_name(chart, PORTFOLIO_CHARTS)
    with service_errors():
        data = portfolio_chart_bytes(state.catalog, get_provider(state), caller.id, name, ext, portfolio_id, level=level)
    return image_response(data, ext)
