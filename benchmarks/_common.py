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
