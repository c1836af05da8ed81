"""Sweeps as a service: the grid a request names, the sweep row, its chunks and rows, resume.

A sweep request (``POST /backtest_sweep``) becomes a ``Sweep`` row and one ``lab.sweep`` job
(the Tune driver in :mod:`tuning.sweep`, reached by its job kind's name). Durability: a trial
stores its chunk itself, in one transaction (``SweepChunk`` row, one ``LeaderboardEntry`` per
configuration, ``done_configs`` incremented), before it reports; a crash keeps every finished
chunk and a resume computes only the rest. The deflated Sharpe ratio of every configuration
accounts for the number of configurations tried: chunks store a provisional value and
``finalize_sweep`` recomputes all of them across the whole sweep.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd
import ray
from sqlalchemy import JSON, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from cluster.artifacts import ArtifactStore
from cluster.catalog import Catalog, Job, LabModel, LeaderboardEntry, Matrix, Sweep, SweepChunk, get_catalog
from cluster.jobs import request_cancel
from cluster.webhooks import enqueue
from cluster.catalog.models import new_id, utcnow
from cluster.config import Settings
from compute.backtest import BacktestConfig, N_SESSION_CODES
from compute.backtest_nb import METRIC_NAMES
from compute.sweep import SweepArrays
from compute import packs as packs_mod
from services.lab import common, matrices, models
from services.lab.inputs import model_inputs
from services.lab.backtests import metrics_view
from services.lab.common import MAX_CONFIGS, LabInputError
from compute.jsonsafe import finite_or_none, json_safe
from services.lab.leaderboard import best_entry, entry_summary_of, rank_key
from services.lab.options import matrix_volatility

log = logging.getLogger("sigma.sweep")


#: Per user: (sweeps per day, sweeps at once); docs/spec/reference.md quotas, tiers may raise them.
SWEEP_QUOTAS = {"free": (10, 2), "basic": (10, 2), "pro": (10, 2), "enterprise": (100, 4)}


#: Work per chunk (configurations x bars): about a quarter of a second of kernel time, so a
#: chunk is worth a trial yet a crash loses little.
CHUNK_BAR_CONFIGS = 25_000_000

MIN_CHUNK, MAX_CHUNK = 16, 10_000

GRID_KEYS = ("thresholds", "exit_thresholds", "top_pct", "allowed_hours", "long_only", "fees_bps", "slippage_bps")

SCALAR_KEYS = ("splits", "embargo")

FINAL = ("completed", "failed", "cancelled")

DAILY_BAR_HOUR = 9  # daily bars carry the session-open hour


class SweepQuotaExceeded(Exception):
    pass


def sweep_quota(tier: str) -> tuple[int, int]:
    return SWEEP_QUOTAS.get(tier, SWEEP_QUOTAS["free"])


def _number_list(value, field: str, *, lo: float, hi: float, integer: bool = False) -> list:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise LabInputError(field, "must not be empty")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise LabInputError(field, f"{v!r} is not a number")
        if integer and int(v) != v:
            raise LabInputError(field, f"{v!r} is not an integer")
        if not lo <= v <= hi:
            raise LabInputError(field, f"{v!r} is outside [{lo:g}, {hi:g}]")
        out.append(int(v) if integer else float(v))
    return list(dict.fromkeys(out))


def _hour_sets(value) -> list:
    if value is None:
        return [None]
    if not isinstance(value, (list, tuple)) or not value:
        raise LabInputError("sweep.allowed_hours", "must be a list of hour lists, e.g. [[9,10,11],[13,14,15]]")
    if all(isinstance(h, int) and not isinstance(h, bool) for h in value):
        value = [value]  # a flat list is one hour set
    sets = []
    for h in value:
        if h is None:
            key = None
        else:
            if not isinstance(h, (list, tuple)) or not h:
                raise LabInputError("sweep.allowed_hours", f"{h!r} is not a non-empty list of hours")
            key = tuple(sorted(set(_number_list(list(h), "sweep.allowed_hours", lo=0, hi=N_SESSION_CODES - 1,
                                                integer=True))))
        if key not in sets:
            sets.append(key)
    return [None if s is None else list(s) for s in sets]


def parse_sweep_spec(sweep: Mapping[str, Any] | None) -> dict:
    """Validate the request's ``sweep`` object; returns the normalised grid spec (JSON-able).

    Grid dimensions (each a list, or one value): ``thresholds`` (entry score cut-offs in
    [0, 1]), ``exit_thresholds`` (exit cut-offs <= the entry), ``top_pct`` (fractions 0.05 or
    percent 5 -- values >= 1 are percent; within (0, 50 %]), ``allowed_hours`` (a list of
    hour lists, ``null`` = every hour), ``long_only`` (booleans), ``fees_bps`` and
    ``slippage_bps`` (one-way, default the risk profile's). Scalars: ``splits`` (walk-forward
    folds, default 5) and ``embargo`` (bars).
    """
    if sweep is None or not isinstance(sweep, Mapping):
        raise LabInputError("sweep", "must be an object such as {\"thresholds\": [0.55, 0.6]}")
    if "strategy" in sweep:
        return _strategy_spec(sweep)
    for key in sweep:
        if key not in GRID_KEYS + SCALAR_KEYS:
            raise LabInputError(f"sweep.{key}", f"unknown sweep parameter; expected one of {list(GRID_KEYS + SCALAR_KEYS)}")
    spec: dict[str, Any] = {}
    if sweep.get("thresholds") is not None:
        spec["thresholds"] = _number_list(sweep["thresholds"], "sweep.thresholds", lo=0.0, hi=1.0)
    if sweep.get("exit_thresholds") is not None:
        if "thresholds" not in spec:
            raise LabInputError("sweep.exit_thresholds", "needs thresholds")
        spec["exit_thresholds"] = _number_list(sweep["exit_thresholds"], "sweep.exit_thresholds", lo=0.0, hi=1.0)
    if sweep.get("top_pct") is not None:
        raw = _number_list(sweep["top_pct"], "sweep.top_pct", lo=1e-9, hi=50.0)
        pcts = [p / 100.0 if p >= 1.0 else p for p in raw]
        for p, r in zip(pcts, raw):
            if not 0.0 < p <= 0.5:
                raise LabInputError("sweep.top_pct", f"{r!r} is not within (0, 50 %] (write 0.1 or 10 for 10 %)")
        spec["top_pct"] = list(dict.fromkeys(pcts))
    if "thresholds" not in spec and "top_pct" not in spec:
        raise LabInputError("sweep", "a sweep needs thresholds and/or top_pct values")
    spec["allowed_hours"] = _hour_sets(sweep.get("allowed_hours"))
    if sweep.get("long_only") is not None:
        values = sweep["long_only"] if isinstance(sweep["long_only"], list) else [sweep["long_only"]]
        if not values or any(not isinstance(v, bool) for v in values):
            raise LabInputError("sweep.long_only", "must be true, false or a list of them")
        spec["long_only"] = list(dict.fromkeys(values))
    for key in ("fees_bps", "slippage_bps"):
        if sweep.get(key) is not None:
            spec[key] = _number_list(sweep[key], f"sweep.{key}", lo=0.0, hi=1000.0)
    for key, lo, hi in (("splits", 1, 20), ("embargo", 0, 500)):
        value = sweep.get(key)
        if value is not None:
            if isinstance(value, (list, tuple)):
                raise LabInputError(f"sweep.{key}", "is not sweepable (it changes the walk-forward inputs); give one integer")
            spec[key] = _number_list(value, f"sweep.{key}", lo=lo, hi=hi, integer=True)[0]
    return spec


def _strategy_spec(sweep: Mapping[str, Any]) -> dict:
    """``{"strategy": {"name", "grid": {param: [values]}}, "long_only"?}``: a sweep of a built-in
    strategy's parameters (``compute.strategies``); unlisted parameters take their defaults."""
    from compute.strategies import StrategyError, strategy_grid

    for key in sweep:
        if key not in ("strategy", "long_only"):
            raise LabInputError(f"sweep.{key}", "a strategy sweep takes strategy {name, grid} and long_only")
    strategy = sweep["strategy"]
    if not isinstance(strategy, Mapping) or set(strategy) - {"name", "grid"}:
        raise LabInputError("sweep.strategy", "must be an object {name, grid: {parameter: [values]}}")
    grid = strategy.get("grid") or {}
    if not isinstance(grid, Mapping):
        raise LabInputError("sweep.strategy.grid", "must be an object {parameter: [values]}")
    long_only = sweep.get("long_only", False)
    if not isinstance(long_only, bool):
        raise LabInputError("sweep.long_only", "must be true or false")
    grid = {k: (list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in grid.items()}
    product = math.prod(len(v) for v in grid.values()) if grid else 1
    if product > MAX_CONFIGS:
        raise LabInputError("sweep.strategy.grid", f"{product} combinations; at most {MAX_CONFIGS} per sweep")
    try:
        n = len(strategy_grid(str(strategy.get("name")), grid, long_only))
    except StrategyError as exc:
        field = exc.field
        if field.startswith("strategy.params."):
            field = "strategy.grid." + field[len("strategy.params."):]
        elif field.startswith("grid"):
            field = "strategy." + field
        raise LabInputError("sweep." + field, exc.reason) from None
    return {"strategy": {"name": str(strategy["name"]), "grid": grid}, "long_only": long_only, "n_configs": n}


def count_configs(spec: Mapping[str, Any]) -> int:
    """Configurations in a grid spec, without building it (``compute.sweep.make_grid``'s rules)."""
    if "strategy" in spec:
        return int(spec["n_configs"])
    thresholds = spec.get("thresholds") or []
    pcts = spec.get("top_pct") or []
    if thresholds:
        exits = spec.get("exit_thresholds")
        per_threshold = [len([x for x in exits if x <= v]) if exits else 1 for v in thresholds]
        signals = sum(per_threshold) * max(1, len(pcts))
    else:
        signals = len(pcts)
    n = signals * len(spec.get("allowed_hours") or [None])
    for key in ("long_only", "fees_bps", "slippage_bps"):
        n *= len(spec.get(key) or [None])
    return int(n)


def build_grid(spec: Mapping[str, Any], base: BacktestConfig):
    if "strategy" in spec:
        from dataclasses import replace

        from compute.strategies import StrategyGrid, strategy_grid

        return StrategyGrid(strategy_grid(spec["strategy"]["name"], spec["strategy"]["grid"], spec["long_only"]),
                            replace(base, long_only=bool(spec["long_only"])))
    return _build_threshold_grid(spec, base)


def _build_threshold_grid(spec: Mapping[str, Any], base: BacktestConfig):
    """The ``compute.sweep.SweepGrid`` of a normalised spec; fees/slippage default to ``base``'s."""
    from compute.sweep import make_grid

    try:
        return make_grid(
            thresholds=spec.get("thresholds") or (),
            top_pct=spec.get("top_pct") or (),
            exit_thresholds=spec.get("exit_thresholds"),
            allowed_hours=[None if h is None else tuple(h) for h in spec.get("allowed_hours") or [None]],
            fees_bps=spec.get("fees_bps"),
            slippage_bps=spec.get("slippage_bps"),
            long_only=spec.get("long_only") or (False,),
            base=base,
        )
    except ValueError as exc:
        raise LabInputError("sweep", str(exc)) from None


def hour_warnings(spec: Mapping[str, Any], cadence: str) -> list[str]:
    """Hour sets that admit no bar of the model's cadence (their configurations cannot trade)."""
    if cadence != "daily":
        return []
    return [f"allowed_hours {h} admits no daily bar (daily bars carry hour {DAILY_BAR_HOUR}): "
            "these configurations cannot trade"
            for h in spec.get("allowed_hours") or [] if h is not None and DAILY_BAR_HOUR not in h]


def chunk_size_for(n_bars: int, requested: Optional[int] = None) -> int:
    if requested:
        return int(requested)
    return int(min(MAX_CHUNK, max(MIN_CHUNK, CHUNK_BAR_CONFIGS // max(1, n_bars))))


def chunk_bounds(total: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk_size, total)) for start in range(0, total, chunk_size)]


def config_dict(grid, i: int, splits: int, embargo: Optional[int]) -> dict:
    """Configuration ``i`` in the shape of a ``POST /backtest`` config (plus costs)."""
    from compute.sweep import KIND_THRESHOLDS

    kind = "thresholds" if int(grid.kind[i]) == KIND_THRESHOLDS else "top_pct"
    value = float(grid.value[i])
    hours = grid.hour_sets[int(grid.hours_id[i])]
    out = {
        "kind": kind,
        "value": value,
        "exit_value": None if np.isnan(grid.exit_value[i]) else float(grid.exit_value[i]),
        "top_pct": None if np.isnan(grid.top_pct[i]) else float(grid.top_pct[i]),
        "long_only": bool(grid.long_only[i]),
        "allowed_hours": None if hours is None else list(hours),
        "fees_bps": float(grid.fees_bps[i]),
        "slippage_bps": float(grid.slippage_bps[i]),
        "splits": splits,
        "embargo": embargo,
    }
    if kind == "thresholds":
        out["threshold"] = value  # the spec's leaderboard name
    return out


@dataclass
class SweepMeta:
    """What a trial needs to store its chunk."""

    sweep_id: str
    user_id: int
    model_pk: int
    model_id: str
    pack_id: str
    tag: Optional[str]
    risk_profile: str
    n_trials: int
    splits: int
    embargo: Optional[int]
    settings_json: str
    job_id: Optional[str] = None


def chunk_rows(arrays: SweepArrays, meta: SweepMeta, grid, start: int, result, fold_std) -> list[dict]:
    """Leaderboard rows (column dicts) of an evaluated chunk: metrics, gate, ranking score,
    provisional deflated Sharpe."""
    from compute.gates import evaluate_gate, ranking_score, resolve_pack

    pack = resolve_pack(meta.pack_id)
    dsr = result.deflated_sharpe(n_trials=meta.n_trials)
    columns = {name: result.metrics[name] for name in METRIC_NAMES}
    now = utcnow()
    rows = []
    for j in range(len(result)):
        raw = {name: float(columns[name][j]) for name in METRIC_NAMES}
        if fold_std is not None:
            raw["fold_sharpe_std"] = float(fold_std[j])
        cfg = grid.config(j) if hasattr(grid, "strategies") else config_dict(grid, j, meta.splits, meta.embargo)
        gate = evaluate_gate(pack, meta.risk_profile, raw, cfg)
        score = ranking_score(pack, raw)
        metrics = metrics_view(raw)
        rows.append({
            "id": new_id("res"), "user_id": meta.user_id, "model_pk": meta.model_pk, "model_id": meta.model_id,
            "pack_id": meta.pack_id, "backtest_id": None, "sweep_id": meta.sweep_id, "config_index": start + j,
            "tag": meta.tag, "risk_profile": meta.risk_profile, "config": json_safe(cfg), "metrics": metrics,
            "gate_pass": bool(gate["pass"]), "gate_reasons": list(gate["reasons"]),
            "score": finite_or_none(score), "sharpe": metrics.get("sharpe"), "deflated_sharpe": finite_or_none(dsr[j]),
            "cum_ret": metrics.get("cum_ret"), "max_drawdown": metrics.get("max_drawdown"),
            "win_rate": metrics.get("win_rate"),
            "trades": None if metrics.get("trades") is None else int(metrics["trades"]), "created_at": now,
        })
    return rows


def store_chunk(catalog: Catalog, meta: SweepMeta, chunk_index: int, rows: list[dict], duration_ms: float) -> bool:
    """One transaction: the chunk marker, its leaderboard rows, the sweep's progress and best.

    Returns False when the chunk was already stored (a retried trial): nothing is written twice.
    The rows go in with PostgreSQL's ``COPY`` (a multi-row insert elsewhere), and the sweep's
    best is the better of the stored best and this chunk's own (the leaderboard's order), so a
    chunk costs the same at the end of a large sweep as at its start; the sweep's row is locked
    only for that last update (``finalize_sweep`` ranks every row once more at the end).
    """
    try:
        with catalog.session() as s:
            if s.get(SweepChunk, (meta.sweep_id, chunk_index)) is not None:
                return False
            s.add(SweepChunk(sweep_id=meta.sweep_id, chunk_index=chunk_index, n_configs=len(rows),
                             duration_ms=float(duration_ms)))
            s.flush()
            if rows:
                insert_entries(s, rows)
            # FOR NO KEY UPDATE: the rows just inserted hold KEY SHARE on the sweep (their foreign
            # key), as a concurrent writer's do; FOR UPDATE would conflict with those (deadlock)
            # (SQLAlchemy spells FOR NO KEY UPDATE ``key_share=True``)
            current = s.scalar(select(Sweep.best).where(Sweep.id == meta.sweep_id).with_for_update(key_share=True))
            values: dict = {"done_configs": Sweep.done_configs + len(rows)}
            candidate = min(rows, key=rank_key, default=None)
            if candidate is not None and (current is None or rank_key(candidate) < rank_key(current)):
                values["best"] = entry_summary_of(candidate)
            s.execute(update(Sweep).where(Sweep.id == meta.sweep_id).values(**values))
    except IntegrityError:
        return False
    return True


def insert_entries(s, rows: list[dict]) -> None:
    """Insert leaderboard rows (dicts of its columns) in the session's transaction: ``COPY`` on
    PostgreSQL (each value through the column type's own bind processing, so JSON and time
    stamps are stored exactly as an ``INSERT`` stores them), a multi-row insert elsewhere."""
    connection = s.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql":
        s.execute(insert(LeaderboardEntry), rows)
        return
    import psycopg  # PostgreSQL only

    columns = [c for c in LeaderboardEntry.__table__.columns if c.name in rows[0]]
    dumps = dialect._json_serializer or json.dumps  # JSON as the engine writes it (psycopg adapts it itself)
    processors = [dumps if isinstance(c.type, JSON) else c.type.bind_processor(dialect) for c in columns]
    driver = connection.connection.driver_connection
    statement = f"COPY {LeaderboardEntry.__tablename__} ({', '.join(c.name for c in columns)}) FROM STDIN"
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([value if process is None else process(value)
                                for process, value in zip(processors, (row[c.name] for c in columns))])
    except psycopg.errors.IntegrityError as exc:  # the same exception an INSERT would raise
        raise IntegrityError(statement, None, exc) from exc


def sweeps_last_day(catalog: Catalog, user_id: int) -> int:
    since = utcnow() - dt.timedelta(days=1)
    with catalog.session() as s:
        return int(s.scalar(select(func.count()).select_from(Sweep)
                            .where(Sweep.user_id == user_id, Sweep.created_at >= since)) or 0)


def create_sweep(catalog: Catalog, user_id: int, tier: str, *, model_id: str, sweep: Mapping[str, Any] | None,
                 risk_profile: Optional[str] = None, tag: Optional[str] = None, matrix_sha: Optional[str] = None,
                 start_date=None, end_date=None, chunk_size: Optional[int] = None) -> tuple[Sweep, list[str]]:
    """Validate a sweep request and record it (status queued); returns it and warnings.

    ``LookupError`` for a model that is not the user's, ``LabInputError``/``LabInputError``
    for bad input, ``SweepQuotaExceeded`` over the daily quota.
    """
    from compute import packs

    model = models.get_model(catalog, user_id, model_id)
    if sweep is None or (isinstance(sweep, Mapping) and not sweep):
        # omitted or {}: the pack's default grid (docs/spec/reference.md "Sweep defaults")
        sweep = packs.get_pack(model.pack_id).sweep.to_dict()
    spec = parse_sweep_spec(sweep)
    total = count_configs(spec)
    if total > MAX_CONFIGS:
        raise LabInputError("sweep", f"{total} configurations; at most {MAX_CONFIGS} per sweep")
    profile = risk_profile or model.risk_profile
    if profile not in packs.RISK_PROFILES:
        raise LabInputError("risk_profile", f"must be one of {list(packs.RISK_PROFILES)}")
    if tag is not None and (not isinstance(tag, str) or not 1 <= len(tag) <= 80):
        raise LabInputError("tag", "must be a string of 1 to 80 characters")
    if chunk_size is not None and not 1 <= int(chunk_size) <= MAX_CHUNK:
        raise LabInputError("chunk_size", f"must be between 1 and {MAX_CHUNK}")
    try:
        matrix = matrices.get_matrix(catalog, model.id, matrix_sha)
    except LookupError as exc:
        raise LabInputError("matrix_sha", f"{exc}; build a matrix first (POST /build_matrix)") from None
    start = common.parse_date(start_date, "start_date").isoformat() if start_date else None
    end = common.parse_date(end_date, "end_date").isoformat() if end_date else None
    if start and end and start > end:
        raise LabInputError("end_date", "must not be before start_date")
    per_day, _ = sweep_quota(tier)
    if sweeps_last_day(catalog, user_id) >= per_day:
        raise SweepQuotaExceeded(f"sweep quota reached: {per_day} sweeps a day for the {tier} tier")
    pack = packs.get_pack(model.pack_id)
    warnings = hour_warnings(spec, pack.cadence)
    grid_doc = {"spec": spec, "matrix_sha": matrix.matrix_sha, "start_date": start, "end_date": end,
                "chunk_size": int(chunk_size) if chunk_size else None, "runs": []}
    with catalog.session() as s:
        row = Sweep(user_id=user_id, model_pk=model.id, risk_profile=profile, tag=tag, grid=grid_doc,
                    total_configs=total, done_configs=0, status="queued")
        s.add(row)
        s.flush()
        return row, warnings


def attach_job(catalog: Catalog, sweep_id: str, job_id: str) -> None:
    with catalog.session() as s:
        s.execute(update(Sweep).where(Sweep.id == sweep_id).values(job_id=job_id))


def get_sweep(catalog: Catalog, user_id: int, sweep_id: str) -> tuple[Sweep, str]:
    """The user's sweep (reconciled with its job) and its model id; ``LookupError`` otherwise."""
    with catalog.session() as s:
        row = s.execute(select(Sweep, LabModel.model_id).join(LabModel, LabModel.id == Sweep.model_pk)
                        .where(Sweep.id == sweep_id, Sweep.user_id == user_id)).first()
        if row is None:
            raise LookupError(f"sweep {sweep_id} not found")
        sweep, model_id = row
        if sweep.status not in FINAL and sweep.job_id:
            job = s.get(Job, sweep.job_id)
            # The driver died (killed worker, restart): the job says so, the sweep follows.
            if job is not None and job.status in ("failed", "cancelled"):
                sweep.status = job.status
                sweep.finished_at = sweep.finished_at or job.finished_at or utcnow()
                if job.status == "failed":
                    message = (job.error or {}).get("message", "the sweep's job failed")
                    sweep.error = f"{message}; finished chunks are kept: POST /backtest_sweep/{sweep_id}/resume"
        return sweep, model_id


def sweep_view(sweep: Sweep, model_id: str, *, queue_position: Optional[int] = None) -> dict:
    done, total = int(sweep.done_configs or 0), int(sweep.total_configs)
    eta = None
    runs = (sweep.grid or {}).get("runs") or []
    if sweep.status == "running" and sweep.started_at and runs:
        done_here = done - int(runs[-1].get("done_at_start", 0))
        elapsed = (utcnow() - sweep.started_at).total_seconds()
        if done_here > 0:
            eta = round(elapsed / done_here * (total - done), 2)
    out = {
        "sweep_id": sweep.id,
        "model_id": model_id,
        "tag": sweep.tag,
        "risk_profile": sweep.risk_profile,
        "status": sweep.status,
        "total_configs": total,
        "done_configs": done,
        "progress": round(done / total, 4) if total else 1.0,
        "best": sweep.best,
        "eta_seconds": eta,
        "grid": (sweep.grid or {}).get("spec"),
        "matrix_sha": (sweep.grid or {}).get("matrix_sha"),
        "job_id": sweep.job_id,
        "error": sweep.error,
        "created_at": sweep.created_at.isoformat() if sweep.created_at else None,
        "started_at": sweep.started_at.isoformat() if sweep.started_at else None,
        "finished_at": sweep.finished_at.isoformat() if sweep.finished_at else None,
        "leaderboard_url": f"/api/v1/leaderboard?sweep_id={sweep.id}",
    }
    if queue_position is not None:
        out["queue_position"] = queue_position
    return out


def list_sweeps(catalog: Catalog, user_id: int, *, limit: int = 50, offset: int = 0) -> list[tuple[Sweep, str]]:
    with catalog.session() as s:
        return [tuple(r) for r in s.execute(
            select(Sweep, LabModel.model_id).join(LabModel, LabModel.id == Sweep.model_pk)
            .where(Sweep.user_id == user_id).order_by(Sweep.created_at.desc()).limit(limit).offset(offset)).all()]


def cancel_sweep(catalog: Catalog, user_id: int, sweep_id: str) -> Sweep:
    """Stop a sweep: its job is marked cancelled (the driver and trials poll it); finished
    chunks stay. ``ValueError`` when it already finished."""

    sweep, _ = get_sweep(catalog, user_id, sweep_id)
    if sweep.status in ("completed", "failed"):
        raise ValueError(f"sweep {sweep_id} already {sweep.status}; nothing to cancel")
    if sweep.job_id:
        request_cancel(catalog, sweep.job_id)
    with catalog.session() as s:
        s.execute(update(Sweep).where(Sweep.id == sweep_id, Sweep.status.in_(("queued", "running")))
                  .values(status="cancelled", finished_at=utcnow()))
    return get_sweep(catalog, user_id, sweep_id)[0]


def prepare_resume(catalog: Catalog, user_id: int, sweep_id: str) -> Sweep:
    """Put an interrupted (failed or cancelled) sweep back in the queue; ``ValueError`` if it
    is running or complete."""
    sweep, _ = get_sweep(catalog, user_id, sweep_id)
    if sweep.status in ("queued", "running"):
        raise ValueError(f"sweep {sweep_id} is {sweep.status}; it does not need resuming")
    if sweep.status == "completed":
        raise ValueError(f"sweep {sweep_id} is complete")
    with catalog.session() as s:
        s.execute(update(Sweep).where(Sweep.id == sweep_id).values(status="queued", error=None, finished_at=None, job_id=None))
    return get_sweep(catalog, user_id, sweep_id)[0]


def finalize_sweep(catalog: Catalog, sweep_id: str, periods_per_year: Optional[float], status: str,
                   job_id: Optional[str] = None) -> dict:
    """Deflated Sharpe of every stored configuration for the number of configurations tried
    (the variance of their Sharpe ratios across the whole sweep), the best configuration,
    the recounted progress and the final status. ``periods_per_year`` None (a run cancelled
    before its inputs were ready) keeps the stored chunks' provisional values.

    With ``job_id`` (the driver's job), a sweep that has moved on to another job (cancelled,
    then resumed while this driver was still winding down) is left to that job's driver:
    nothing is written and the summary says ``superseded``."""
    from compute import stats

    with catalog.session() as s:
        current = s.get(Sweep, sweep_id)
        if job_id is not None and current is not None and current.job_id != job_id:
            return {"status": current.status, "superseded": True, "done_configs": current.done_configs,
                    "total_configs": current.total_configs, "best": current.best, "tag": current.tag}
        rows = s.execute(select(LeaderboardEntry.id, LeaderboardEntry.sharpe, LeaderboardEntry.metrics)
                         .where(LeaderboardEntry.sweep_id == sweep_id)).all()
        n = len(rows)
        if n and periods_per_year is not None:
            sharpe = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=np.float64)

            def col(name):
                return np.array([np.nan if (r[2] or {}).get(name) is None else r[2][name] for r in rows],
                                dtype=np.float64)

            finite = np.isfinite(sharpe)
            variance = float(np.var(sharpe[finite], ddof=1)) if finite.sum() >= 2 else 0.0
            dsr = stats.deflated_sharpe_ratio(sharpe, n, col("n_bars"), col("skew"), col("kurtosis"), variance,
                                              periods_per_year=periods_per_year)
            dsr = np.atleast_1d(dsr)
            s.execute(update(LeaderboardEntry), [{"id": r[0], "deflated_sharpe": finite_or_none(d)} for r, d in zip(rows, dsr)])
        done = int(s.scalar(select(func.coalesce(func.sum(SweepChunk.n_configs), 0))
                            .where(SweepChunk.sweep_id == sweep_id)) or 0)
        sweep = s.get(Sweep, sweep_id)
        sweep.done_configs = done
        sweep.best = best_entry(s, sweep_id)
        if sweep.status != "cancelled":
            sweep.status = status
        sweep.finished_at = utcnow()
        return {"status": sweep.status, "done_configs": done, "total_configs": sweep.total_configs,
                "best": sweep.best, "tag": sweep.tag, "n_trials_for_dsr": n}


def sweep_arrays(inputs) -> SweepArrays:
    """The read-only arrays a sweep's chunks share, from a model's walk-forward inputs."""
    options = {}
    if inputs.is_options:
        stamps = pd.DatetimeIndex(inputs.timestamps)
        stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
        sigma, _ = matrix_volatility(inputs.matrix, float(inputs.periods_per_year))
        options = {"timestamps": np.ascontiguousarray(stamps.asi8, dtype=np.int64),
                   "implied_vol": np.ascontiguousarray(sigma[inputs.first:], dtype=np.float64),
                   "ticker": str(inputs.matrix["ticker"].iloc[inputs.first])}
    return SweepArrays(
        open=np.ascontiguousarray(inputs.open, dtype=np.float64),
        close=np.ascontiguousarray(inputs.close, dtype=np.float64),
        score=np.ascontiguousarray(inputs.scores, dtype=np.float64),
        hours=np.ascontiguousarray(inputs.hour, dtype=np.int64),
        segments=np.ascontiguousarray(inputs.segments, dtype=np.int64),
        train_scores=[np.asarray(t, dtype=np.float64) for t in inputs.train_scores],
        periods_per_year=float(inputs.periods_per_year),
        fees_bps=float(inputs.fees_bps), slippage_bps=float(inputs.slippage_bps),
        pack_id=inputs.pack.pack_id, cadence=inputs.pack.cadence, **options,
    )


def sweep_inputs(settings_json: str, user_id: int, model_id: str, doc: dict, risk_profile: str, total: int) -> dict:
    """The shared inputs of a sweep: ``{"arrays": SweepArrays, "grid": SweepGrid, "seconds"}``,
    or ``{"error": {"message", "code", "field"}}`` for input the model's data cannot satisfy.

    Runs as a Ray task (``sweep_inputs_task``) next to the Tune driver: the walk-forward inputs
    (fold models, out-of-sample scores; cached in the artifact store) are computed while the
    trials' actors start."""
    started = time.perf_counter()
    settings = Settings.model_validate_json(settings_json)
    spec = doc["spec"]
    try:
        if "strategy" in spec:
            arrays = strategy_arrays(get_catalog(settings), ArtifactStore(settings.resolved_storage_url), user_id,
                                     model_id, doc, risk_profile)
            grid = build_grid(spec, arrays.base_config())
            if len(grid) != total:
                return {"error": {"message": f"grid has {len(grid)} configurations, expected {total}",
                                  "code": "CALCULATION_ERROR", "field": None}}
            return {"arrays": arrays, "grid": grid, "seconds": round(time.perf_counter() - started, 3)}
        inputs = model_inputs(
            get_catalog(settings), ArtifactStore(settings.resolved_storage_url), user_id, model_id,
            doc.get("matrix_sha"), start_date=doc.get("start_date"), end_date=doc.get("end_date"),
            n_splits=spec.get("splits") or common.DEFAULT_SPLITS, embargo=spec.get("embargo"),
            risk_profile=risk_profile, allowed_modules=settings.model_modules)
        arrays = sweep_arrays(inputs)
        grid = build_grid(spec, arrays.base_config())
    except LabInputError as exc:
        return {"error": {"message": str(exc), "code": "INVALID_PARAMETER", "field": exc.field}}
    except LookupError as exc:
        return {"error": {"message": str(exc), "code": "NOT_FOUND", "field": None}}
    if len(grid) != total:
        return {"error": {"message": f"grid has {len(grid)} configurations, expected {total}",
                          "code": "CALCULATION_ERROR", "field": None}}
    return {"arrays": arrays, "grid": grid, "seconds": round(time.perf_counter() - started, 3)}


sweep_inputs_task = ray.remote(max_retries=0)(sweep_inputs)


def strategy_arrays(catalog: Catalog, store: ArtifactStore, user_id: int, model_id: str, doc: dict,
                    risk_profile: str) -> SweepArrays:
    """The bars a strategy sweep trades: the model's matrix rows in the date range (no
    walk-forward: strategies fit nothing), with the risk profile's costs."""
    from services.lab import sources
    from services.lab.inputs import bars_per_year

    model = models.get_model(catalog, user_id, model_id)
    pack = packs_mod.get_pack(model.pack_id)
    try:
        row = matrices.get_matrix(catalog, model.id, doc.get("matrix_sha"))
    except LookupError as exc:
        raise LabInputError("matrix_sha", str(exc)) from None
    frame = matrices.load_matrix(store, row)
    bars = sources._bars(frame, {"start_date": doc.get("start_date"), "end_date": doc.get("end_date")})
    policy = pack.policy(risk_profile)
    n = len(bars)
    col = lambda name: np.ascontiguousarray(bars[name].to_numpy(np.float64))  # noqa: E731
    return SweepArrays(open=col("open"), close=col("close"), score=np.zeros(n), hours=np.ones(n, dtype=np.int64) * 0,
                       segments=np.zeros(n, dtype=np.int64), train_scores=[], periods_per_year=bars_per_year(frame, pack.cadence),
                       fees_bps=float(policy.fees_bps), slippage_bps=float(policy.slippage_bps), pack_id=pack.pack_id,
                       cadence=pack.cadence, high=col("high"), low=col("low"))


def chunk_plan(catalog: Catalog, sweep_id: str, model_pk: int, doc: dict, total: int) -> int:
    """The sweep's chunk size, fixed at its first run (a resume must cut the grid the same way).

    Planned before the inputs exist, from the matrix's row count: an upper bound on the
    out-of-sample bars, so a chunk is never more work than ``CHUNK_BAR_CONFIGS``."""

    if doc.get("plan_chunk_size"):
        return int(doc["plan_chunk_size"])
    with catalog.session() as s:
        query = select(Matrix.rows).where(Matrix.model_pk == model_pk)
        if doc.get("matrix_sha"):
            query = query.where(Matrix.matrix_sha == doc["matrix_sha"])
        rows = s.scalar(query.order_by(Matrix.created_at.desc()).limit(1)) or 1
        size = chunk_size_for(int(rows), doc.get("chunk_size"))
        sweep = s.get(Sweep, sweep_id)
        sweep.grid = {**dict(sweep.grid or {}), "plan_chunk_size": size}
    return size


def emit_sweep_event(catalog: Catalog, user_id: int, summary: dict) -> None:
    try:

        enqueue(catalog, user_id, "sweep.completed", {
            "sweep_id": summary["sweep_id"], "model_id": summary["model_id"], "tag": summary.get("tag"),
            "status": "success" if summary["status"] == "completed" else summary["status"],
            "total_configs": summary["total_configs"], "done_configs": summary["done_configs"],
            "best": summary.get("best"),
        })
    except Exception:  # noqa: BLE001 - a delivery problem never undoes the sweep
        log.exception("could not enqueue sweep.completed for %s", summary.get("sweep_id"))


#: The configuration axes of a sweep's grid table, then its metric columns.
GRID_AXES = ("kind", "value", "exit_value", "top_pct", "long_only", "allowed_hours", "fees_bps", "slippage_bps")
GRID_METRICS = ("sharpe", "deflated_sharpe", "sortino", "cum_ret", "annual_return", "annual_volatility", "max_drawdown",
                "win_rate", "trades", "es95", "turnover", "calmar", "score", "gate_pass")


def sweep_grid(catalog: Catalog, user_id: int, sweep_id: str) -> pd.DataFrame:
    """A sweep's stored configurations as a table, one row per configuration (by
    ``config_index``): the grid axes (``allowed_hours`` as text, e.g. ``"10,11"``), then a
    strategy sweep's own parameters (``window``, ``entry``, ...; a name taken by a column
    already gets a ``param_`` prefix), then the metrics, for heatmaps over any two axes
    (``grid_axes``). ``LookupError`` for another user's sweep."""
    get_sweep(catalog, user_id, sweep_id)
    reserved = {"config_index", *GRID_AXES, *GRID_METRICS}
    params: dict[str, str] = {}  # a strategy parameter -> its column, in first-seen order
    with catalog.session() as s:
        rows = s.execute(select(LeaderboardEntry).where(LeaderboardEntry.sweep_id == sweep_id)
                         .order_by(LeaderboardEntry.config_index)).scalars().all()
        records = []
        for row in rows:
            cfg, metrics = row.config or {}, row.metrics or {}
            rec = {"config_index": row.config_index}
            for axis in GRID_AXES:
                value = cfg.get(axis)
                rec[axis] = ",".join(str(h) for h in value) if axis == "allowed_hours" and value is not None else value
            strategy = cfg.get("strategy") if isinstance(cfg.get("strategy"), dict) else {}
            for name, value in (strategy.get("params") or {}).items():
                column = params.setdefault(name, f"param_{name}" if name in reserved else name)
                rec[column] = value
            for name in GRID_METRICS:
                rec[name] = {"score": row.score, "gate_pass": row.gate_pass,
                             "deflated_sharpe": row.deflated_sharpe}.get(name, metrics.get(name))
            records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=["config_index", *GRID_AXES, *params.values(), *GRID_METRICS])
    for name in ("value", "exit_value", "top_pct", "fees_bps", "slippage_bps", *GRID_METRICS):
        if name not in ("gate_pass", "trades"):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    for column in params.values():  # numbers stay numbers (a heatmap orders its ticks by them)
        numeric = pd.to_numeric(frame[column], errors="coerce")
        if numeric.notna().sum() == frame[column].notna().sum():
            frame[column] = numeric
    return frame


def grid_axes(grid: pd.DataFrame) -> list[str]:
    """The axes of a ``sweep_grid`` table: the configuration columns (not the index, not metrics)."""
    return [c for c in grid.columns if c != "config_index" and c not in GRID_METRICS]


#: The heatmap's default axes, in order of preference, after a strategy sweep's own parameters.
HEATMAP_DEFAULT_AXES = ("value", "top_pct", "fees_bps", "exit_value", "slippage_bps", "allowed_hours", "kind",
                        "long_only")


def heatmap_axes(grid: pd.DataFrame, x: Optional[str] = None, y: Optional[str] = None) -> tuple[str, str]:
    """The two axes of a sweep's heatmap: those given, the rest chosen among the axes whose
    values vary (a strategy's own parameters first, then ``HEATMAP_DEFAULT_AXES``); ``value``
    and ``fees_bps`` when fewer vary."""
    axes = grid_axes(grid)
    params = [a for a in axes if a not in GRID_AXES]
    preferred = [*params, *HEATMAP_DEFAULT_AXES]
    varying = [a for a in preferred if a in axes and grid[a].nunique(dropna=True) > 1]
    for fallback in ("value", "fees_bps", *axes):
        if fallback not in varying:
            varying.append(fallback)
    if x is None:
        x = next(a for a in varying if a != y)
    if y is None:
        y = next(a for a in varying if a != x)
    return x, y
