"""GET /healthz: real checks of the catalog, the artifact store, market data and the Ray workers."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from fastapi import APIRouter, Request

from serve_app.deps import StateDep, current_user
from serve_app.envelope import SigmaJSONResponse
from serve_app.schemas.common import error_responses
from serve_app.schemas.health import Health, HealthDetail
from serve_app.state import AppState

router = APIRouter(tags=["health"])

VERSION = "0.1.0"


def _check(fn) -> dict:
    started = time.perf_counter()
    try:
        detail = fn()
        # a component that works but had to leave something out says so (``degraded``)
        status = "degraded" if isinstance(detail, dict) and detail.get("degraded") else "healthy"
        error = None
        if isinstance(detail, dict) and detail.get("unhealthy"):  # failed, with detail worth showing
            status, error = "unhealthy", str(detail.pop("unhealthy"))
    except Exception as exc:  # noqa: BLE001 - a failing component makes the service degraded, not down
        detail, status, error = None, "unhealthy", f"{type(exc).__name__}: {exc}"
    out = {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    if detail:
        out["detail"] = detail
    if error:
        out["error"] = error[:300]
    return out


def _workers() -> dict:
    import ray

    from cluster.runtime import worker_health

    if not ray.is_initialized():
        raise RuntimeError("Ray is not running in this process")
    info = worker_health()
    if info["nodes"] < 1 or info["cpus"] <= 0:
        raise RuntimeError("no alive Ray node with CPUs")
    return info


def component_checks(state: AppState) -> dict:
    from serve_app.market import market_health

    return {
        "database": _check(lambda: state.catalog.ping()),
        "artifact_store": _check(lambda: state.store.check()),
        "market_data": _check(lambda: market_health(state)),
        "workers": _check(_workers),
    }


@router.get("/healthz", summary="Service health; ticker/pack_id/model_id details need a token",
            response_model=Health | HealthDetail, responses=error_responses(400, 401, 404),
            openapi_extra={"security": [{}, {"HTTPBearer": []}]},
            response_description="Health of every component; with ticker, pack_id or model_id, those components' detail")
async def healthz(
    request: Request,
    state: StateDep,
    ticker: str | None = None,
    pack_id: str | None = None,
    model_id: str | None = None,
):
    if ticker or pack_id or model_id:
        caller = current_user(request, state)
        from serve_app.health_detail import component_detail

        return SigmaJSONResponse(await asyncio.to_thread(component_detail, state, caller, ticker=ticker, pack_id=pack_id,
                                                         model_id=model_id))
    checks = await asyncio.to_thread(component_checks, state)
    overall = "healthy" if all(c["status"] == "healthy" for c in checks.values()) else "degraded"
    return SigmaJSONResponse({
        "status": overall,
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        "components": {name: c["status"] for name, c in checks.items()},
        "checks": checks,
        "version": VERSION,
    })
