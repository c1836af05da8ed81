"""ProForma speed, measured through ``sigma serve --demo`` (``_common.LiveSigma``) over HTTP:

- ``session_put_impact``: PUT modifications + the full impact (exposures, sector/tag, Greeks,
  factors, VaR historical and Monte Carlo 20,000 paths, every stress template) on the
  30-position demo_hedgefundstyle book, p50 and p99 over alternating quantities;
- ``session_impact_1000``: the impact of a 1,000-position session (an in-process harness,
  labelled as such: the session service on a book of 1,000 stock and option positions);
- ``hedge_search``: the hedge job over the full candidate set (14 ETFs and their chains,
  max_positions 3) from POST to completed, and candidates evaluated per second, with the
  job's own ``search_seconds``; run at each Ray worker count given (``--cpus``) where the
  harness can vary it (in-process, ``ray.init(num_cpus=n)``).
Prints one JSON object per line, each with the CPU model and the load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LiveSigma, cpu_model, percentile  # noqa: E402
from _common import emit as _emit  # noqa: E402

CPU = cpu_model()


def emit(metric: str, value: float, unit: str, n: int, **extra) -> None:
    _emit("proforma", metric, round(value, 3), unit, n, cpu=CPU, **extra)


def api_path(rounds: int) -> None:
    with LiveSigma(demo_user="demo_hedgefundstyle") as sigma:
        http, h = sigma.http, sigma.headers
        sid = http.post("/modeling/sessions", json={"name": "bench"}, headers=h).json()["data"]["session_id"]
        first = http.get(f"/modeling/sessions/{sid}", headers=h)
        assert first.status_code == 200, first.text
        positions = first.json()["data"]["original_portfolio"]["positions"]
        assert len(positions) == 30, len(positions)
        aapl = next(p for p in positions if p["ticker"] == "AAPL")
        samples = []
        for i in range(rounds):
            qty = aapl["quantity"] + (100 if i % 2 == 0 else 0)
            t = time.perf_counter()
            resp = http.put(f"/modeling/sessions/{sid}/positions", headers=h,
                            json={"modifications": [{"position_id": aapl["id"], "new_quantity": qty}]})
            samples.append((time.perf_counter() - t) * 1000)
            assert resp.status_code == 200, resp.text
        emit("session_put_impact_p50", statistics.median(samples), "ms", rounds, path="sigma serve --demo over HTTP",
             book="demo_hedgefundstyle (30 positions)", mc_paths=20000)
        emit("session_put_impact_p99", percentile(samples, 99), "ms", rounds, path="sigma serve --demo over HTTP")
        for run in ("first", "second"):  # the first pays the hedge workers' start; later ones do not
            t = time.perf_counter()
            job = http.post("/proforma/hedge", headers=h, json={
                "risk_to_hedge": "sector_technology", "budget": 100000,
                "constraints": {"max_positions": 3, "allowed_instruments": ["options", "etfs"]}}).json()["job_id"]
            while True:
                state = http.get(f"/jobs/{job}", headers=h).json()["data"]
                if state["status"] in ("completed", "failed", "cancelled"):
                    break
                time.sleep(0.1)
            wall = time.perf_counter() - t
            assert state["status"] == "completed", state
            result = http.get(f"/jobs/{job}/result", headers=h).json()["data"]["result"]
            emit("hedge_search_wall", wall, "s", 1, path="POST /proforma/hedge to completed, over HTTP", run=run,
                 candidates=result["candidates"], search_seconds=result["search_seconds"],
                 candidates_per_second=result["candidates_per_second"], milp_tasks=result["milp_tasks"],
                 hedges_evaluated=result["hedges_evaluated"], timings=result["timings"])


def in_process(cpus: list[int], n_positions: int) -> None:
    """Impact of a 1,000-position session and the hedge search at several Ray sizes."""
    import datetime as dt
    import tempfile

    import ray

    from cluster.catalog import get_catalog, upgrade_schema
    from cluster.config import Settings
    from cluster.market import market_provider
    from serve_app.users import create_user
    from services.portfolio import service as portfolio_service
    from services.proforma import hedge, service, sessions

    settings = Settings(home=Path(tempfile.mkdtemp(prefix="sigma-bench-")), jwt_secret="x" * 40)
    catalog = get_catalog(settings)
    upgrade_schema(catalog)
    user = create_user(catalog, "bench", "bench-password-123", role="user", tier="pro")
    uid = user.id if hasattr(user, "id") else user["id"]
    provider = market_provider(settings)
    from compute.marketdata.reference import KNOWN_PROFILES

    tickers = [t for t, p in KNOWN_PROFILES.items() if p.model == "factor"][:60]
    rows = []
    for i in range(n_positions):
        t = tickers[i % len(tickers)]
        rows.append({"position_id": f"p{i}", "symbol": f"{t}" if i < len(tickers) else f"{t}", "underlying": t,
                     "type": "LONG", "quantity": float(10 + i), "entry_price": 100.0, "strike": None, "expiry": None,
                     "option_right": None, "multiplier": 1, "strategy": None, "tags": [f"#b{i % 7}"], "entry_date": None})
    from types import SimpleNamespace

    row = SimpleNamespace(id="bench", name="bench", status="active", portfolio_id="pf", cash=0.0, original=rows,
                          modified=[dict(r, quantity=r["quantity"] * (0.5 if j % 3 == 0 else 1.0)) for j, r in enumerate(rows)],
                          created_at=None, updated_at=None)
    service.describe(row, provider, with_positions=False)  # warm
    times = []
    for _ in range(3):
        t = time.perf_counter()
        service.describe(row, provider, with_positions=False)
        times.append(time.perf_counter() - t)
    emit("session_impact_1000", min(times) * 1000, "ms", 3, path="in-process harness (services.proforma.service.describe)",
         positions=n_positions, stat="best of 3")
    for p in ({"ticker": "AAPL", "quantity": 1500, "price": 150}, {"ticker": "MSFT", "quantity": 1000, "price": 300},
              {"ticker": "NVDA", "quantity": 800, "price": 100}, {"ticker": "XOM", "quantity": -2000, "price": 100}):
        portfolio_service.add_position(catalog, uid, p)
    for n in cpus:
        ray.init(num_cpus=n, include_dashboard=False, log_to_driver=False)
        try:
            body = {"risk_to_hedge": "sector_technology", "budget": 100000,
                    "constraints": {"max_positions": 3, "allowed_instruments": ["options", "etfs"]}}
            hedge.search(catalog, provider, uid, body, settings=settings)  # warm the workers
            t = time.perf_counter()
            result = hedge.search(catalog, provider, uid, body, settings=settings)
            wall = time.perf_counter() - t
            emit("hedge_search_in_process", wall, "s", 1, ray_cpus=n, candidates=result["candidates"], timings=result["timings"],
                 candidates_per_second=round(result["candidates"] / wall, 1), path="in-process harness, Ray tasks")
        finally:
            ray.shutdown()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--cpus", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--positions", type=int, default=1000)
    ap.add_argument("--skip-api", action="store_true")
    ap.add_argument("--skip-in-process", action="store_true")
    args = ap.parse_args()
    if not args.skip_api:
        api_path(args.rounds)
    if not args.skip_in_process:
        in_process(args.cpus, args.positions)
