"""Series, tables and charts of Lab results (issue 14): a backtest's per-bar series and trade
list, its charts, a sweep's grid as a table and its heatmap, the leaderboard's Sharpe vs
deflated Sharpe. Tables as JSON or Parquet (``format=``), charts as PNG or SVG."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import Response

from serve_app.deps import CallerDep, StateDep
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import ApiError, invalid, not_found, service_errors
from serve_app.images import IMAGE, chart_name as _chart_name, image_response as _image
from serve_app.schemas import charts as schemas
from services.lab import backtests, leaderboard, sweeps
from services.reports import charts, frames
from services.reports.lab import BACKTEST_CHARTS, backtest_chart_bytes

router = APIRouter(tags=["lab charts"])

TABLE = schemas.binary_responses(frames.FORMATS, "JSON (column-oriented) or Parquet (format=parquet)", 400, 401, 404, 409, 429)


def _format(value: str, allowed, field: str = "format") -> str:
    if value not in allowed:
        raise invalid(field, f"use one of {', '.join(allowed)}")
    return value


def _completed_backtest(state, caller, backtest_id: str):
    try:
        bt, model_id = backtests.get_backtest(state.catalog, caller.id, backtest_id)
    except LookupError:
        raise not_found("backtest", backtest_id) from None
    if bt.status != "completed" or not bt.series_path:
        reason = f"is {bt.status}" if bt.status != "completed" else "was recorded without series; run it again"
        raise ApiError(409, "CONFLICT", f"backtest {backtest_id} {reason}", field="backtest_id")
    return bt, model_id


@router.get("/backtest/{backtest_id}/series", summary="A backtest's per-bar series, trades and folds (JSON or Parquet)",
            response_class=Response, responses={**TABLE, 200: {**TABLE[200], "model": schemas.BacktestSeries}})
def backtest_series(backtest_id: str, caller: CallerDep, state: StateDep,
                    format: str = Query("json", max_length=16, description="json | parquet"),
                    table: str = Query("bars", max_length=16, description="with format=parquet: bars | trades")):
    _format(format, frames.FORMATS)
    _format(table, ("bars", "trades"), "table")
    bt, model_id = _completed_backtest(state, caller, backtest_id)
    bars = backtests.load_series(state.store, bt)
    trades = backtests.load_trades(state.store, bt)
    if format == "parquet":
        data = frames.to_parquet(bars if table == "bars" else trades)
        return Response(data, media_type=frames.FORMATS["parquet"],
                        headers={"Content-Disposition": f'attachment; filename="{backtest_id}_{table}.parquet"'})
    return SigmaJSONResponse({"backtest_id": bt.id, "model_id": model_id, "n_bars": len(bars),
                              "columns": list(bars.columns), "bars": frames.to_columns(bars),
                              "trades": frames.to_columns(trades), "folds": bt.folds or []})


@router.get("/backtest/{backtest_id}/chart/{chart}", summary="A backtest chart: equity, monthly, rolling, distribution, position",
            response_class=Response, responses=IMAGE)
def backtest_chart_route(backtest_id: str, chart: str, caller: CallerDep, state: StateDep,
                         window: int = Query(63, ge=5, le=1000, description="rolling window in bars (rolling)"),
                         level: float = Query(0.95, ge=0.5, le=0.999, description="VaR/ES level (distribution)")):
    name, ext = _chart_name(chart, BACKTEST_CHARTS)
    bt, model_id = _completed_backtest(state, caller, backtest_id)
    data = backtest_chart_bytes(bt.series_sha, name, lambda: backtests.load_series(state.store, bt), ext,
                                title=model_id, window=window, level=level, store=state.store)
    return _image(data, ext)


def _sweep_grid(state, caller, sweep_id: str):
    try:
        return sweeps.sweep_grid(state.catalog, caller.id, sweep_id)
    except LookupError:
        raise not_found("sweep", sweep_id) from None


@router.get("/backtest_sweep/{sweep_id}/grid", summary="A sweep's grid: configuration axes x metrics (JSON or Parquet)",
            response_class=Response, responses={**TABLE, 200: {**TABLE[200], "model": schemas.SweepGrid}})
def sweep_grid(sweep_id: str, caller: CallerDep, state: StateDep,
               format: str = Query("json", max_length=16, description="json | parquet")):
    _format(format, frames.FORMATS)
    grid = _sweep_grid(state, caller, sweep_id)
    if format == "parquet":
        return Response(frames.to_parquet(grid), media_type=frames.FORMATS["parquet"],
                        headers={"Content-Disposition": f'attachment; filename="{sweep_id}_grid.parquet"'})
    return SigmaJSONResponse({"sweep_id": sweep_id, "n_configs": len(grid), "axes": sweeps.grid_axes(grid),
                              "metrics": list(sweeps.GRID_METRICS), "columns": frames.to_columns(grid)})


@router.get("/backtest_sweep/{sweep_id}/chart/{chart}", summary="A sweep's metric heatmap over two grid axes",
            response_class=Response, responses=IMAGE)
def sweep_chart(sweep_id: str, chart: str, caller: CallerDep, state: StateDep,
                x: str | None = Query(None, max_length=32, description="a grid axis (GET .../grid lists them; a "
                                      "strategy sweep's parameters are axes too); default: an axis whose values vary"),
                y: str | None = Query(None, max_length=32, description="another grid axis; default: another that varies"),
                metric: str = Query("sharpe", max_length=32, description="a metric column of the grid")):
    _, ext = _chart_name(chart, ("heatmap",))
    _format(metric, [m for m in sweeps.GRID_METRICS if m != "gate_pass"], "metric")
    grid = _sweep_grid(state, caller, sweep_id)
    axes = sweeps.grid_axes(grid)
    for field, axis in (("x", x), ("y", y)):
        if axis is not None:
            _format(axis, axes, field)
    if x is not None and x == y:
        raise invalid("y", "must differ from x")
    x, y = sweeps.heatmap_axes(grid, x, y)
    return _image(charts.render(charts.grid_heatmap(grid, x, y, metric), ext), ext)


@router.get("/leaderboard/chart/{chart}", summary="The leaderboard's Sharpe vs deflated Sharpe (PNG or SVG)",
            response_class=Response, responses=IMAGE)
def leaderboard_chart(chart: str, caller: CallerDep, state: StateDep,
                      sweep_id: str | None = Query(None, max_length=40), model_id: str | None = Query(None, max_length=80),
                      limit: int = Query(500, ge=1, le=5000)):
    _, ext = _chart_name(chart, ("sharpe_vs_deflated",))
    with service_errors():
        data = leaderboard.leaderboard(state.catalog, caller.id, limit=limit, offset=0, model_id=model_id,
                                       sweep_id=sweep_id, sort_by="sharpe", order="desc")
    items = data["items"]
    nan = float("nan")
    fig = charts.sharpe_vs_deflated([nan if i["metrics"].get("sharpe") is None else i["metrics"]["sharpe"] for i in items],
                                    [nan if i["metrics"].get("deflated_sharpe") is None else i["metrics"]["deflated_sharpe"]
                                     for i in items])
    return _image(charts.render(fig, ext), ext)
