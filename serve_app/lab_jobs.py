"""Starting Lab jobs for a caller: a backtest (``POST /backtest``) and a sweep (``POST
/backtest_sweep``, ``.../resume``), shared by the Lab routes and ``/ai/execute``'s run_backtest
and run_sweep, so an agent's request goes through the same checks, quotas and jobs."""

from __future__ import annotations

import datetime as dt

from cluster.catalog import Backtest
from serve_app.deps import Caller
from serve_app.errors import ApiError, not_found
from serve_app.jobrunner import start_job
from serve_app.schemas import lab as lab_schemas, sweeps as sweep_schemas
from serve_app.state import AppState
from services.lab import backtests, sweeps


async def submit_backtest(state: AppState, caller: Caller, body: lab_schemas.BacktestRequest) -> dict:
    """Record a backtest and start its ``lab.backtest`` job (also ``/ai/execute``'s run_backtest)."""
    try:
        bt, model = backtests.create_backtest(state.catalog, caller.id, body.model_id, body.config, body.matrix_sha,
                                            body.start_date, body.end_date, body.risk_profile,
                                            strategy=body.strategy, signal=body.signal, store=state.store)
    except LookupError:
        raise not_found("model", body.model_id) from None
    limit = state.settings.tier_limits().get(caller.tier, {}).get("concurrent_backtests", 1)
    estimated_ms = 3000 if model.pack_id != "zerosigma" else 6000
    job, position = await start_job(state, caller, "lab.backtest", {"backtest_id": bt.id, "model_id": model.model_id},
                                    estimated_duration_ms=estimated_ms, queue_group="lab.backtest", queue_limit=limit)
    with state.catalog.session() as s:
        s.get(Backtest, bt.id).job_id = job.id
    eta = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(milliseconds=estimated_ms * (1 + position))).isoformat()
    return {"backtest_id": bt.id, "model_id": model.model_id, "job_id": job.id,
            "status": "running" if position == 0 else "queued", "queue_position": position,
            "metrics": None, "estimated_completion": eta}


def _estimate_ms(total: int) -> int:
    # Tune start-up with the walk-forward inputs alongside (~2.5 s), then storing one leaderboard
    # row per configuration (~0.2 ms each) outweighs the kernel (~300 M bar-configs/s)
    return 2500 + total // 5


async def submit_sweep_job(state: AppState, caller: Caller, sweep_id: str, total: int) -> tuple[str, int]:
    _, at_once = sweeps.sweep_quota(caller.tier)
    job, position = await start_job(state, caller, "lab.sweep", {"sweep_id": sweep_id},
                                    estimated_duration_ms=_estimate_ms(total), queue_group="lab.sweep",
                                    queue_limit=at_once)
    sweeps.attach_job(state.catalog, sweep_id, job.id)
    return job.id, position


async def submit_sweep(state: AppState, caller: Caller, body: sweep_schemas.SweepRequest) -> dict:
    """Record a sweep and start its ``lab.sweep`` job (also ``/ai/execute``'s run_sweep)."""
    try:
        row, warnings = sweeps.create_sweep(
            state.catalog, caller.id, caller.tier, model_id=body.model_id, sweep=body.sweep,
            risk_profile=body.risk_profile, tag=body.tag, matrix_sha=body.matrix_sha, start_date=body.start_date,
            end_date=body.end_date, chunk_size=body.chunk_size)
    except LookupError:
        raise not_found("model", body.model_id) from None
    except sweeps.SweepQuotaExceeded as exc:
        raise ApiError(429, "RATE_LIMITED", str(exc), field="model_id") from None
    job_id, position = await submit_sweep_job(state, caller, row.id, row.total_configs)
    return {
        "sweep_id": row.id, "total_configs": row.total_configs, "status": "running" if position == 0 else "queued",
        "progress": 0, "tag": row.tag, "model_id": body.model_id, "risk_profile": row.risk_profile,
        "job_id": job_id, "queue_position": position, "warnings": warnings,
    }
