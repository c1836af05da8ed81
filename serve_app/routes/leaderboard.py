"""Leaderboard (Lab spec "Leaderboard API" and "Export Leaderboard"): every backtest and every
sweep configuration of the caller, ranked: gate passes first, then the pack's post-gate
ranking score (docs/spec/reference.md), then Sharpe; or by any metric with ``sort_by``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from serve_app.deps import Caller, Offset, current_user, get_state
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import invalid
from serve_app.state import AppState
from services.lab import leaderboard
from services.lab.common import LabInputError

router = APIRouter(tags=["lab leaderboard"])


def _filters(model_id, pack_id, tag, risk_profile, pass_gate, sweep_id, sort_by, order) -> dict:
    return {"model_id": model_id, "pack_id": pack_id, "tag": tag, "risk_profile": risk_profile,
            "pass_gate": pass_gate, "sweep_id": sweep_id, "sort_by": sort_by, "order": order}


@router.get("/leaderboard", summary="Ranked backtest and sweep results with metrics, gate and config")
def get_leaderboard(
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
    offset: int = Offset,
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    try:
        data = leaderboard.leaderboard(state.catalog, caller.id, limit=limit, offset=offset,
                                  **_filters(model_id, pack_id, tag, risk_profile, pass_gate, sweep_id, sort_by, order))
    except LabInputError as exc:
        raise invalid(exc.field, exc.reason) from None
    return SigmaJSONResponse(data)


@router.get("/export/leaderboard", summary="The leaderboard (same filters) as CSV")
def export_leaderboard(
    tag: str | None = Query(None, max_length=80),
    format: str = Query("csv", max_length=8),
    model_id: str | None = Query(None, max_length=80),
    pack_id: str | None = Query(None, max_length=32),
    risk_profile: str | None = Query(None, max_length=16),
    pass_gate: bool | None = None,
    sweep_id: str | None = Query(None, max_length=40),
    sort_by: str | None = Query(None, max_length=40),
    order: str = Query("desc", pattern="^(asc|desc)$"),
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    if format.lower() != "csv":
        raise invalid("format", "only csv is supported")
    try:
        text = leaderboard.leaderboard_csv(state.catalog, caller.id,
                                      **_filters(model_id, pack_id, tag, risk_profile, pass_gate, sweep_id, sort_by, order))
    except LabInputError as exc:
        raise invalid(exc.field, exc.reason) from None
    name = f"leaderboard_{tag or 'all'}.csv".replace('"', "")
    return Response(text.encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
