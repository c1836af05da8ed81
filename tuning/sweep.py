"""Parameter sweeps on Ray Tune: a grid of backtest configurations in chunks.

A sweep request (``POST /backtest_sweep``) becomes a ``Sweep`` row and one ``lab.sweep`` job.
The job (the Tune *driver*) computes the model's walk-forward inputs once (fold models,
out-of-sample scores, training scores for ``top_pct`` cut-offs), cuts the grid into chunks
and runs one Tune trial per chunk. The shared, read-only inputs go into the Ray object
store once (``tune.with_parameters`` puts them there); every trial evaluates its whole chunk
in one numba call (``compute.sweep.run_sweep``) and reports once.

Durability: a trial stores its chunk itself, in one transaction (``SweepChunk`` row, one
``LeaderboardEntry`` per configuration, ``done_configs`` incremented), before it reports.
A crash (the driver, a trial's worker or the whole service) keeps every finished chunk;
``resume_sweep`` starts a new job that skips the stored chunks and computes only the rest.

The deflated Sharpe ratio of every configuration accounts for the number of configurations
tried: chunks store a provisional value (``n_trials`` = the whole grid, the variance of the
chunk's Sharpe ratios) and the final pass recomputes all of them with the variance across
every configuration of the sweep.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd
import ray
from sqlalchemy import func, insert, select, update

from cluster.catalog import Catalog, Job, LabModel, LeaderboardEntry, Sweep, SweepChunk, User
from cluster.catalog.models import new_id, utcnow
from cluster.config import Settings
from cluster.jobs import JobCancelled, JobContext, JobFailed
from compute.backtest import BacktestConfig, N_SESSION_CODES
from compute.backtest_nb import METRIC_NAMES

log = logging.getLogger("sigma.sweep")

JOB_KINDS = {"lab.sweep": "tuning.sweep:sweep_job"}

#: Per user: (sweeps per day, sweeps at once); REFERENCE.md quotas, tiers may raise them.
SWEEP_QUOTAS = {"free": (10, 2), "basic": (10, 2), "pro": (10, 2), "enterprise": (100, 4)}
MAX_CONFIGS = 200_000
#: Work per chunk (configurations x bars): about a quarter of a second of kernel time, so a
#: chunk is worth a trial yet a crash loses little.
CHUNK_BAR_CONFIGS = 25_000_000
MIN_CHUNK, MAX_CHUNK = 16, 10_000
#: CPUs reserved per trial. The kernel is ``prange``-parallel over configurations and uses
#: every core of its node anyway; the reservation only keeps Tune from over-packing a node.
TRIAL_CPUS = 0.5

GRID_KEYS = ("thresholds", "exit_thresholds", "top_pct", "allowed_hours", "long_only", "fees_bps", "slippage_bps")
SCALAR_KEYS = ("splits", "embargo")
FINAL = ("completed", "failed", "cancelled")
DAILY_BAR_HOUR = 9  # daily bars carry the session-open hour


class SweepInputError(ValueError):
    """Bad sweep input; ``field`` names the request field."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class SweepQuotaExceeded(Exception):
    pass


def sweep_quota(tier: str) -> tuple[int, int]:
    return SWEEP_QUOTAS.get(tier, SWEEP_QUOTAS["free"])


# ----------------------------------------------------------------- the grid

def _number_list(value, field: str, *, lo: float, hi: float, integer: bool = False) -> list:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise SweepInputError(field, "must not be empty")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SweepInputError(field, f"{v!r} is not a number")
        if integer and int(v) != v:
            raise SweepInputError(field, f"{v!r} is not an integer")
        if not lo <= v <= hi:
            raise SweepInputError(field, f"{v!r} is outside [{lo:g}, {hi:g}]")
        out.append(int(v) if integer else float(v))
    return list(dict.fromkeys(out))


def _hour_sets(value) -> list:
    if value is None:
        return [None]
    if not isinstance(value, (list, tuple)) or not value:
        raise SweepInputError("sweep.allowed_hours", "must be a list of hour lists, e.g. [[9,10,11],[13,14,15]]")
    if all(isinstance(h, int) and not isinstance(h, bool) for h in value):
        value = [value]  # a flat list is one hour set
    sets = []
    for h in value:
        if h is None:
            key = None
        else:
            if not isinstance(h, (list, tuple)) or not h:
                raise SweepInputError("sweep.allowed_hours", f"{h!r} is not a non-empty list of hours")
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
        raise SweepInputError("sweep", "must be an object such as {\"thresholds\": [0.55, 0.6]}")
    for key in sweep:
        if key not in GRID_KEYS + SCALAR_KEYS:
            raise SweepInputError(f"sweep.{key}", f"unknown sweep parameter; expected one of {list(GRID_KEYS + SCALAR_KEYS)}")
    spec: dict[str, Any] = {}
    if sweep.get("thresholds") is not None:
        spec["thresholds"] = _number_list(sweep["thresholds"], "sweep.thresholds", lo=0.0, hi=1.0)
    if sweep.get("exit_thresholds") is not None:
        if "thresholds" not in spec:
            raise SweepInputError("sweep.exit_thresholds", "needs thresholds")
        spec["exit_thresholds"] = _number_list(sweep["exit_thresholds"], "sweep.exit_thresholds", lo=0.0, hi=1.0)
    if sweep.get("top_pct") is not None:
        raw = _number_list(sweep["top_pct"], "sweep.top_pct", lo=1e-9, hi=50.0)
        pcts = [p / 100.0 if p >= 1.0 else p for p in raw]
        for p, r in zip(pcts, raw):
            if not 0.0 < p <= 0.5:
                raise SweepInputError("sweep.top_pct", f"{r!r} is not within (0, 50 %] (write 0.1 or 10 for 10 %)")
        spec["top_pct"] = list(dict.fromkeys(pcts))
    if "thresholds" not in spec and "top_pct" not in spec:
        raise SweepInputError("sweep", "a sweep needs thresholds and/or top_pct values")
    spec["allowed_hours"] = _hour_sets(sweep.get("allowed_hours"))
    if sweep.get("long_only") is not None:
        values = sweep["long_only"] if isinstance(sweep["long_only"], list) else [sweep["long_only"]]
        if not values or any(not isinstance(v, bool) for v in values):
            raise SweepInputError("sweep.long_only", "must be true, false or a list of them")
        spec["long_only"] = list(dict.fromkeys(values))
    for key in ("fees_bps", "slippage_bps"):
        if sweep.get(key) is not None:
            spec[key] = _number_list(sweep[key], f"sweep.{key}", lo=0.0, hi=1000.0)
    for key, lo, hi in (("splits", 1, 20), ("embargo", 0, 500)):
        value = sweep.get(key)
        if value is not None:
            if isinstance(value, (list, tuple)):
                raise SweepInputError(f"sweep.{key}", "is not sweepable (it changes the walk-forward inputs); give one integer")
            spec[key] = _number_list(value, f"sweep.{key}", lo=lo, hi=hi, integer=True)[0]
    return spec


def count_configs(spec: Mapping[str, Any]) -> int:
    """Configurations in a grid spec, without building it (``compute.sweep.make_grid``'s rules)."""
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
        raise SweepInputError("sweep", str(exc)) from None


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


# ----------------------------------------------------------------- shared inputs

@dataclass
class SweepArrays:
    """The read-only inputs every chunk shares (put in the Ray object store once)."""

    open: np.ndarray
    close: np.ndarray
    score: np.ndarray
    hours: np.ndarray
    segments: np.ndarray
    train_scores: list
    periods_per_year: float
    fees_bps: float
    slippage_bps: float
    pack_id: str
    cadence: str
    #: Options packs: bar starts (int64 ns, UTC), the implied vol known at each bar and the
    #: underlying's ticker (its listed strike grid); None for equity packs.
    timestamps: Optional[np.ndarray] = None
    implied_vol: Optional[np.ndarray] = None
    ticker: Optional[str] = None

    @property
    def n_bars(self) -> int:
        return int(self.close.shape[0])

    @classmethod
    def from_lab_inputs(cls, inputs) -> "SweepArrays":
        options = {}
        if inputs.is_options:
            from services.lab.options import matrix_volatility

            stamps = pd.DatetimeIndex(inputs.timestamps)
            stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
            sigma, _ = matrix_volatility(inputs.matrix, float(inputs.periods_per_year))
            options = {"timestamps": np.ascontiguousarray(stamps.asi8, dtype=np.int64),
                       "implied_vol": np.ascontiguousarray(sigma[inputs.first:], dtype=np.float64),
                       "ticker": str(inputs.matrix["ticker"].iloc[inputs.first])}
        return cls(
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

    def local_copy(self) -> "SweepArrays":
        """Writable copies of the bars. Arrays fetched from the Ray object store are read-only
        views, a different numba type: kernels would compile (and cache) a second
        specialisation. A copy costs 40 bytes per bar, once per trial."""
        def copy(a):
            return None if a is None else a.copy()

        return SweepArrays(self.open.copy(), self.close.copy(), self.score.copy(), self.hours.copy(),
                           self.segments.copy(), [t.copy() for t in self.train_scores], self.periods_per_year,
                           self.fees_bps, self.slippage_bps, self.pack_id, self.cadence,
                           copy(self.timestamps), copy(self.implied_vol), self.ticker)

    def base_config(self) -> BacktestConfig:
        return BacktestConfig(fees_bps=self.fees_bps, slippage_bps=self.slippage_bps,
                              periods_per_year=self.periods_per_year)


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


def warm_up() -> None:
    """Import Ray Tune and load the sweep kernels (numba cache) in this worker: called by the
    job manager's warm-up task so the first sweep after a start does not pay for them."""
    from ray import tune  # noqa: F401 - importing it is the warm-up

    from compute.sweep import make_grid, run_sweep

    n = 64
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    run_sweep(close, close.copy(), rng.uniform(0.0, 1.0, n), make_grid(thresholds=[0.55]), hours=np.full(n, 9))


def evaluate_chunk(arrays: SweepArrays, grid_chunk):
    """Metrics of a chunk of configurations (one numba call) plus, when the pack's ranking
    needs it, every configuration's standard deviation of per-fold Sharpe ratios."""
    from compute.gates import resolve_pack
    from compute.sweep import run_sweep

    if arrays.implied_vol is not None:
        return evaluate_options_chunk(arrays, grid_chunk)

    result = run_sweep(arrays.open, arrays.close, arrays.score, grid_chunk, hours=arrays.hours,
                       segments=arrays.segments, train_scores=arrays.train_scores)
    fold_std = None
    if resolve_pack(arrays.pack_id).ranking.name == "sortino_trades_dd_foldstd":
        # Each fold on its own (positions start flat at the fold's first bar): same total
        # bar-configurations as the stitched run.
        sharpes = []
        for k, train in enumerate(arrays.train_scores):
            rows = np.flatnonzero(arrays.segments == k)
            if rows.size < 2:
                continue
            sl = slice(int(rows[0]), int(rows[-1]) + 1)
            fold = run_sweep(arrays.open[sl], arrays.close[sl], arrays.score[sl], grid_chunk,
                             hours=arrays.hours[sl], train_scores=train)
            sharpes.append(fold.metrics["sharpe"])
        if len(sharpes) >= 2:
            import warnings

            with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                fold_std = np.nanstd(np.vstack(sharpes), axis=0, ddof=1)
    return result, fold_std


def evaluate_options_chunk(arrays: SweepArrays, grid_chunk):
    """Options packs: every configuration executed with 0DTE contracts priced along the path
    (``compute.backtest.run_options_backtest``, what ``POST /backtest`` runs for these packs), so
    the leaderboard ranks and gates the options P&L, not the underlying's. The options engine
    runs one configuration at a time (it picks and prices contracts per bar): a few ms per
    configuration per thousand bars instead of the equity kernel's microseconds.
    ``fold_std``: the standard deviation of the per-fold Sharpe ratios of the stitched run,
    as the single backtest reports ``fold_sharpe_std``."""
    from functools import partial

    from compute import stats
    from compute.backtest import run_options_backtest
    from compute.marketdata.options import strike_step
    from compute.sweep import SweepResult, grid_cutoffs

    index = pd.to_datetime(arrays.timestamps, utc=True)
    n_segments = int(arrays.segments.max()) + 1 if arrays.n_bars else 1
    cuts = grid_cutoffs(grid_chunk, arrays.train_scores, n_segments)
    fold_of = [arrays.segments == k for k in range(n_segments)]
    metrics = {name: np.empty(len(grid_chunk)) for name in METRIC_NAMES}
    fold_std = np.full(len(grid_chunk), np.nan)
    for j in range(len(grid_chunk)):
        bt = run_options_backtest(arrays.open, arrays.close, arrays.score, grid_chunk.config(j), index=index,
                                  hours=arrays.hours, implied_vol=arrays.implied_vol,
                                  strike_step=partial(strike_step, arrays.ticker), segments=arrays.segments,
                                  segment_cutoffs=cuts[j])
        for name in METRIC_NAMES:
            metrics[name][j] = bt.metrics[name]
        returns = bt.returns.to_numpy()
        sharpes = np.array([stats.sharpe(returns[mask], arrays.periods_per_year) for mask in fold_of if mask.any()])
        finite = sharpes[np.isfinite(sharpes)]
        if finite.size >= 2:
            fold_std[j] = float(finite.std(ddof=1))
    return SweepResult(grid=grid_chunk, metrics=metrics), fold_std


def chunk_rows(arrays: SweepArrays, meta: SweepMeta, grid, start: int, result, fold_std) -> list[dict]:
    """Leaderboard rows (column dicts) of an evaluated chunk: metrics, gate, ranking score,
    provisional deflated Sharpe."""
    from services.lab.service import clean_json, metrics_view
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
        cfg = config_dict(grid, j, meta.splits, meta.embargo)
        gate = evaluate_gate(pack, meta.risk_profile, raw, cfg)
        score = ranking_score(pack, raw)
        metrics = metrics_view(raw)
        rows.append({
            "id": new_id("res"), "user_id": meta.user_id, "model_pk": meta.model_pk, "model_id": meta.model_id,
            "pack_id": meta.pack_id, "backtest_id": None, "sweep_id": meta.sweep_id, "config_index": start + j,
            "tag": meta.tag, "risk_profile": meta.risk_profile, "config": clean_json(cfg), "metrics": metrics,
            "gate_pass": bool(gate["pass"]), "gate_reasons": list(gate["reasons"]),
            "score": _finite(score), "sharpe": metrics.get("sharpe"), "deflated_sharpe": _finite(dsr[j]),
            "cum_ret": metrics.get("cum_ret"), "max_drawdown": metrics.get("max_drawdown"),
            "win_rate": metrics.get("win_rate"),
            "trades": None if metrics.get("trades") is None else int(metrics["trades"]), "created_at": now,
        })
    return rows


def _finite(value) -> Optional[float]:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def ranked(query):
    """Leaderboard order: passing gates first, then the pack's post-gate ranking score, then
    Sharpe (undefined values last), then id for a stable order."""
    return query.order_by(LeaderboardEntry.gate_pass.desc(), LeaderboardEntry.score.desc().nulls_last(),
                          LeaderboardEntry.sharpe.desc().nulls_last(), LeaderboardEntry.id)


def entry_summary(row: LeaderboardEntry) -> dict:
    metrics = dict(row.metrics or {})
    metrics["deflated_sharpe"] = row.deflated_sharpe
    return {"result_id": row.id, "config_index": row.config_index, "config": row.config, "metrics": metrics,
            "gate": {"pass": row.gate_pass, "reasons": row.gate_reasons}, "score": row.score}


def _best(s, sweep_id: str) -> Optional[dict]:
    row = s.scalars(ranked(select(LeaderboardEntry).where(LeaderboardEntry.sweep_id == sweep_id)).limit(1)).first()
    return entry_summary(row) if row is not None else None


def store_chunk(catalog: Catalog, meta: SweepMeta, chunk_index: int, rows: list[dict], duration_ms: float) -> bool:
    """One transaction: the chunk marker, its leaderboard rows, the sweep's progress and best.

    Returns False when the chunk was already stored (a retried trial): nothing is written twice.
    """
    from sqlalchemy.exc import IntegrityError

    try:
        with catalog.session() as s:
            if s.get(SweepChunk, (meta.sweep_id, chunk_index)) is not None:
                return False
            s.add(SweepChunk(sweep_id=meta.sweep_id, chunk_index=chunk_index, n_configs=len(rows),
                             duration_ms=float(duration_ms)))
            s.flush()
            if rows:
                s.execute(insert(LeaderboardEntry), rows)
            s.execute(update(Sweep).where(Sweep.id == meta.sweep_id)
                      .values(done_configs=Sweep.done_configs + len(rows)))
            s.execute(update(Sweep).where(Sweep.id == meta.sweep_id).values(best=_best(s, meta.sweep_id)))
    except IntegrityError:
        return False
    return True


def _job_cancelled(catalog: Catalog, job_id: Optional[str]) -> bool:
    if not job_id:
        return False
    with catalog.session() as s:
        return s.scalar(select(Job.status).where(Job.id == job_id)) == "cancelled"


def chunk_trial(config: dict, inputs=None, meta: SweepMeta = None, bounds=None):
    """A Tune trial: evaluate one chunk in one numba call, store it, report once.

    ``inputs`` is ``[ref]``: the reference of the sweep's shared inputs (``sweep_inputs``), which
    may still be computing while this trial's actor starts."""
    from ray import tune

    from cluster.catalog import get_catalog

    chunk_index = int(config["chunk"])
    catalog = get_catalog(Settings.model_validate_json(meta.settings_json))
    started = time.perf_counter()
    if _job_cancelled(catalog, meta.job_id):
        tune.report({"chunk": chunk_index, "n_configs": 0, "stored": False, "cancelled": True})
        return
    shared = ray.get(inputs[0])
    waited_s = time.perf_counter() - started
    if "error" in shared:  # the driver reports it; nothing to evaluate
        tune.report({"chunk": chunk_index, "n_configs": 0, "stored": False, "cancelled": False})
        return
    start, stop = bounds[chunk_index]
    cpu_started = time.process_time()
    part = shared["grid"].slice(start, stop)
    arrays = shared["arrays"].local_copy()
    result, fold_std = evaluate_chunk(arrays, part)
    compute_s = time.perf_counter() - started - waited_s
    compute_cpu_s = time.process_time() - cpu_started
    rows = chunk_rows(arrays, meta, part, start, result, fold_std)
    stored = store_chunk(catalog, meta, chunk_index, rows, 1000 * (time.perf_counter() - started - waited_s))
    tune.report({"chunk": chunk_index, "n_configs": stop - start, "stored": stored, "cancelled": False,
                 "compute_s": compute_s, "compute_cpu_s": compute_cpu_s, "total_s": time.perf_counter() - started,
                 "waited_s": waited_s, "pid": os.getpid()})


_DRIVER_HOOKS: dict[str, dict] = {}


def _tune_hooks():
    """The Tune stopper and callback classes, made once and published as module globals so
    that (cloud)pickle refers to them by name instead of copying them with their globals."""
    global CancelStopper, Collect
    if "CancelStopper" in globals():
        return CancelStopper, Collect
    from ray.tune import Callback
    from ray.tune.stopper import Stopper

    class CancelStopper(Stopper):
        def __init__(self, key):
            self.key = key

        def __call__(self, trial_id, result):
            return False

        def stop_all(self):
            hooks = _DRIVER_HOOKS.get(self.key)
            if hooks is None or hooks["should_stop"] is None or hooks["stopped"]:
                return bool(hooks and hooks["stopped"])
            now = time.monotonic()
            if now - hooks["last"] >= 0.5:
                hooks["last"] = now
                hooks["stopped"] = bool(hooks["should_stop"]())
            return hooks["stopped"]

    class Collect(Callback):
        def __init__(self, key):
            self.key = key

        def on_trial_result(self, iteration, trials, trial, result, **info):
            hooks = _DRIVER_HOOKS.get(self.key)
            if hooks is None:
                return
            report = {k: result.get(k) for k in ("chunk", "n_configs", "stored", "cancelled", "compute_s",
                                                 "compute_cpu_s", "total_s", "waited_s", "pid")}
            hooks["reports"].append(report)
            if hooks["on_result"] is not None:
                hooks["on_result"](report)

    CancelStopper.__module__ = Collect.__module__ = __name__
    CancelStopper.__qualname__, Collect.__qualname__ = "CancelStopper", "Collect"
    return CancelStopper, Collect


def trial_concurrency(tier_limit: Optional[int], nodes: int) -> int:
    """Trials of one sweep at once: one per alive node (a trial's kernel uses every core of its
    node), never more than the tier's concurrent backtests (REFERENCE.md: free 1, basic 5, pro
    20, enterprise unlimited = None)."""
    n = max(1, int(nodes))
    return n if tier_limit is None else max(1, min(n, int(tier_limit)))


def run_chunks_on_tune(inputs: "ray.ObjectRef", todo: list[int], bounds, meta: SweepMeta, *,
                       storage_path: str, should_stop=None, on_result=None, max_concurrent: Optional[int] = None,
                       trial_fn=None) -> list[dict]:
    """Run one Tune trial per chunk index in ``todo``; returns the trials' reports.

    ``inputs``: the reference of ``{"arrays": SweepArrays, "grid": SweepGrid}`` (``sweep_inputs``'
    result, or ``ray.put`` of one); trials start while it is still being computed and wait for
    it, so their actors' start-up overlaps the walk-forward inputs.

    ``should_stop()`` is polled (at most twice a second) to stop the whole experiment;
    ``on_result(report)`` is called for each chunk report in the driver.
    """
    import ray
    from ray import tune

    if not todo:
        return []

    # Tune pickles stoppers and callbacks into its experiment state: they hold only a key
    # into this process's registry, never the (unpicklable) callables themselves.
    key = new_id("hooks")
    reports: list[dict] = []
    _DRIVER_HOOKS[key] = {"should_stop": should_stop, "on_result": on_result, "reports": reports,
                          "last": 0.0, "stopped": False}

    CancelStopper, Collect = _tune_hooks()

    if max_concurrent is None:
        max_concurrent = trial_concurrency(None, len([n for n in ray.nodes() if n.get("Alive")]))
    # Results live in the catalog: of Tune's default loggers keep only the JSON one (the result
    # grid reads it); the CSV and TensorBoard writers (and tensorboardX's import) buy nothing.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    from ray.tune.logger import JsonLoggerCallback
    # A list, so that the reference reaches the trials unresolved (they get it when they need it).
    trainable = tune.with_parameters(trial_fn or chunk_trial, inputs=[inputs], meta=meta, bounds=bounds)
    trainable = tune.with_resources(trainable, {"cpu": TRIAL_CPUS})
    tuner = tune.Tuner(
        trainable,
        param_space={"chunk": tune.grid_search(list(todo))},
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True),
        run_config=tune.RunConfig(
            name=f"{meta.sweep_id}_{new_id('run')}", storage_path=storage_path, verbose=0, log_to_file=False,
            stop=CancelStopper(key), callbacks=[Collect(key), JsonLoggerCallback()],
            failure_config=tune.FailureConfig(max_failures=2),
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False),
        ),
    )
    try:
        grid_result = tuner.fit()
    finally:
        _DRIVER_HOOKS.pop(key, None)
    errors = [r.error for r in grid_result if r.error is not None]
    if errors and not (should_stop and should_stop()):
        raise RuntimeError(f"{len(errors)} sweep chunk(s) failed: {errors[0]}")
    return reports


# ----------------------------------------------------------------- service: create, view, cancel, resume

def sweeps_last_day(catalog: Catalog, user_id: int) -> int:
    since = utcnow() - dt.timedelta(days=1)
    with catalog.session() as s:
        return int(s.scalar(select(func.count()).select_from(Sweep)
                            .where(Sweep.user_id == user_id, Sweep.created_at >= since)) or 0)


def create_sweep(catalog: Catalog, user_id: int, tier: str, *, model_id: str, sweep: Mapping[str, Any] | None,
                 risk_profile: Optional[str] = None, tag: Optional[str] = None, matrix_sha: Optional[str] = None,
                 start_date=None, end_date=None, chunk_size: Optional[int] = None) -> tuple[Sweep, list[str]]:
    """Validate a sweep request and record it (status queued); returns it and warnings.

    ``LookupError`` for a model that is not the user's, ``SweepInputError``/``LabInputError``
    for bad input, ``SweepQuotaExceeded`` over the daily quota.
    """
    from services.lab import service
    from compute import packs

    model = service.get_model(catalog, user_id, model_id)
    if sweep is None or (isinstance(sweep, Mapping) and not sweep):
        # omitted or {}: the pack's default grid (REFERENCE.md "Sweep defaults")
        sweep = packs.get_pack(model.pack_id).sweep.to_dict()
    spec = parse_sweep_spec(sweep)
    total = count_configs(spec)
    if total > MAX_CONFIGS:
        raise SweepInputError("sweep", f"{total} configurations; at most {MAX_CONFIGS} per sweep")
    profile = risk_profile or model.risk_profile
    if profile not in packs.RISK_PROFILES:
        raise SweepInputError("risk_profile", f"must be one of {list(packs.RISK_PROFILES)}")
    if tag is not None and (not isinstance(tag, str) or not 1 <= len(tag) <= 80):
        raise SweepInputError("tag", "must be a string of 1 to 80 characters")
    if chunk_size is not None and not 1 <= int(chunk_size) <= MAX_CHUNK:
        raise SweepInputError("chunk_size", f"must be between 1 and {MAX_CHUNK}")
    try:
        matrix = service.get_matrix(catalog, model.id, matrix_sha)
    except LookupError as exc:
        raise SweepInputError("matrix_sha", f"{exc}; build a matrix first (POST /build_matrix)") from None
    start = service.parse_date(start_date, "start_date").isoformat() if start_date else None
    end = service.parse_date(end_date, "end_date").isoformat() if end_date else None
    if start and end and start > end:
        raise SweepInputError("end_date", "must not be before start_date")
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
    from cluster.jobs import request_cancel

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


# ----------------------------------------------------------------- the job (Tune driver)

def finalize_sweep(catalog: Catalog, sweep_id: str, periods_per_year: Optional[float], status: str) -> dict:
    """Deflated Sharpe of every stored configuration for the number of configurations tried
    (the variance of their Sharpe ratios across the whole sweep), the best configuration,
    the recounted progress and the final status. ``periods_per_year`` None (a run cancelled
    before its inputs were ready) keeps the stored chunks' provisional values."""
    from compute import stats

    with catalog.session() as s:
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
            s.execute(update(LeaderboardEntry), [{"id": r[0], "deflated_sharpe": _finite(d)} for r, d in zip(rows, dsr)])
        done = int(s.scalar(select(func.coalesce(func.sum(SweepChunk.n_configs), 0))
                            .where(SweepChunk.sweep_id == sweep_id)) or 0)
        sweep = s.get(Sweep, sweep_id)
        sweep.done_configs = done
        sweep.best = _best(s, sweep_id)
        if sweep.status != "cancelled":
            sweep.status = status
        sweep.finished_at = utcnow()
        return {"status": sweep.status, "done_configs": done, "total_configs": sweep.total_configs,
                "best": sweep.best, "tag": sweep.tag, "n_trials_for_dsr": n}


def _job_progress(catalog: Catalog, job_id: str, fraction: float, message: str) -> None:
    with catalog.session() as s:
        s.execute(update(Job).where(Job.id == job_id, Job.status == "running")
                  .values(progress=max(0.0, min(1.0, fraction)), message=message, updated_at=utcnow()))


def sweep_inputs(settings_json: str, user_id: int, model_id: str, doc: dict, risk_profile: str, total: int) -> dict:
    """The shared inputs of a sweep: ``{"arrays": SweepArrays, "grid": SweepGrid, "seconds"}``,
    or ``{"error": {"message", "code", "field"}}`` for input the model's data cannot satisfy.

    Runs as a Ray task (``sweep_inputs_task``) next to the Tune driver: the walk-forward inputs
    (fold models, out-of-sample scores; cached in the artifact store) are computed while the
    trials' actors start."""
    from cluster.artifacts import ArtifactStore
    from cluster.catalog import get_catalog
    from services.lab import service

    started = time.perf_counter()
    settings = Settings.model_validate_json(settings_json)
    spec = doc["spec"]
    try:
        inputs = service.model_inputs(
            get_catalog(settings), ArtifactStore(settings.resolved_storage_url), user_id, model_id,
            doc.get("matrix_sha"), start_date=doc.get("start_date"), end_date=doc.get("end_date"),
            n_splits=spec.get("splits") or service.DEFAULT_SPLITS, embargo=spec.get("embargo"),
            risk_profile=risk_profile)
        arrays = SweepArrays.from_lab_inputs(inputs)
        grid = build_grid(spec, arrays.base_config())
    except (service.LabInputError, SweepInputError) as exc:
        return {"error": {"message": str(exc), "code": "INVALID_PARAMETER", "field": exc.field}}
    except LookupError as exc:
        return {"error": {"message": str(exc), "code": "NOT_FOUND", "field": None}}
    if len(grid) != total:
        return {"error": {"message": f"grid has {len(grid)} configurations, expected {total}",
                          "code": "CALCULATION_ERROR", "field": None}}
    return {"arrays": arrays, "grid": grid, "seconds": round(time.perf_counter() - started, 3)}


sweep_inputs_task = ray.remote(max_retries=0)(sweep_inputs)


def _chunk_plan(catalog: Catalog, sweep_id: str, model_pk: int, doc: dict, total: int) -> int:
    """The sweep's chunk size, fixed at its first run (a resume must cut the grid the same way).

    Planned before the inputs exist, from the matrix's row count: an upper bound on the
    out-of-sample bars, so a chunk is never more work than ``CHUNK_BAR_CONFIGS``."""
    from cluster.catalog import Matrix

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


def sweep_job(ctx: JobContext, params: dict) -> dict:
    """The ``lab.sweep`` job: the Tune driver. It starts the inputs task and the Tune run together
    (trials wait for the inputs while their actors start), then runs the final pass."""
    from services.lab import service

    sweep_id = params["sweep_id"]
    catalog = ctx.catalog
    timings: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name] = round(now - mark, 3)
        mark = now

    with catalog.session() as s:
        sweep = s.get(Sweep, sweep_id)
        if sweep is None:
            raise JobFailed(f"sweep {sweep_id} not found", code="NOT_FOUND")
        if sweep.status == "cancelled":
            raise JobCancelled(ctx.job_id)
        model = s.get(LabModel, sweep.model_pk)
        done_chunks = set(s.scalars(select(SweepChunk.chunk_index).where(SweepChunk.sweep_id == sweep_id)).all())
        done_at_start = int(s.scalar(select(func.coalesce(func.sum(SweepChunk.n_configs), 0))
                                     .where(SweepChunk.sweep_id == sweep_id)) or 0)
        doc = dict(sweep.grid or {})
        runs = list(doc.get("runs") or [])
        runs.append({"job_id": ctx.job_id, "driver_pid": os.getpid(), "done_at_start": done_at_start,
                     "started_at": utcnow().isoformat()})
        doc["runs"] = runs
        sweep.grid = doc
        sweep.status, sweep.started_at, sweep.error, sweep.job_id = "running", utcnow(), None, ctx.job_id
        sweep.done_configs = done_at_start
        spec, profile, tag, total = doc["spec"], sweep.risk_profile, sweep.tag, sweep.total_configs
        user_id, model_pk, model_id, pack_id = sweep.user_id, model.id, model.model_id, model.pack_id
        tier = s.scalar(select(User.tier).where(User.id == user_id)) or "free"
    inputs_ref = None
    try:
        _job_progress(catalog, ctx.job_id, 0.02, "walk-forward inputs")
        inputs_ref = sweep_inputs_task.options(num_cpus=ctx.settings.job_num_cpus, name=f"sweep-inputs:{sweep_id}").remote(
            ctx.settings.worker_json(), user_id, model_id, doc, profile, total)
        bounds = chunk_bounds(total, _chunk_plan(catalog, sweep_id, model_pk, doc, total))
        todo = [i for i in range(len(bounds)) if i not in done_chunks]
        meta = SweepMeta(sweep_id=sweep_id, user_id=user_id, model_pk=model_pk, model_id=model_id, pack_id=pack_id,
                         tag=tag, risk_profile=profile, n_trials=total,
                         splits=int(spec.get("splits") or service.DEFAULT_SPLITS),
                         embargo=spec.get("embargo"), settings_json=ctx.settings.worker_json(), job_id=ctx.job_id)
        _job_progress(catalog, ctx.job_id, done_at_start / total, f"{len(todo)} of {len(bounds)} chunks to run")
        progress = {"done": done_at_start}

        def on_result(report):
            progress["done"] += int(report.get("n_configs") or 0) if report.get("stored") else 0
            _job_progress(catalog, ctx.job_id, progress["done"] / total,
                          f"{progress['done']}/{total} configurations")

        def inputs_failed() -> bool:
            ready, _ = ray.wait([inputs_ref], timeout=0)
            return bool(ready) and "error" in ray.get(inputs_ref)

        started = time.perf_counter()
        lap("prepare_s")
        concurrency = trial_concurrency(ctx.settings.tier_limits().get(tier, {}).get("concurrent_backtests", 1),
                                        len([n for n in ray.nodes() if n.get("Alive")]))
        reports = run_chunks_on_tune(inputs_ref, todo, bounds, meta, storage_path=str(ctx.settings.home / "tune"),
                                     should_stop=lambda: ctx.cancelled() or inputs_failed(), on_result=on_result,
                                     max_concurrent=concurrency)
        lap("tune_s")
        cancelled = ctx.cancelled()
        # cancelled before the inputs were ready: no chunk can have been stored
        ready, _ = ray.wait([inputs_ref], timeout=0.0 if cancelled else None)
        shared = ray.get(inputs_ref) if ready else None
        if shared is None:
            ray.cancel(inputs_ref)
        elif "error" in shared:
            error = shared["error"]
            raise JobFailed(error["message"], code=error["code"],
                            details={"field": error["field"]} if error["field"] else {})
        else:
            timings["model_inputs_s"] = shared["seconds"]
        summary = finalize_sweep(catalog, sweep_id, shared["arrays"].periods_per_year if shared else None,
                                 "cancelled" if cancelled else "completed")
        lap("finalize_s")
    except BaseException as exc:
        if inputs_ref is not None:
            ray.cancel(inputs_ref)
        with catalog.session() as s:
            row = s.get(Sweep, sweep_id)
            if row is not None and row.status not in FINAL:
                cancelled = isinstance(exc, (JobCancelled, KeyboardInterrupt))
                row.status = "cancelled" if cancelled else "failed"
                row.error = None if cancelled else f"{type(exc).__name__}: {exc}"
                row.finished_at = utcnow()
        raise
    summary.update({
        "sweep_id": sweep_id, "model_id": model_id, "chunks": len(bounds), "chunks_run": len(reports),
        "chunks_skipped": len(bounds) - len(todo), "seconds": round(time.perf_counter() - started, 3),
        "max_concurrent_trials": concurrency, "timings": {**timings, "trials_s": [r.get("total_s") for r in reports],
                    "trials_waited_s": [r.get("waited_s") for r in reports]},
    })
    _emit(catalog, user_id, summary)
    if summary["status"] == "cancelled":
        raise JobCancelled(ctx.job_id)
    return summary


def _emit(catalog: Catalog, user_id: int, summary: dict) -> None:
    try:
        from cluster.webhooks import enqueue

        enqueue(catalog, user_id, "sweep.completed", {
            "sweep_id": summary["sweep_id"], "model_id": summary["model_id"], "tag": summary.get("tag"),
            "status": "success" if summary["status"] == "completed" else summary["status"],
            "total_configs": summary["total_configs"], "done_configs": summary["done_configs"],
            "best": summary.get("best"),
        })
    except Exception:  # noqa: BLE001 - a delivery problem never undoes the sweep
        log.exception("could not enqueue sweep.completed for %s", summary.get("sweep_id"))


# ----------------------------------------------------------------- leaderboard

#: Sortable metrics stored as columns (sorted in SQL on an index-friendly column).
COLUMN_METRICS = {"sharpe": "sharpe", "deflated_sharpe": "deflated_sharpe", "cum_ret": "cum_ret",
                  "cum_return": "cum_ret", "max_drawdown": "max_drawdown", "win_rate": "win_rate",
                  "trades": "trades", "score": "score"}
#: Every other metric a result carries (sorted in SQL through the JSON column).
JSON_METRICS = tuple(m for m in METRIC_NAMES if m not in COLUMN_METRICS) + (
    "es95", "fold_sharpe_std", "fold_sharpe_mean", "psr", "n_folds")
SORTABLE = tuple(COLUMN_METRICS) + JSON_METRICS
CSV_METRICS = ("sharpe", "deflated_sharpe", "sortino", "calmar", "cum_ret", "annual_return", "annual_volatility",
               "max_drawdown", "win_rate", "trades", "trades_per_year", "es_95", "turnover", "exposure",
               "fold_sharpe_std", "n_bars")
CSV_CONFIG = ("kind", "value", "exit_value", "top_pct", "long_only", "allowed_hours", "fees_bps", "slippage_bps",
              "splits")


def leaderboard_query(user_id: int, *, model_id=None, pack_id=None, tag=None, risk_profile=None, pass_gate=None,
                      sweep_id=None, sort_by: Optional[str] = None, order: str = "desc"):
    """The user's results filtered and ordered (``ranked`` when ``sort_by`` is None).

    ``SweepInputError("sort_by", ...)`` for a metric results do not carry.
    """
    query = select(LeaderboardEntry).where(LeaderboardEntry.user_id == user_id)
    for column, value in ((LeaderboardEntry.model_id, model_id), (LeaderboardEntry.pack_id, pack_id),
                          (LeaderboardEntry.tag, tag), (LeaderboardEntry.risk_profile, risk_profile),
                          (LeaderboardEntry.sweep_id, sweep_id)):
        if value is not None:
            query = query.where(column == value)
    if pass_gate is not None:
        query = query.where(LeaderboardEntry.gate_pass.is_(bool(pass_gate)))
    if sort_by is None:
        return ranked(query)
    if order not in ("asc", "desc"):
        raise SweepInputError("order", "must be asc or desc")
    if sort_by in COLUMN_METRICS:
        key = getattr(LeaderboardEntry, COLUMN_METRICS[sort_by])
    elif sort_by in JSON_METRICS:
        key = LeaderboardEntry.metrics[sort_by].as_float()
    else:
        raise SweepInputError("sort_by", f"unknown metric {sort_by!r}; sortable: {', '.join(SORTABLE)}")
    key = key.desc() if order == "desc" else key.asc()
    return query.order_by(key.nulls_last(), LeaderboardEntry.gate_pass.desc(),
                          LeaderboardEntry.score.desc().nulls_last(), LeaderboardEntry.id)


def leaderboard_item(row: LeaderboardEntry, rank: int) -> dict:
    metrics = dict(row.metrics or {})
    metrics["deflated_sharpe"] = row.deflated_sharpe
    metrics.setdefault("cum_ret", row.cum_ret)
    return {
        "rank": rank, "result_id": row.id, "backtest_id": row.backtest_id, "sweep_id": row.sweep_id,
        "config_index": row.config_index, "model_id": row.model_id, "pack_id": row.pack_id, "tag": row.tag,
        "risk_profile": row.risk_profile, "metrics": metrics,
        "gate": {"pass": row.gate_pass, "reasons": list(row.gate_reasons or [])}, "score": row.score,
        "config": row.config, "created_at": row.created_at.isoformat() if row.created_at else None,
    }


def leaderboard(catalog: Catalog, user_id: int, *, limit: int = 100, offset: int = 0, **filters) -> dict:
    """``{"items": [...ranked...], "total", "limit", "offset"}``; ranks count from the first
    row of the filtered order, so page 2 continues page 1's numbering."""
    query = leaderboard_query(user_id, **filters)
    with catalog.session() as s:
        total = int(s.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)
        rows = s.scalars(query.limit(limit).offset(offset)).all()
    return {"items": [leaderboard_item(r, offset + i + 1) for i, r in enumerate(rows)], "total": total,
            "limit": limit, "offset": offset}


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 10))
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def leaderboard_csv(catalog: Catalog, user_id: int, *, limit: int = MAX_CONFIGS, **filters) -> str:
    """The filtered, ranked leaderboard as CSV: one row per result, config and metric columns."""
    import csv
    import io

    query = leaderboard_query(user_id, **filters).limit(limit)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "result_id", "model_id", "pack_id", "risk_profile", "tag", "sweep_id", "config_index",
                     "backtest_id", "gate_pass", "gate_reasons", "score", *CSV_CONFIG, *CSV_METRICS])
    with catalog.session() as s:
        for i, row in enumerate(s.scalars(query).yield_per(2000), start=1):
            metrics = dict(row.metrics or {})
            metrics["deflated_sharpe"] = row.deflated_sharpe
            config = row.config or {}
            cells = [i, row.id, row.model_id, row.pack_id, row.risk_profile, row.tag, row.sweep_id, row.config_index,
                     row.backtest_id, row.gate_pass, "; ".join(row.gate_reasons or []), row.score,
                     *(config.get(k) for k in CSV_CONFIG), *(metrics.get(k) for k in CSV_METRICS)]
            writer.writerow([_csv_cell(c) for c in cells])
    return out.getvalue().replace("\r", "")
