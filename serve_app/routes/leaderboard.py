"""Leaderboard (Lab spec "Leaderboard API" and "Export Leaderboard"): every backtest and every
sweep configuration of the caller, ranked: gate passes first, then the pack's post-gate
ranking score (docs/spec/reference.md), then Sharpe; or by any metric with ``sort_by``."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import Response

from serve_app.deps import CallerDep, OffsetQuery, StateDep
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import invalid, service_errors
from serve_app.schemas.common import csv_responses, error_responses
from serve_app.schemas.sweeps import Leaderboard
from services.lab import leaderboard

router = APIRouter(tags=["lab leaderboard"])


def _filters(model_id, pack_id, tag, risk_profile, pass_gate, sweep_id, sort_by, order) -> dict:
    return {"model_id": model_id, "pack_id": pack_id, "tag": tag, "risk_profile": risk_profile,
            "pass_gate": pass_gate, "sweep_id": sweep_id, "sort_by": sort_by, "order": order}


@router.get("/leaderboard", summary="Ranked backtest and sweep results with metrics, gate and config",
            response_model=Leaderboard, responses=error_responses(400, 401, 429))
def get_leaderboard(
    caller: CallerDep,
    state: StateDep,
    model_id: str | None = Query(None, max_length=80),
    pack_id: str | None = Query(None, max_length=32),
    tag: str | None = Query(None, max_length=80),
    risk_profile: str | None = Query(None, max_length=16),
    pass_gate: bool | None = Query(None, description="true: only results passing their gate"),
    sweep_id: str | None = Query(None, max_length=40),
    sort_by: str | None = Query(None, max_length=40, description="any metric (sharpe, cum_ret, sortino, ...); "
                                "default: gate, then ranking score"),
    order: str = Query("desc", pattern="^(asc|desc)$"),
    limit: int = Query(100, ge=1, le=1000),
    offset: OffsetQuery = 0,
):
    with service_errors():
        data = leaderboard.leaderboard(state.catalog, caller.id, limit=limit, offset=offset,
                                  **_filters(model_id, pack_id, tag, risk_profile, pass_gate, sweep_id, sort_by, order))
    return SigmaJSONResponse(data)


@router.get("/export/leaderboard", summary="The leaderboard (same filters) as CSV", response_class=Response,
            responses=csv_responses(400, 401, 429))
def export_leaderboard(
    caller: CallerDep,
    state: StateDep,
    tag: str | None = Query(None, max_length=80),
    format: str = Query("csv", max_length=8),
    model_id: str | None = Query(None, max_length=80),
    pack_id: str | None = Query(None, max_length=32),
    risk_profile: str | None = Query(None, max_length=16),
    pass_gate: bool | None = None,
    sweep_id: str | None = Query(None, max_length=40),
    sort_by: str | None = Query(None, max_length=40),
    order: str = Query("desc", pattern="^(asc|desc)$"),
):
    if format.lower() != "csv":
        raise invalid("format", "only csv is supported")
    with service_errors():
        text = leaderboard.leaderboard_csv(state.catalog, caller.id,
                                      **_filters(model_id, pack_id, tag, risk_profile, pass_gate, sweep_id, sort_by, order))
    name = f"leaderboard_{tag or 'all'}.csv".replace('"', "")
    return Response(text.encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
