"""POST /api/v1/ai/interpret latency on the user's path, beside a no-op route in the same run.

Starts Sigma as ``make run`` does (``sigma serve --demo`` in its own process, fresh
``SIGMA_HOME``; ``benchmarks/_common.LiveSigma``), logs in as ``demo_hedgefundstyle`` (30
positions with options) and times over HTTP, in interleaved rounds (a load spike hits both
alike):

- ``noop_get``: GET /auth/me (authenticated no-op: auth, rate limit, envelope);
- ``interpret``: POST /ai/interpret over a fixed set of requests (reduce exposure, expiring
  options, risk, exposure by tag, a what-if trade, a vague one that gets a question), each
  answered from the user's priced book (deterministic parser, no LLM backend);

p50 and p99 each, and the p50 over the no-op's (target: interpret p50 < 20 ms).
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
QUERIES = ("Reduce my tech exposure to 15 %", "which options expire this week?", "Show me my biggest risks today",
           "show exposure by sector", "what if I buy 100 AAPL", "tell me something")
ROUNDS = 30


def emit(metric: str, value: float, unit: str, n: int, **extra) -> None:
    _emit("ai_interpret", metric, round(value, 3), unit, n, cpu=CPU, **extra)


def main() -> None:
    with LiveSigma(demo_user="demo_hedgefundstyle") as sigma:
        http, h = sigma.http, sigma.headers
        for q in QUERIES:  # warm: the priced book, the regexes, the route
            resp = http.post("/ai/interpret", json={"query": q}, headers=h)
            assert resp.status_code == 200, resp.text
        samples: dict[str, list[float]] = {"noop_get": [], "interpret": []}
        for _ in range(ROUNDS):
            for _ in range(len(QUERIES)):
                t = time.perf_counter()
                resp = http.get("/auth/me", headers=h)
                samples["noop_get"].append((time.perf_counter() - t) * 1000)
                assert resp.status_code == 200, resp.text
            for q in QUERIES:
                t = time.perf_counter()
                resp = http.post("/ai/interpret", json={"query": q}, headers=h)
                samples["interpret"].append((time.perf_counter() - t) * 1000)
                assert resp.status_code == 200, resp.text
        noop50 = statistics.median(samples["noop_get"])
        for name, values in samples.items():
            p50 = statistics.median(values)
            extra = {"p50_over_noop": round(p50 / noop50, 2), "target_p50_ms": 20} if name == "interpret" else {}
            emit(f"{name}_p50", p50, "ms", len(values), path="sigma serve --demo over HTTP", **extra)
            emit(f"{name}_p99", percentile(values, 99), "ms", len(values), path="sigma serve --demo over HTTP")


if __name__ == "__main__":
    main()
