"""GET /api/v1/portfolio latency through a real Ray Serve app (demo hedge-fund book, 30 positions).

Starts a local Ray (2 CPUs) and the Sigma Serve app on a free port with a temporary SQLite
catalog, seeds the demo users and portfolios, logs in, then times:
- ``portfolio_get_cold``: the first GET (the priced book is built: quotes, chains, Greeks);
- ``portfolio_get``: 200 GETs (priced book served from the per-process cache), p50 and p99;
- ``baseline_tags_get``: 100 GETs of /tags (auth, rate limit, one small query): the floor;
- ``positions_get``: 100 GETs of /positions (30 rows with Greeks), p50;
- ``sharded_aggregate``: exposure and Greek partials of a 2,000,000-position book over 2
  ``BookShard`` actors vs the single-process ``aggregate_book`` on the same arrays.
Prints one JSON object per line. Runs in well under a minute after Ray has started.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402


def emit(metric: str, value: float, unit: str, n: int, **extra) -> None:
    print(json.dumps({"benchmark": "portfolio_api", "metric": metric, "value": round(value, 3), "unit": unit, "n": n, **extra}), flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    import ray
    from ray import serve

    from cluster.catalog import get_catalog, upgrade_schema
    from cluster.config import Settings
    from serve_app import demo_portfolio
    from serve_app.app import build_app
    from serve_app.cli import wait_healthy
    from serve_app.users import seed_demo_users

    home = Path(tempfile.mkdtemp(prefix="sigma_bench_"))
    port = free_port()
    password = secrets.token_urlsafe(12)
    settings = Settings(home=home, host="127.0.0.1", port=port, jwt_secret=secrets.token_urlsafe(32),
                        demo_password=password, admin_password=secrets.token_urlsafe(12),
                        ingress_num_cpus=0.25, job_num_cpus=0.5)
    catalog = get_catalog(settings)
    upgrade_schema(catalog)
    seed_demo_users(catalog, settings)
    demo_portfolio.seed(catalog, settings)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(tempfile.gettempdir()) / "sigma_numba_cache"))
    ray.init(num_cpus=2, include_dashboard=False, namespace="sigma_bench", log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(settings), name="sigma", route_prefix="/", blocking=False)
        base = f"http://127.0.0.1:{port}/api/v1"
        client = httpx.Client(base_url=base, timeout=60)
        wait_healthy(base)
        token = client.post("/auth/token", json={"username": "demo_hedgefundstyle", "password": password}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        started = time.perf_counter()
        first = client.get("/portfolio", headers=headers)
        cold_ms = (time.perf_counter() - started) * 1000
        assert first.status_code == 200 and first.json()["data"]["position_count"] == 30, first.text
        emit("portfolio_get_cold", cold_ms, "ms", 1, cache_status=first.json()["meta"]["cache_status"])

        for _ in range(10):
            client.get("/portfolio", headers=headers)
        timings, statuses = [], set()
        for _ in range(200):
            t0 = time.perf_counter()
            resp = client.get("/portfolio", headers=headers)
            timings.append((time.perf_counter() - t0) * 1000)
            statuses.add(resp.json()["meta"]["cache_status"])
        emit("portfolio_get_p50", statistics.median(timings), "ms", len(timings), target_ms=20, cache_status=sorted(statuses))
        emit("portfolio_get_p99", percentile(timings, 99), "ms", len(timings))
        server = [client.get("/portfolio", headers=headers).json()["meta"]["execution_time_ms"] for _ in range(20)]
        emit("portfolio_get_server_p50", statistics.median(server), "ms", len(server), note="execution_time_ms inside the app")

        timings = []
        for _ in range(100):
            t0 = time.perf_counter()
            client.get("/tags", headers=headers)
            timings.append((time.perf_counter() - t0) * 1000)
        emit("baseline_tags_get_p50", statistics.median(timings), "ms", len(timings),
             note="authenticated, rate-limited route with one small query: the platform floor")

        timings = []
        for _ in range(100):
            t0 = time.perf_counter()
            client.get("/positions", headers=headers)
            timings.append((time.perf_counter() - t0) * 1000)
        emit("positions_get_p50", statistics.median(timings), "ms", len(timings))
        client.close()
        serve.shutdown()

        import numpy as np

        from services.portfolio.shards import BookArrays, ShardedBook, aggregate_book

        n = 2_000_000
        rng = np.random.default_rng(0)
        arrays = BookArrays(
            market_value=rng.normal(0, 1e4, n), delta_exposure=rng.normal(0, 1e4, n),
            greeks={c: rng.normal(0, 100, n) for c in ("position_delta", "position_gamma", "position_theta", "position_vega", "position_rho", "dollar_delta")},
            labels={"type": list(rng.choice(["LONG", "SHORT", "LC", "SP"], n)), "sector": list(rng.choice(["Tech", "Energy", "Health"], n))},
            tags=[[f"t{i % 50}"] for i in range(n)],
        )
        t0 = time.perf_counter()
        single = aggregate_book(arrays)
        single_s = time.perf_counter() - t0
        sharded = ShardedBook.from_frame(arrays, n_shards=2, spread=False)
        sharded.aggregate()  # warm the actors (imports, numba)
        t0 = time.perf_counter()
        merged = sharded.aggregate()
        sharded_s = time.perf_counter() - t0
        sharded.shutdown()
        same = abs(merged["total"]["notional"]["gross"] - single["total"]["notional"]["gross"]) <= 1e-9 * single["total"]["notional"]["gross"]
        emit("aggregate_single_process", single_s, "s", n)
        emit("aggregate_sharded_2_actors", sharded_s, "s", n, equal_to_single=bool(same),
             note="actors hold their slices; time = partials + merge (labels factorised in each actor)")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
