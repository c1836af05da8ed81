"""Lab pipeline (Lab spec "BTB Pipeline API" and "Export"): build a matrix, train, backtest,
read a backtest, export its fills. Training and backtests run as jobs (``/jobs/{id}`` too)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query
from fastapi.responses import Response

from cluster.catalog import Training
from services.lab import backtests, matrices
from services.lab.training import create_training, estimate_train_seconds, train_quota, trainings_last_day
from services.lab.export import backtest_csv
from serve_app.deps import Caller, CallerDep, StateDep
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import ApiError, invalid, not_found
from serve_app.jobrunner import start_job
from serve_app.lab_jobs import submit_backtest
from serve_app.market import get_provider
from serve_app.schemas import lab as schemas
from serve_app.schemas.common import csv_responses, error_responses
from serve_app.state import AppState

router = APIRouter(tags=["lab"])


@router.post("/build_matrix", summary="Build (or find) a model's feature matrix; idempotent by matrix_sha",
             response_model=schemas.Matrix, responses=error_responses(400, 401, 404, 429, 503))
def build_matrix(body: schemas.BuildMatrix, caller: CallerDep, state: StateDep):
    try:
        data, created = matrices.build_matrix(state.catalog, state.store, get_provider(state), caller.id, body.model_id,
                                             body.start_date, body.end_date, body.features)
    except LookupError:
        raise not_found("model", body.model_id) from None
    return SigmaJSONResponse({**data, "created": created})


@router.post("/train", status_code=202, summary="Train a model on a matrix (a job; quotas per user)",
             response_model=schemas.TrainAccepted, responses=error_responses(400, 401, 404, 429, 503))
async def train(body: schemas.TrainRequest, caller: CallerDep, state: StateDep):
    per_day, at_once = train_quota(caller.tier)
    if trainings_last_day(state.catalog, caller.id) >= per_day:
        raise ApiError(429, "RATE_LIMITED", f"training quota reached: {per_day} trainings in 24 hours for tier "
                       f"{caller.tier}", field="model_id")
    try:
        training, model = create_training(state.catalog, caller.id, body.model_id, body.matrix_sha,
                                                  body.allowed_hours, body.config, state.settings.model_modules)
    except LookupError:
        raise not_found("model", body.model_id) from None
    matrix = matrices.get_matrix(state.catalog, model.id, training.matrix_sha)
    seconds = estimate_train_seconds(matrix.rows, training.config)
    job, position = await start_job(state, caller, "lab.train", {"training_id": training.id, "model_id": model.model_id},
                                    estimated_duration_ms=seconds * 1000, queue_group="lab.train", queue_limit=at_once)
    with state.catalog.session() as s:
        s.get(Training, training.id).job_id = job.id
    return SigmaJSONResponse({"job_id": job.id, "training_id": training.id, "model_id": model.model_id,
                              "status": "queued", "estimated_time": seconds, "queue_position": position},
                             status_code=202)


@router.post("/backtest", status_code=202,
             summary="Walk-forward backtest of a model, or of a built-in strategy or your own signal on its ticker (a job)",
             response_model=schemas.BacktestAccepted, responses=error_responses(400, 401, 404, 429, 503))
async def backtest(body: schemas.BacktestRequest, caller: CallerDep, state: StateDep):
    return SigmaJSONResponse(await submit_backtest(state, caller, body), status_code=202)


def _own_backtest(state: AppState, caller: Caller, backtest_id: str):
    try:
        return backtests.get_backtest(state.catalog, caller.id, backtest_id)
    except LookupError:
        raise not_found("backtest", backtest_id) from None


@router.get("/backtest/{backtest_id}", summary="Backtest status, metrics, per-fold figures and gate",
            response_model=schemas.Backtest, responses=error_responses(401, 404, 429))
def get_backtest(backtest_id: str, caller: CallerDep, state: StateDep):
    bt, model_id = _own_backtest(state, caller, backtest_id)
    eta = None
    if bt.status in ("queued", "running") and bt.job_id:
        from cluster.catalog import Job

        with state.catalog.session() as s:
            job = s.get(Job, bt.job_id)
            if job is not None and job.status in ("failed", "cancelled"):
                # the worker died before the job body could record it
                backtests.fail_backtest(state.catalog, bt.id, (job.error or {}).get("message") or f"job {job.status}")
                bt, model_id = _own_backtest(state, caller, backtest_id)
            elif job is not None and job.estimated_duration_ms:
                start = job.started_at or job.created_at
                eta = (start + dt.timedelta(milliseconds=job.estimated_duration_ms)).isoformat()
    return SigmaJSONResponse(backtests.backtest_view(bt, model_id, eta))


@router.get("/export/backtest/{backtest_id}", summary="A backtest's fills as CSV", response_class=Response,
            responses=csv_responses(400, 401, 404, 409, 429))
def export_backtest(backtest_id: str, caller: CallerDep, state: StateDep, format: str = Query("csv", max_length=8)):
    if format.lower() != "csv":
        raise invalid("format", "only csv is supported")
    bt, _ = _own_backtest(state, caller, backtest_id)
    if bt.status != "completed" or not bt.fills_path:
        raise ApiError(409, "CONFLICT", f"backtest {backtest_id} is {bt.status}; export it once completed",
                       field="backtest_id")
    data = backtest_csv(state.store, bt.fills_path, bt.fills_sha)
    return Response(data, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{backtest_id}.csv"'})
