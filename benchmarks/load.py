"""Fifty users at once through ``sigma serve --demo`` (issue 18): requests/s and p50/p95/p99 by
route, with and without a sweep running, beside a no-op route in the same run.

Starts Sigma as ``make run`` does (``serve_app.live.LiveSigma``: ``sigma serve --demo``, its own
process, a fresh ``SIGMA_HOME``), logs in the three demo users (tier pro) and runs 50 asyncio
clients (aiohttp, one keep-alive connection each), each looping over the mix: GET /portfolio, /positions, /risk/greeks, /market/quotes,
/leaderboard, /models, /portfolio/summary and the no-op GET /auth/me. The rate limits are
raised for the run (``SIGMA_RATE_LIMITS``) so the figures are latency, not 429s; any non-200
is counted as an error.

Phases: ``solo_sweep`` (a 20,000-configuration sweep alone, the second after the start: the
first pays the cold costs and is reported beside it), ``load`` (the clients alone for
``--seconds``), ``load_with_sweep`` (the clients while the same sweep runs again; the sweep's
time is reported beside its solo time). One JSON object per line.

Run: ``.venv/bin/python benchmarks/load.py [--seconds 60] [--users 50]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LiveSigma, cpu_model, percentile  # noqa: E402

CPU = cpu_model()
USERS = ("demo_individual", "demo_hnw", "demo_hedgefundstyle")
ROUTES = {
    "GET /portfolio": "/portfolio",
    "GET /positions": "/positions",
    "GET /risk/greeks": "/risk/greeks",
    "GET /market/quotes": "/market/quotes?symbols=AAPL,MSFT,SPY",
    "GET /leaderboard": "/leaderboard?limit=20",
    "GET /models": "/models",
    "GET /portfolio/summary": "/portfolio/summary",
    "GET /auth/me (no-op)": "/auth/me",
}
MODEL = "MSFT_equity_5d_daily"
SWEEP = {"thresholds": [round(0.50 + 0.2 * i / 199, 4) for i in range(200)],
         "exit_thresholds": [round(0.45 + 0.05 * i / 9, 4) for i in range(10)],
         "fees_bps": [0, 1, 2, 5, 7.5, 10, 15, 20, 25, 30]}  # 20,000 configurations


def emit(metric, value, unit, n=1, **extra):
    row = {"benchmark": "load", "metric": metric, "value": round(float(value), 3), "unit": unit, "n": n,
           "path": "sigma serve --demo over HTTP", "cpu": CPU, "loadavg_1m": round(os.getloadavg()[0], 2)}
    row.update(extra)
    print(json.dumps(row), flush=True)


async def client(session, base: str, headers: dict, stop_at: float, samples: dict, errors: dict, offset: int) -> None:
    names = list(ROUTES)
    i = offset
    while time.perf_counter() < stop_at:
        name = names[i % len(names)]
        i += 1
        t0 = time.perf_counter()
        try:
            async with session.get(base + ROUTES[name], headers=headers) as resp:
                await resp.read()
                ok = resp.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            ok = False
        samples[name].append((time.perf_counter() - t0) * 1000)
        if not ok:
            errors[name] = errors.get(name, 0) + 1


async def load_phase(base: str, tokens: list[dict], seconds: float, users: int) -> tuple[dict, dict, float]:
    samples = {name: [] for name in ROUTES}
    errors: dict = {}
    started = time.perf_counter()
    stop_at = started + seconds
    # one keep-alive connection per user; aiohttp's C parser keeps the load generator's own CPU
    # (it shares the machine's cores with Sigma) well below the server's
    connector = aiohttp.TCPConnector(limit=users, limit_per_host=users)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(client(session, base, tokens[k % len(tokens)], stop_at, samples, errors, k)
                               for k in range(users)))
    return samples, errors, time.perf_counter() - started


def report(phase: str, samples: dict, errors: dict, elapsed: float, users: int) -> None:
    every = [x for xs in samples.values() for x in xs]
    emit(f"{phase}_requests_per_s", len(every) / elapsed, "req/s", len(every), users=users, seconds=round(elapsed, 1),
         errors=sum(errors.values()), target=">= 150 req/s, 0 errors")
    emit(f"{phase}_all_routes_p99", percentile(every, 99), "ms", len(every), p50=round(percentile(every, 50), 1),
         p95=round(percentile(every, 95), 1), target_ms=1000 if phase == "load" else 2000)
    for name, xs in samples.items():
        if xs:
            emit(f"{phase}_route", percentile(xs, 50), "ms p50", len(xs), route=name,
                 p95=round(percentile(xs, 95), 1), p99=round(percentile(xs, 99), 1), errors=errors.get(name, 0))


def run_sweep(http: httpx.Client, headers: dict) -> tuple[float, dict]:
    t0 = time.perf_counter()
    resp = http.post("/backtest_sweep", json={"model_id": MODEL, "sweep": SWEEP, "tag": "load"}, headers=headers)
    resp.raise_for_status()
    sweep_id = resp.json()["sweep_id"]
    while True:
        view = http.get(f"/backtest_sweep/{sweep_id}", headers=headers).json()
        if view["status"] in ("completed", "failed", "cancelled"):
            return time.perf_counter() - t0, view
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--replicas", type=int, default=None,
                        help="a fixed number of API replicas (default: Sigma's own autoscaling, 1 to 2)")
    args = parser.parse_args()
    limits = json.dumps({t: {"per_minute": 10_000_000, "per_hour": 100_000_000} for t in ("free", "basic", "pro")})
    env = {"SIGMA_RATE_LIMITS": limits}
    if args.replicas:
        env["SIGMA_INGRESS_REPLICAS"] = env["SIGMA_INGRESS_MAX_REPLICAS"] = str(args.replicas)
    with LiveSigma(extra_env=env) as sigma:
        emit("ingress_replicas", args.replicas or 0, "replicas", 1,
             note="0: autoscaling (SIGMA_INGRESS_REPLICAS to SIGMA_INGRESS_MAX_REPLICAS, 1 to 2 by default)")
        tokens = [sigma.login(u) for u in USERS]
        h = sigma.headers
        sigma.http.post("/build_matrix", json={"model_id": MODEL, "start_date": "2015-01-01", "end_date": "2024-12-31"},
                        headers=h).raise_for_status()
        for path in ROUTES.values():  # every route once per user: caches and imports warm
            for t in tokens:
                sigma.http.get(path, headers=t)
        # the first sweep after a start pays its cold costs (job workers, the warm chunk runner,
        # the walk-forward inputs): the solo figure is the second, as the one under load is
        first_s, _ = run_sweep(sigma.http, h)
        solo_s, view = run_sweep(sigma.http, h)
        emit("solo_sweep", solo_s, "s", view["total_configs"], status=view["status"], first_sweep_s=round(first_s, 3))

        samples, errors, elapsed = asyncio.run(load_phase(sigma.base, tokens, args.seconds, args.users))
        report("load", samples, errors, elapsed, args.users)

        result = {}

        def sweep_in_thread():
            with httpx.Client(base_url=sigma.base, timeout=120) as http:
                result["s"], result["view"] = run_sweep(http, h)

        import threading

        thread = threading.Thread(target=sweep_in_thread)
        thread.start()
        samples, errors, elapsed = asyncio.run(load_phase(sigma.base, tokens, args.seconds, args.users))
        thread.join()
        report("load_with_sweep", samples, errors, elapsed, args.users)
        emit("sweep_under_load", result["s"], "s", result["view"]["total_configs"], status=result["view"]["status"],
             vs_solo=round(result["s"] / solo_s, 2), target_vs_solo=1.5,
             note="the sweep started with the load; the load phase may end before it")


if __name__ == "__main__":
    main()
