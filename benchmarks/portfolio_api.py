"""GET /api/v1/portfolio latency on the user's path, beside a no-op route in the same run.

Starts Sigma as ``make run`` does (``sigma serve --demo`` in its own process, fresh
``SIGMA_HOME``; ``benchmarks/_common.LiveSigma``), logs in as ``demo_hedgefundstyle`` (30
positions with options) and times over HTTP:
- ``portfolio_get_cold``: the first GET (the priced book is built: quotes, chains, Greeks);
- ``noop_get`` / ``portfolio_get`` / ``positions_get`` / ``tags_get``: interleaved rounds of
  GET /auth/me (authenticated no-op: auth, rate limit, envelope and nothing else), GET
  /portfolio, GET /positions and GET /tags, p50 and p99 each, and the ratios of /portfolio's
  p50 and p99 to the no-op's (targets: <= 2x and <= 3x);
- in-process harness (labelled as such): ``sharded_aggregate``: exposure and Greek partials
  of a 2,000,000-position book over 2 ``BookShard`` actors vs ``aggregate_book``.
Prints one JSON object per line, each with the CPU model and the load.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LiveSigma, cpu_model, percentile  # noqa: E402
from _common import emit as _emit  # noqa: E402

CPU = cpu_model()
ROUTES = {"noop_get": "/auth/me", "portfolio_get": "/portfolio", "positions_get": "/positions", "tags_get": "/tags"}


def emit(metric: str, value: float, unit: str, n: int, **extra) -> None:
    _emit("portfolio_api", metric, round(value, 3), unit, n, cpu=CPU, **extra)


def api_path() -> None:
    with LiveSigma(demo_user="demo_hedgefundstyle") as sigma:
        http, h = sigma.http, sigma.headers
        t0 = time.perf_counter()
        first = http.get("/portfolio", headers=h)
        cold_ms = (time.perf_counter() - t0) * 1000
        assert first.status_code == 200 and first.json()["data"]["position_count"] == 30, first.text
        emit("portfolio_get_cold", cold_ms, "ms", 1, path="sigma serve --demo over HTTP",
             cache_status=first.json()["meta"]["cache_status"])
        for path in ROUTES.values():      # warm every route once
            for _ in range(5):
                http.get(path, headers=h)
        samples = {name: [] for name in ROUTES}
        for _ in range(40):               # interleaved: a load spike hits every route alike
            for name, path in ROUTES.items():
                for _ in range(5):
                    t = time.perf_counter()
                    resp = http.get(path, headers=h)
                    samples[name].append((time.perf_counter() - t) * 1000)
                    assert resp.status_code == 200, resp.text
        noop50, noop99 = statistics.median(samples["noop_get"]), percentile(samples["noop_get"], 99)
        for name, values in samples.items():
            p50, p99 = statistics.median(values), percentile(values, 99)
            extra = {}
            if name == "portfolio_get":
                extra = {"p50_vs_noop": round(p50 / noop50, 3), "p99_vs_noop": round(p99 / noop99, 3),
                         "target_p50_vs_noop": 2.0, "target_p99_vs_noop": 3.0}
            emit(f"{name}_p50", p50, "ms", len(values), route=f"GET {ROUTES[name]}", path="sigma serve --demo over HTTP",
                 **extra)
            emit(f"{name}_p99", p99, "ms", len(values), route=f"GET {ROUTES[name]}", path="sigma serve --demo over HTTP")
        server = [http.get("/portfolio", headers=h).json()["meta"]["execution_time_ms"] for _ in range(20)]
        emit("portfolio_get_server_p50", statistics.median(server), "ms", len(server),
             note="execution_time_ms inside the app")


def sharded_aggregate() -> None:
    """In-process harness (not the user's path): the sharded book against one process."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, namespace="sigma_bench", log_to_driver=False)
    try:
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
        emit("aggregate_single_process", single_s, "s", n, path="in-process harness")
        emit("aggregate_sharded_2_actors", sharded_s, "s", n, path="in-process harness", equal_to_single=bool(same),
             note="actors hold their slices; time = partials + merge (labels factorised in each actor)")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    api_path()
    sharded_aggregate()
