"""Risk analytics (portfolio spec 6.1, 6.4-6.7): factors, overview, VaR family, scenarios.

Figures come from the daily batch when it is fresh for the current holdings (``meta.source``
``batch`` with ``as_of`` and ``age_seconds``), otherwise they are computed live
(``meta.source`` ``live``). Service logic lives in :mod:`services.risk.service`.
"""

from __future__ import annotations

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from services.risk import service
from serve_app.deps import CallerDep, PortfolioId, StateDep
from serve_app.envelope import async_accepted, envelope
from serve_app.errors import service_errors
from serve_app.jobrunner import start_job
from serve_app.market import get_provider
from serve_app.schemas import risk as schemas
from serve_app.schemas.common import AsyncAccepted, Envelope, also, error_responses

router = APIRouter(prefix="/risk", tags=["risk"])

VIEW_PATTERN = "^(portfolio|longs|shorts)$"
PERIOD_PATTERN = "^(daily|weekly|monthly|annual)$"
Refresh = Query(False, description="compute live even when a fresh batch result is stored")
#: The risk service raises bare ``ValueError("field: reason")``: the field is in the message,
#: else it is the request as a whole.
RISK_FIELD = "request"
#: Every route that computes on the book: bad parameters, a portfolio that is not the caller's,
#: no market data.
RISK_ERRORS = error_responses(400, 401, 404, 429, 503)


def _respond(request: Request, data, source: dict, extra_meta: dict | None = None) -> JSONResponse:
    meta = dict(source)
    if extra_meta:
        meta.update(extra_meta)
    return envelope(request, data, cache_status="hit" if source.get("source") == "batch" else "miss", meta=meta)


def _csv(raw: str | None) -> list[str]:
    return [x.strip() for x in (raw or "").split(",") if x.strip()]


@router.get("/factors/definitions", summary="The 8 factors of the model and their ETF proxies (spec 6.4)",
            response_model=Envelope[list[schemas.FactorDefinition]], responses=error_responses(401, 429))
def factor_definitions(request: Request, _: CallerDep):
    return envelope(request, service.factor_definitions())


@router.get("/factors", summary="Portfolio exposure per factor, in dollars and as a fraction of equity (spec 6.5)",
            response_model=Envelope[list[schemas.FactorExposure], schemas.FactorMeta], responses=RISK_ERRORS)
def factors(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    view: str = Query("portfolio", pattern=VIEW_PATTERN),
    period: str = Query("daily", pattern=PERIOD_PATTERN, description="betas are estimated on daily returns whatever the period"),
    window: int = Query(service.DEFAULT_WINDOW, ge=70, le=504, description="regression window in trading days (150 default, 252 allowed)"),
    refresh: bool = Refresh,
    portfolio_id: PortfolioId = None,
):
    with service_errors(RISK_FIELD):
        report, source = service.portfolio_factors(state.catalog, get_provider(state), caller.id, portfolio_id,
                                                   view=view, window=window, use_stored=not refresh)
    return _respond(request, report["portfolio"], source, {
        "view": view, "period": period, "window": report["window"], "equity": report.get("equity"),
        "regression_start": report.get("start"), "regression_end": report.get("end"),
        "additional_factors": report.get("additional_factors"), "warnings": report.get("warnings", []),
    })


@router.get("/factors/positions", summary="Per-position betas, t-stats, R^2 and data points (spec 6.6)",
            response_model=Envelope[schemas.PositionFactorReport, schemas.RiskMeta], responses=RISK_ERRORS)
def factor_positions(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    position_ids: str | None = Query(None, description="comma-separated position ids (default: all)"),
    factors: str | None = Query(None, description="comma-separated factor names, e.g. 'Market Beta,Momentum'"),
    window: int = Query(service.DEFAULT_WINDOW, ge=70, le=504),
    refresh: bool = Refresh,
    portfolio_id: PortfolioId = None,
):
    with service_errors(RISK_FIELD):
        data, source = service.position_factors(state.catalog, get_provider(state), caller.id, portfolio_id,
                                                position_ids=_csv(position_ids) or None, factors=_csv(factors) or None,
                                                window=window, use_stored=not refresh)
    return _respond(request, data, source)


@router.get("/overview", summary="Beta, volatility, correlation, drawdown, VaR and ES of a view (spec 6.1)",
            response_model=Envelope[schemas.RiskOverview, schemas.RiskMeta], responses=RISK_ERRORS)
def overview(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    view: str = Query("portfolio", pattern=VIEW_PATTERN),
    period: str = Query("daily", pattern=PERIOD_PATTERN),
    refresh: bool = Refresh,
    portfolio_id: PortfolioId = None,
):
    with service_errors(RISK_FIELD):
        data, source = service.portfolio_overview(state.catalog, get_provider(state), caller.id, portfolio_id,
                                                  view=view, period=period, use_stored=not refresh)
    return _respond(request, data, source)


def _var(request, view, paths, seed, refresh, portfolio_id, caller, state):
    with service_errors(RISK_FIELD):
        data, source = service.portfolio_var(state.catalog, get_provider(state), caller.id, portfolio_id,
                                             view=view, paths=paths, seed=seed, use_stored=not refresh)
    return _respond(request, data, source)


@router.get("/var", summary="VaR family: historical, parametric, Cornish-Fisher, Monte Carlo (95/99 %, 1d/10d, ES 97.5 %)",
            response_model=Envelope[schemas.VarReport, schemas.RiskMeta], responses=RISK_ERRORS)
@router.get("/metrics", summary="Risk metrics (spec 2.3.4): the same VaR family as GET /risk/var",
            response_model=Envelope[schemas.VarReport, schemas.RiskMeta], responses=RISK_ERRORS)
def var(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    view: str = Query("portfolio", pattern=VIEW_PATTERN),
    paths: int = Query(service.MONTE_CARLO_PATHS, ge=1_000, le=1_000_000, description="Monte Carlo paths"),
    seed: int = Query(0, ge=0, le=2**31 - 1),
    refresh: bool = Refresh,
    portfolio_id: PortfolioId = None,
):
    return _var(request, view, paths, seed, refresh, portfolio_id, caller, state)


@router.get("/scenarios/templates", summary="Stress scenario templates (spec 6.7)",
            response_model=Envelope[list[schemas.ScenarioTemplate]], responses=error_responses(401, 429))
def scenario_templates(request: Request, _: CallerDep):
    return envelope(request, service.scenario_template_list())


#: Custom scenario shocks arrive as ``custom_scenario.parameters``; the service calls them ``shocks``.
SCENARIO_FIELDS = {"shocks": "custom_scenario.parameters"}


@router.post("/scenarios", summary="Run stress scenarios: P&L in $ and % of equity, by type, worst positions",
             response_model=Envelope[schemas.ScenarioReport, schemas.RiskMeta],
             responses={**also(202, AsyncAccepted, "mode=async: a job; poll its poll_url"), **RISK_ERRORS})
async def run_scenarios(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    body: schemas.ScenarioRequest = Body(...),
    view: str = Query("portfolio", pattern=VIEW_PATTERN),
    mode: str = Query("sync", pattern="^(sync|async)$"),
    refresh: bool = Refresh,
    portfolio_id: PortfolioId = None,
):
    custom = body.custom_scenario.model_dump() if body.custom_scenario else None
    with service_errors("scenario_ids", aliases=SCENARIO_FIELDS):
        # validate (and check ownership) before queueing any work
        service.resolve_scenarios(body.scenario_ids, custom)
        pid = service.default_portfolio_id(state.catalog, caller.id, portfolio_id)
    if mode == "async":
        params = {"portfolio_id": pid, "scenario_ids": body.scenario_ids, "custom_scenario": custom, "view": view}
        job, _ = await start_job(state, caller, "portfolio.scenarios", params, estimated_duration_ms=5000)
        return JSONResponse(async_accepted(job.id, job.status, job.estimated_duration_ms), status_code=202)
    from starlette.concurrency import run_in_threadpool

    def compute():
        with service_errors("scenario_ids", aliases=SCENARIO_FIELDS):
            return service.portfolio_scenarios(state.catalog, get_provider(state), caller.id, pid,
                                               scenario_ids=body.scenario_ids, custom=custom, view=view,
                                               use_stored=not refresh)

    data, source = await run_in_threadpool(compute)
    return _respond(request, data, source)
