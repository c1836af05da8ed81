"""Risk analytics (portfolio spec 6.1, 6.4-6.7): factors, overview, VaR family, scenarios.

Figures come from the daily batch when it is fresh for the current holdings (``meta.source``
``batch`` with ``as_of`` and ``age_seconds``), otherwise they are computed live
(``meta.source`` ``live``). Service logic lives in :mod:`services.risk.service`.
"""

from __future__ import annotations

import contextlib
import re

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.risk import service
from compute.marketdata import MarketDataError
from serve_app.deps import Caller, current_user, get_state
from serve_app.envelope import async_accepted, envelope
from serve_app.errors import ApiError, invalid
from serve_app.jobrunner import start_job
from serve_app.market import get_provider
from serve_app.state import AppState

router = APIRouter(prefix="/risk", tags=["risk"])

_FIELD_RE = re.compile(r"^([A-Za-z_][\w.]*):\s*(.*)$", re.S)
VIEW_PATTERN = "^(portfolio|longs|shorts)$"
PERIOD_PATTERN = "^(daily|weekly|monthly|annual)$"
PortfolioId = Query(None, description="portfolio id (default: the user's default portfolio)")
Refresh = Query(False, description="compute live even when a fresh batch result is stored")


@contextlib.contextmanager
def risk_errors(default_field: str = "request"):
    """Service exceptions to the standard error body: 404 for rows not the caller's, 400 naming
    the field for bad input (messages read ``field: reason``), 503 when market data fails."""
    try:
        yield
    except LookupError as exc:
        raise ApiError(404, "NOT_FOUND", str(exc).capitalize() + (" not found" if "not found" not in str(exc) else "")) from None
    except MarketDataError as exc:
        raise ApiError(503, "MARKET_DATA_UNAVAILABLE", f"market data unavailable: {exc}") from None
    except ValueError as exc:
        field = getattr(exc, "field", None)
        reason = getattr(exc, "reason", None)
        if field is None:
            match = _FIELD_RE.match(str(exc))
            field, reason = (match.group(1), match.group(2)) if match else (default_field, str(exc))
            if field.startswith("shocks"):  # custom scenario shocks arrive as body parameters
                field = "custom_scenario.parameters" + field[len("shocks"):]
        raise invalid(field, reason or str(exc)) from None


def _respond(request: Request, data, source: dict, extra_meta: dict | None = None) -> JSONResponse:
    meta = dict(source)
    if extra_meta:
        meta.update(extra_meta)
    return envelope(request, data, cache_status="hit" if source.get("source") == "batch" else "miss", meta=meta)


def _csv(raw: str | None) -> list[str]:
    return [x.strip() for x in (raw or "").split(",") if x.strip()]


@router.get("/factors/definitions", summary="The 8 factors of the model and their ETF proxies (spec 6.4)")
def factor_definitions(request: Request, _: Caller = Depends(current_user)):
    return envelope(request, service.factor_definitions())


@router.get("/factors", summary="Portfolio exposure per factor, in dollars and as a fraction of equity (spec 6.5)")
def factors(
    request: Request,
    view: str = Query("portfolio", pattern=VIEW_PATTERN),
    period: str = Query("daily", pattern=PERIOD_PATTERN, description="betas are estimated on daily returns whatever the period"),
    window: int = Query(service.DEFAULT_WINDOW, ge=70, le=504, description="regression window in trading days (150 default, 252 allowed)"),
    refresh: bool = Refresh,
    portfolio_id: str | None = PortfolioId,
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    with risk_errors():
        report, source = service.portfolio_factors(state.catalog, get_provider(state), caller.id, portfolio_id,
                                                   view=view, window=window, use_stored=not refresh)
    return _respond(request, report["portfolio"], source, {
        "view": view, "period": period, "window": report["window"], "equity": report.get("equity"),
        "regression_start": report.get("start"), "regression_end": report.get("end"),
        "additional_factors": report.get("additional_factors"), "warnings": report.get("warnings", []),
    })


@router.get("/factors/positions", summary="Per-position betas, t-stats, R^2 and data points (spec 6.6)")
def factor_positions(
    request: Request,
    position_ids: str | None = Query(None, description="comma-separated position ids (default: all)"),
    factors: str | None = Query(None, description="comma-separated factor names, e.g. 'Market Beta,Momentum'"),
    window: int = Query(service.DEFAULT_WINDOW, ge=70, le=504),
    refresh: bool = Refresh,
    portfolio_id: str | None = PortfolioId,
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    with risk_errors():
        data, source = service.position_factors(state.catalog, get_provider(state), caller.id, portfolio_id,
                                                position_ids=_csv(position_ids) or None, factors=_csv(factors) or None,
                                                window=window, use_stored=not refresh)
    return _respond(request, data, source)


@router.get("/overview", summary="Beta, volatility, correlation, drawdown, VaR and ES of a view (spec 6.1)")
def overview(
    request: Request,
    view: str = Query("portfolio", pattern=VIEW_PATTERN),
    period: str = Query("daily", pattern=PERIOD_PATTERN),
    refresh: bool = Refresh,
    portfolio_id: str | None = PortfolioId,
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    with risk_errors():
        data, source = service.portfolio_overview(state.catalog, get_provider(state), caller.id, portfolio_id,
                                                  view=view, period=period, use_stored=not refresh)
    return _respond(request, data, source)


def _var(request, view, paths, seed, refresh, portfolio_id, caller, state):
    with risk_errors():
        data, source = service.portfolio_var(state.catalog, get_provider(state), caller.id, portfolio_id,
                                             view=view, paths=paths, seed=seed, use_stored=not refresh)
    return _respond(request, data, source)


@router.get("/var", summary="VaR family: historical, parametric, Cornish-Fisher, Monte Carlo (95/99 %, 1d/10d, ES 97.5 %)")
@router.get("/metrics", summary="Risk metrics (spec 2.3.4): the same VaR family as GET /risk/var")
def var(
    request: Request,
    view: str = Query("portfolio", pattern=VIEW_PATTERN),
    paths: int = Query(service.MONTE_CARLO_PATHS, ge=1_000, le=1_000_000, description="Monte Carlo paths"),
    seed: int = Query(0, ge=0, le=2**31 - 1),
    refresh: bool = Refresh,
    portfolio_id: str | None = PortfolioId,
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    return _var(request, view, paths, seed, refresh, portfolio_id, caller, state)


@router.get("/scenarios/templates", summary="Stress scenario templates (spec 6.7)")
def scenario_templates(request: Request, _: Caller = Depends(current_user)):
    return envelope(request, service.scenario_template_list())


class CustomScenario(BaseModel):
    name: str = Field("Custom scenario", min_length=1, max_length=120)
    parameters: dict[str, float] = Field(..., description="factor shocks, e.g. {'spy_change': -0.1, 'rate_change': 0.0025}")


class ScenarioRequest(BaseModel):
    scenario_ids: list[str] = Field(default_factory=list, max_length=50)
    custom_scenario: CustomScenario | None = None


@router.post("/scenarios", summary="Run stress scenarios: P&L in $ and % of equity, by type, worst positions")
async def run_scenarios(
    request: Request,
    body: ScenarioRequest = Body(...),
    view: str = Query("portfolio", pattern=VIEW_PATTERN),
    mode: str = Query("sync", pattern="^(sync|async)$"),
    refresh: bool = Refresh,
    portfolio_id: str | None = PortfolioId,
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    custom = body.custom_scenario.model_dump() if body.custom_scenario else None
    with risk_errors("scenario_ids"):
        # validate (and check ownership) before queueing any work
        service.resolve_scenarios(body.scenario_ids, custom)
        pid = service.default_portfolio_id(state.catalog, caller.id, portfolio_id)
    if mode == "async":
        params = {"portfolio_id": pid, "scenario_ids": body.scenario_ids, "custom_scenario": custom, "view": view}
        job, _ = await start_job(state, caller, "portfolio.scenarios", params, estimated_duration_ms=5000)
        return JSONResponse(async_accepted(job.id, job.status, job.estimated_duration_ms), status_code=202)
    from starlette.concurrency import run_in_threadpool

    def compute():
        with risk_errors("scenario_ids"):
            return service.portfolio_scenarios(state.catalog, get_provider(state), caller.id, pid,
                                               scenario_ids=body.scenario_ids, custom=custom, view=view,
                                               use_stored=not refresh)

    data, source = await run_in_threadpool(compute)
    return _respond(request, data, source)
