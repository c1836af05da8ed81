"""What every benchmark script shares: the JSON line format and best-of timing."""

from __future__ import annotations

import json
import os
import time


def emit(benchmark: str, metric: str, value, unit: str, n: int, **extra) -> None:
    """One JSON line: benchmark, metric, value, unit, n, the extras, the 1-minute load and threads."""
    record = {"benchmark": benchmark, "metric": metric, "value": value, "unit": unit, "n": n}
    record.update(extra)
    record.setdefault("loadavg_1m", round(os.getloadavg()[0], 2))
    try:
        import numba

        record.setdefault("threads", numba.get_num_threads())
    except ImportError:
        pass
    print(json.dumps(record), flush=True)


def timings(fn, repeats: int = 5) -> tuple[list[float], object]:
    """Seconds of each of ``repeats`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def best_of(fn, repeats: int = 5) -> float:
    """The fastest of ``repeats`` timed calls, in seconds (the least disturbed by other load)."""
    return min(timings(fn, repeats)[0])


# ----------------------------------------------------------------- the user's path: a live Sigma

def cpu_model() -> str:
    """The CPU's model name (every figure names the machine it was measured on)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


# The live service lives in serve_app.live (the restart tests use it too).
from serve_app.live import LiveSigma, free_port  # noqa: E402,F401


def latencies_ms(http, path: str, headers: dict, n: int) -> list[float]:
    """Wall milliseconds of ``n`` sequential GETs of ``path`` (each must answer 200)."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = http.get(path, headers=headers)
        out.append((time.perf_counter() - t0) * 1000)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {path}: {resp.status_code} {resp.text[:200]}")
    return out


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]
