"""The user's path, cold then warm: what a new user waits for after ``make run``.

Starts Sigma exactly as ``make run`` does (``sigma serve --demo`` in its own process, a fresh
``SIGMA_HOME``, so every cache is cold), then over HTTP, as the demo user ``demo_hnw``:

1. ``start_to_healthy`` and ``start_to_login``: process start until /healthz answers, and
   until the demo user can log in (seeding done);
2. ``noop_route``: GET /healthz p50 over 20 calls (the floor every route pays);
3. ``build_matrix_cold`` / ``build_matrix_warm`` / ``build_matrix_new_range``: POST
   /build_matrix for MSFT 2015-2024 with close, volume, RSI, MACD (2,516 daily rows): the
   first call, the same request again (stored matrix), and a request for another range (new
   computation on warm workers);
4. ``sweep36_run1`` .. ``sweep36_run5``: the spec's 36-configuration sweep (4 thresholds x
   3 hour sets x 3 top_pct) end to end (POST, poll GET every 50 ms until final), each with
   the job's own step timings (queue wait, walk-forward inputs, Tune, final pass);
   ``sweep36_warm_p50`` over runs 2-5;
5. ``sweep10k``: the 10,000-configuration grid through the API (every row stored, ranked);
6. ``naive_tune_36``: the peer, in this process after the server stopped: Ray Tune with one
   trial per configuration over the same number of bars (what a sweep would cost without
   chunking), and the ratio of the warm sweep to it.

Run: ``.venv/bin/python benchmarks/first_run.py`` (``--no-naive`` skips step 6);
``--starts N`` measures only start-up, N times: ``start_to_healthy`` on a fresh home,
``restart_to_healthy`` on the same home, and ``bare_ray_init`` (the peer: Ray alone). One JSON
object per line; each names the CPU model and the 1-minute load.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import LiveSigma, cpu_model, latencies_ms  # noqa: E402

CPU = cpu_model()

SPEC_SWEEP = {"thresholds": [0.5, 0.6, 0.7, 0.8],
              "allowed_hours": [[9, 10, 11], [12, 13, 14], [9, 10, 11, 12, 13, 14, 15]],
              "top_pct": [5, 10, 15]}
GRID_10K = {"thresholds": [round(0.50 + 0.2 * i / 99, 4) for i in range(100)],
            "exit_thresholds": [round(0.45 + 0.05 * i / 9, 4) for i in range(10)],
            "fees_bps": [0, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20]}
MODEL = "MSFT_equity_5d_daily"
FEATURES = ["close", "volume", "RSI", "MACD"]




def emit(metric, value, unit, n=1, **extra):
    row = {"benchmark": "first_run", "metric": metric, "value": round(float(value), 4), "unit": unit, "n": n,
           "path": "sigma serve --demo over HTTP", "cpu": CPU, "loadavg_1m": round(os.getloadavg()[0], 2)}
    row.update(extra)
    print(json.dumps(row), flush=True)










def run_sweep(http: httpx.Client, base: str, h: dict, body: dict) -> tuple[float, dict, dict]:
    t0 = time.perf_counter()
    resp = http.post(f"{base}/backtest_sweep", json=body, headers=h)
    resp.raise_for_status()
    sweep_id = resp.json()["sweep_id"]
    while True:
        state = http.get(f"{base}/backtest_sweep/{sweep_id}", headers=h).json()
        if state["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    job = {}
    if state.get("job_id"):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            view = http.get(f"{base}/jobs/{state['job_id']}", headers=h).json()
            result = http.get(f"{base}/jobs/{state['job_id']}/result", headers=h).json()
            job = {**view.get("data", view), "result": result.get("data", result).get("result")}
            if job.get("result"):
                break
            time.sleep(0.1)
    return elapsed, state, job


def job_steps(job: dict) -> dict:
    result = job.get("result") or {}
    out = dict(result.get("timings") or {})
    created, started = job.get("created_at"), job.get("started_at")
    if created and started:
        from datetime import datetime

        out["queued_s"] = round((datetime.fromisoformat(started) - datetime.fromisoformat(created)).total_seconds(), 3)
    return out


def user_path(naive: bool) -> None:
    warm = []
    with LiveSigma(demo_user="demo_hnw") as sigma:
        http, base, h = sigma.http, sigma.base, sigma.headers
        emit("start_to_healthy", sigma.healthy_s, "s", home="fresh")
        sigma._wait(lambda: http.get(f"{base}/models/{MODEL}", headers=h, timeout=5).status_code == 200,
                    "demo Lab model")
        emit("start_to_login", time.perf_counter() - sigma.started_at, "s", home="fresh")

        noop = latencies_ms(http, "/auth/me", h, 20)
        emit("noop_route", statistics.median(noop), "ms", 20, route="GET /auth/me (p50)")

        body = {"model_id": MODEL, "start_date": "2015-01-01", "end_date": "2024-12-31", "features": FEATURES}
        for metric, req in (("build_matrix_cold", body), ("build_matrix_warm", body),
                            ("build_matrix_new_range", {**body, "start_date": "2015-02-02"})):
            s = time.perf_counter()
            r = http.post(f"{base}/build_matrix", json=req, headers=h)
            elapsed = time.perf_counter() - s
            r.raise_for_status()
            emit(metric, elapsed * 1e3, "ms", r.json().get("rows", 0),
                 target_ms=2000 if metric.endswith("cold") else 300)

        sweep_body = {"model_id": MODEL, "risk_profile": "Balanced", "tag": "first_run", "sweep": SPEC_SWEEP}
        warm = []
        for run in range(1, 6):
            elapsed, state, job = run_sweep(http, base, h, sweep_body)
            if run > 1:
                warm.append(elapsed)
            emit(f"sweep36_run{run}", elapsed, "s", state.get("total_configs", 0), status=state["status"],
                 target_s=10.0 if run == 1 else 2.0, steps=job_steps(job))
        emit("sweep36_warm_p50", statistics.median(warm), "s", len(warm), target_s=2.0)

        elapsed, state, job = run_sweep(http, base, h, {"model_id": MODEL, "risk_profile": "Balanced",
                                                        "tag": "first_run_10k", "sweep": GRID_10K})
        emit("sweep10k", elapsed, "s", state.get("total_configs", 0), status=state["status"], target_s=5.0,
             steps=job_steps(job))
    if naive:
        naive_tune(statistics.median(warm))


def naive_tune(warm_p50: float) -> None:
    """One Ray Tune trial per configuration, each a full single backtest of one configuration."""
    import numpy as np
    import ray
    from ray import tune

    from compute.sweep import make_grid, run_sweep

    rng = np.random.default_rng(0)
    n = 2516
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    score = rng.uniform(0, 1, n)
    grid = [{"threshold": t, "top_pct": p, "hours": tuple(hs)} for t in SPEC_SWEEP["thresholds"]
            for hs in SPEC_SWEEP["allowed_hours"] for p in SPEC_SWEEP["top_pct"]]

    def trial(config):
        cfg = grid[config["i"]]
        g = make_grid(thresholds=[cfg["threshold"]], allowed_hours=[cfg["hours"]])
        res = run_sweep(open_, close, score, g, hours=np.full(n, 9))
        return {"sharpe": float(res.metrics["sharpe"][0])}

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        t0 = time.perf_counter()
        tuner = tune.Tuner(tune.with_resources(trial, {"cpu": 0.5}), param_space={"i": tune.grid_search(list(range(len(grid))))},
                           tune_config=tune.TuneConfig(),
                           run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="naive-tune-"), verbose=0))
        tuner.fit()
        naive_s = time.perf_counter() - t0
    finally:
        ray.shutdown()
    emit("naive_tune_36", naive_s, "s", len(grid), peer="Ray Tune, one trial per configuration",
         warm_sweep_ratio=round(warm_p50 / naive_s, 4), target_ratio=0.03)


def starts(n: int) -> None:
    """Start to healthy, ``n`` times each: a fresh home, then the same home again (a restart),
    and the peer in the same run: a bare ``ray.init(num_cpus=2)`` in a fresh process (Ray's own
    floor, before Serve or Sigma)."""
    import subprocess

    bare = ("import time; t = time.perf_counter(); import ray; ray.init(num_cpus=2, include_dashboard=True); "
            "print(time.perf_counter() - t); ray.shutdown()")
    for _ in range(n):
        with LiveSigma(demo_user="demo_hnw") as first:
            emit("start_to_healthy", first.healthy_s, "s", home="fresh")
        with LiveSigma(home=first.home, password=first.password, demo_user="demo_hnw") as again:
            emit("restart_to_healthy", again.healthy_s, "s", home="same", target_s=15)
        out = subprocess.run([sys.executable, "-c", bare], capture_output=True, text=True, timeout=300,
                             env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
        emit("bare_ray_init", float(out.stdout.strip().splitlines()[-1]), "s", path="ray.init(num_cpus=2), no Sigma")


if __name__ == "__main__":
    if "--starts" in sys.argv:  # only the start-up figures: --starts N
        starts(int(sys.argv[sys.argv.index("--starts") + 1]))
    else:
        user_path(naive="--no-naive" not in sys.argv)
