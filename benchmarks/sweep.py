"""Sweeps through the platform: the engine, Ray Tune and an in-process Serve harness.

The user's path (``sigma serve --demo`` in its own process, fresh home, over HTTP) is measured
by ``benchmarks/first_run.py``; the API figures here come from an in-process harness (Serve
started in this process, no demo seeding) and are labelled ``path: in-process harness``.
Prints one JSON object per line.

1. ``api_spec_sweep_36``: the spec's 36-configuration sweep (4 thresholds x 3 hour sets x 3
   top_pct) on a daily model, end to end through the API (POST, job, walk-forward inputs,
   Ray Tune trial, stored results) until GET says completed; a live Sigma on Ray Serve
   started here, with SQLite. Run twice: the first includes fresh workers (imports, numba
   cache loads), the second reuses the warm job worker (the trial actor is always fresh); then
   the 10,000-configuration grid through the API (every configuration stored on the leaderboard).
2. 10,000 configurations x 2,520 daily bars: the raw engine in this process
   (``compute.sweep.run_sweep``), then the same grid through Ray Tune
   (``tuning.sweep.run_chunks_on_tune``: inputs put in the object store once, one trial per
   chunk, every chunk's 10,000 leaderboard rows stored). Reported: in-trial kernel
   throughput (vs raw; the >= 70 % target) and the end-to-end Tuner.fit wall time with its
   fixed costs (trial actor start, imports, storing rows).
3. Memory: peak RSS of a fresh process evaluating 1,000 and 10,000 configurations over
   98,280 intraday bars (only metric vectors are kept per configuration).
4. vectorbt (if importable): from_signals + stats on a 100-configuration sub-grid, ratio.
Run: .venv/bin/python benchmarks/sweep.py
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from cluster.runtime import free_port  # noqa: E402
N_BARS = 2520


def emit(metric, value, unit, n, **extra):
    row = {"benchmark": "sweep", "metric": metric, "value": round(float(value), 4), "unit": unit, "n": n,
           "path": "in-process harness", "loadavg_1m": round(os.getloadavg()[0], 2)}
    row.update(extra)
    print(json.dumps(row), flush=True)


def market(n, seed=0, persistence=0.9):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, 0.002, n))
    z = np.zeros(n)
    shocks = rng.standard_normal(n)
    for t in range(1, n):
        z[t] = persistence * z[t - 1] + np.sqrt(1 - persistence ** 2) * shocks[t]
    return open_, close, 1.0 / (1.0 + np.exp(-0.4 * z))


GRID_10K = {"thresholds": [round(float(v), 4) for v in np.linspace(0.50, 0.70, 100)],
            "exit_thresholds": [round(float(v), 4) for v in np.linspace(0.45, 0.50, 10)],
            "fees_bps": [0, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20]}


def job_timings(catalog, job_id, wait_s=3.0):
    """The sweep job's own step timings (walk-forward inputs, Tune, final pass), once it has
    recorded its result (just after the sweep row turns final), and how long the job waited
    in the queue (created -> started on a worker)."""
    from cluster.catalog import Job

    deadline = time.monotonic() + wait_s
    while job_id:
        with catalog.session() as s:
            job = s.get(Job, job_id)
            result = dict(job.result or {}) if job is not None else {}
            queued = (job.started_at - job.created_at).total_seconds() if job and job.started_at else None
        if result or time.monotonic() > deadline:
            timings = result.get("timings") or {}
            return {"queue_s": None if queued is None else round(queued, 3), **timings}
        time.sleep(0.05)
    return None


def settle(max_wait_s=20.0, idle_fraction=0.25):
    """Wait until the machine's CPUs are mostly idle (Ray starting or stopping workers after the
    previous step), so that a throughput figure measures the engine, not the start-up of the
    cluster; at most ``max_wait_s``."""
    import psutil

    deadline = time.monotonic() + max_wait_s
    while time.monotonic() < deadline and psutil.cpu_percent(interval=0.5) > 100 * idle_fraction:
        pass


def api_sweep(home: Path):
    import httpx
    from ray import serve

    from cluster.catalog import get_catalog, upgrade_schema
    from cluster.config import Settings
    from serve_app.app import build_app
    from serve_app.cli import wait_healthy
    from serve_app.users import create_user

    port = free_port()
    settings = Settings(home=home, host="127.0.0.1", port=port, jwt_secret=secrets.token_urlsafe(32),
                        ingress_num_cpus=0.1, job_num_cpus=0.5)
    catalog = get_catalog(settings)
    upgrade_schema(catalog)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(settings), name="sigma", route_prefix="/", blocking=False)
    base = f"http://127.0.0.1:{port}/api/v1"
    http = httpx.Client(timeout=60)
    wait_healthy(base)
    create_user(catalog, "bench", "bench-password-1", tier="pro", update=True)
    token = http.post(f"{base}/auth/token", json={"username": "bench", "password": "bench-password-1"}).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    mid = http.post(f"{base}/models", json={"template_id": "swingsigma_default", "config": {"ticker": "AAPL"}},
                    headers=h).json()["model_id"]
    matrix = http.post(f"{base}/build_matrix", json={"model_id": mid, "start_date": "2019-01-01", "end_date": "2023-12-31"},
                       headers=h).json()
    body = {"model_id": mid, "risk_profile": "Balanced", "tag": "sweep_2024Q1",
            "sweep": {"thresholds": [0.5, 0.6, 0.7, 0.8], "allowed_hours": [[9, 10, 11], [12, 13, 14], [9, 10, 11, 12, 13, 14, 15]],
                      "top_pct": [5, 10, 15]}}
    runs = (("api_spec_sweep_36_first", body), ("api_spec_sweep_36_second", body),
            ("api_sweep_10k", {"model_id": mid, "risk_profile": "Balanced", "tag": "sweep_10k", "sweep": GRID_10K}))
    for metric, request in runs:
        t0 = time.perf_counter()
        sweep_id = http.post(f"{base}/backtest_sweep", json=request, headers=h).json()["sweep_id"]
        while True:
            state = http.get(f"{base}/backtest_sweep/{sweep_id}", headers=h).json()
            if state["status"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.05)
        dt = time.perf_counter() - t0
        emit(metric, dt, "s", state["total_configs"], status=state["status"], bars=matrix["rows"],
             target_s=5.0 if metric.startswith("api_spec") else None,
             best_sharpe=(state.get("best") or {}).get("metrics", {}).get("sharpe"),
             job_timings=job_timings(catalog, state.get("job_id")))
    http.close()
    serve.shutdown()


def tune_vs_raw(home: Path):
    import ray

    from cluster.catalog import LabModel, Sweep, User, get_catalog, upgrade_schema
    from cluster.config import Settings
    from compute.sweep import SweepArrays, run_sweep
    from services.lab import sweeps as sw
    from tuning.sweep import run_chunks_on_tune

    open_, close, score = market(N_BARS)
    arrays = SweepArrays(open_, close, score, np.full(N_BARS, 9, dtype=np.int64), np.zeros(N_BARS, dtype=np.int64),
                            [score[:500]], 252.0, 1.0, 2.0, "swingsigma", "daily")
    spec = sw.parse_sweep_spec(GRID_10K)
    grid = sw.build_grid(spec, arrays.base_config())
    n_cfg = len(grid)
    bar_configs = n_cfg * N_BARS
    run_sweep(open_, close, score, grid.slice(0, 8), hours=arrays.hours)
    settle()
    best, best_cpu = float("inf"), float("nan")
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        run_sweep(open_, close, score, grid, hours=arrays.hours)
        if time.perf_counter() - t0 < best:
            best, best_cpu = time.perf_counter() - t0, time.process_time() - c0
    raw_rate = bar_configs / best
    raw_cpu_rate = bar_configs / best_cpu
    emit("raw_engine_10k_x_2520", raw_rate / 1e6, "M bar-configs/s", bar_configs, seconds=round(best, 4), target=200,
         per_cpu_second_m=round(raw_cpu_rate / 1e6, 1))

    settings = Settings(home=home / "tune_db")
    catalog = get_catalog(settings)
    upgrade_schema(catalog)
    with catalog.session() as s:
        user = User(username="tune", password_hash="x")
        s.add(user)
        s.flush()
        model = LabModel(user_id=user.id, model_id="AAPL_equity_5d_daily", pack_id="swingsigma",
                         template_id="swingsigma_default")
        s.add(model)
        s.flush()
        uid, mpk = user.id, model.id
    for label in ("cold_actor", "second_run"):
        with catalog.session() as s:
            row = Sweep(user_id=uid, model_pk=mpk, grid={"spec": spec}, total_configs=n_cfg)
            s.add(row)
            s.flush()
            sweep_id = row.id
        meta = sw.SweepMeta(sweep_id, uid, mpk, "AAPL_equity_5d_daily", "swingsigma", "bench", "Balanced", n_cfg, 5, None,
                            settings.worker_json())
        # 4 chunks of 2,500 so that warm trials (a reused actor) are measured too
        bounds = sw.chunk_bounds(n_cfg, 2500)
        t0 = time.perf_counter()
        reports = run_chunks_on_tune(ray.put({"arrays": arrays, "grid": grid}), list(range(len(bounds))), bounds, meta,
                                        storage_path=str(home / "tune"), max_concurrent=1)
        wall = time.perf_counter() - t0
        ordered = sorted(reports, key=lambda r: r["chunk"])
        compute = [r["compute_s"] for r in ordered]
        total_s = sum(r["total_s"] for r in reports)
        warm = compute[1:]
        warm_rate = sum(2500 * N_BARS for _ in warm) / sum(warm)
        warm_cpu_rate = 2500 * N_BARS * len(warm) / sum(r["compute_cpu_s"] for r in ordered[1:])
        emit(f"tune_in_trial_kernel_{label}", warm_rate / 1e6, "M bar-configs/s", 2500 * N_BARS * len(warm),
             ratio_vs_raw=round(warm_rate / raw_rate, 3), target_ratio=0.7,
             per_cpu_second_m=round(warm_cpu_rate / 1e6, 1), cpu_ratio_vs_raw=round(warm_cpu_rate / raw_cpu_rate, 3),
             note="warm trials (chunks 2-4, reused actor): chunk prep + kernel; per CPU-second too, since Ray "
                  "starts idle workers on the same 2 cores meanwhile")
        settle()
        emit(f"tune_end_to_end_{label}", bar_configs / wall / 1e6, "M bar-configs/s", bar_configs, seconds=round(wall, 3),
             ratio_vs_raw=round(bar_configs / wall / raw_rate, 4), first_chunk_s=round(compute[0], 3),
             trial_seconds_incl_storage=round(total_s, 3), rows_stored=n_cfg,
             note="Tuner.fit wall: trial actor start, imports, kernel cache load, 10,000 leaderboard rows")


MEM_SNIPPET = r"""
import resource, sys, numpy as np
from compute.backtest import BacktestConfig
from compute.sweep import make_grid, run_sweep
n = 98_280; k = int(sys.argv[1])
rng = np.random.default_rng(1)
close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n))); open_ = close * np.exp(rng.normal(0, 0.0005, n))
score = rng.uniform(size=n); hours = np.tile(np.arange(9, 16), n // 7 + 1)[:n]
thr = np.linspace(0.5, 0.7, max(1, k // 10))
grid = make_grid(thresholds=thr, fees_bps=list(np.linspace(0, 9, 10)), base=BacktestConfig(periods_per_year=1764))
run_sweep(open_, close, score, grid.slice(0, 4), hours=hours)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
res = run_sweep(open_, close, score, grid, hours=hours)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(len(grid), before, after)
"""


def memory():
    for k in (1000, 10000):
        out = subprocess.run([sys.executable, "-c", MEM_SNIPPET, str(k)], capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
        n_cfg, before, after = out.stdout.split()
        emit(f"peak_rss_{n_cfg}cfg_x_98280_bars", float(after), "MB", int(n_cfg) * 98_280,
             growth_during_sweep_mb=round(float(after) - float(before), 1),
             configs_x_bars_float64_mb=round(int(n_cfg) * 98_280 * 8 / 2**20, 1))


def vectorbt_ratio():
    try:
        import pandas as pd
        import vectorbt as vbt
    except Exception as exc:  # noqa: BLE001
        emit("vectorbt_ratio", float("nan"), "x", 0, skipped=f"vectorbt not importable: {type(exc).__name__}")
        return
    from compute.backtest import BacktestConfig
    from compute.sweep import make_grid, run_sweep

    open_, close, score = market(N_BARS)
    entries_v, exits_v = np.linspace(0.50, 0.70, 10), np.linspace(0.45, 0.50, 10)
    pairs = [(v, x) for v in entries_v for x in exits_v]
    idx = pd.date_range("2015-01-02", periods=N_BARS, freq="B")
    s = pd.Series(score, index=idx)
    entries = pd.DataFrame({i: s >= v for i, (v, _) in enumerate(pairs)}).shift(1, fill_value=False)
    exits = pd.DataFrame({i: s < x for i, (_, x) in enumerate(pairs)}).shift(1, fill_value=False)

    def run_vbt():
        pf = vbt.Portfolio.from_signals(pd.Series(close, index=idx), entries, exits, price=pd.Series(open_, index=idx),
                                        fees=1e-4, slippage=2e-4, freq="1D")
        return pf.stats(agg_func=None, silence_warnings=True)

    run_vbt()
    t0 = time.perf_counter()
    run_vbt()
    vbt_s = time.perf_counter() - t0
    grid = make_grid(thresholds=entries_v, exit_thresholds=exits_v, long_only=[True],
                     base=BacktestConfig(periods_per_year=252))
    run_sweep(open_, close, score, grid)
    t0 = time.perf_counter()
    run_sweep(open_, close, score, grid)
    sigma_s = time.perf_counter() - t0
    n = len(pairs) * N_BARS
    emit("vectorbt_from_signals_stats_100cfg", n / vbt_s / 1e6, "M bar-configs/s", n, seconds=round(vbt_s, 4),
         sigma_configs=len(grid), sigma_seconds=round(sigma_s, 4),
         sigma_vs_vectorbt_ratio=round((len(grid) * N_BARS / sigma_s) / (n / vbt_s), 1), vectorbt=vbt.__version__)


def main():
    import ray

    from cluster.config import default_numba_cache_dir

    home = Path(tempfile.mkdtemp(prefix="sigma_bench_sweep_"))
    os.environ.setdefault("NUMBA_CACHE_DIR", str(default_numba_cache_dir()))
    # address="local": a Ray of its own even when another one runs on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="sigma", log_to_driver=False)  # workers inherit NUMBA_CACHE_DIR
    try:
        api_sweep(home / "api")
        tune_vs_raw(home)
    finally:
        ray.shutdown()
    memory()
    vectorbt_ratio()


if __name__ == "__main__":
    main()
