"""A replica warms itself in the background, so the first user request does not pay for it.

A fresh replica process has imported the routes but not the domain: the first feature matrix
used to pay the NYSE calendar's construction, the synthetic factor model and every numba
kernel's cache load and pyarrow's Parquet writer (about 4 s of a cold ``POST /build_matrix``). ``start`` runs that work on a
daemon thread right after the replica starts: nothing waits for it (a request that arrives
first simply does its own loading, as before), and a failure only logs.

It warms on an offline synthetic provider whatever ``SIGMA_MARKET_DATA`` says: it loads code
and calendars, never the user's data, and makes no network call.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

log = logging.getLogger("sigma.warmup")


def warm(activity: "Activity | None" = None) -> float:
    """Load what the first matrix, pricing and risk requests need; returns the seconds taken.
    With the replica's ``activity``, each step waits while a request is in flight (at most
    ``YIELD_MAX_S``): in one process the warm-up thread and a request share the GIL, and the
    request, the dashboard's first view, should not wait for warm-up work it does not need."""
    started = time.perf_counter()

    def step() -> None:
        if activity is not None:
            activity.wait_idle(YIELD_MAX_S)

    step()
    import numpy as np

    from compute.features import build_matrix_from_provider
    from compute.greeks import bsm_greeks
    from compute.marketdata.calendar import all_sessions
    from compute.marketdata.synthetic import SyntheticProvider
    from services.warmup import warm_book, warm_charts

    import services.lab.matrices  # noqa: F401 - the domain modules the routes reach
    import services.portfolio.views  # noqa: F401
    import services.risk.service  # noqa: F401

    step()
    all_sessions()
    provider = SyntheticProvider(seed=0)
    # what the dashboard's first page asks for first: a priced book, its views and charts
    step()
    warm_book(provider)
    step()
    warm_charts()
    end = provider.now().date()
    step()
    build_matrix_from_provider(provider, "swingsigma", ["SPY"], end - dt.timedelta(days=400), end,
                               ["close", "volume", "RSI", "MACD", "BB", "ATR"])
    import io

    import pandas as pd

    import cluster.artifacts  # noqa: F401 - the store a matrix is written to
    step()
    buffer = io.BytesIO()
    pd.DataFrame({"x": np.arange(3.0)}).to_parquet(buffer)       # pyarrow's Parquet writer
    pd.read_parquet(io.BytesIO(buffer.getvalue()))
    spot = np.full(4, 100.0)
    bsm_greeks(spot, np.array([90.0, 100.0, 110.0, 120.0]), np.full(4, 0.25), 0.045, 0.0, np.full(4, 0.2),
               np.array([True, False, True, False]))
    return time.perf_counter() - started


#: How long a replica waits for its first request before warming anyway (a deploy nobody calls yet).
SERVE_WAIT_S = 5.0
#: Each step of the replica's warm-up waits at most this long for the requests in flight to end.
YIELD_MAX_S = 3.0
#: The job workers' warm-up waits until no request has been in flight for this long ...
QUIET_S = 2.0
#: ... or at most this long after the replica's own warm-up (an API that is never quiet).
QUIET_WAIT_MAX_S = 60.0


class Activity:
    """The replica's requests as the warm-up sees them: ``serving`` is set once the first one
    has been answered; ``quiet_for()`` is how long no request has been in flight. Updated by
    the middleware on the event loop, read by the warm-up thread."""

    def __init__(self) -> None:
        self.serving = threading.Event()
        self.in_flight = 0
        self.last_end = time.monotonic()

    def begin(self) -> None:
        self.in_flight += 1

    def end(self) -> None:
        self.in_flight -= 1
        self.last_end = time.monotonic()
        self.serving.set()

    def quiet_for(self) -> float:
        return 0.0 if self.in_flight > 0 else time.monotonic() - self.last_end

    def wait_idle(self, max_wait_s: float) -> None:
        """Block while a request is in flight, at most ``max_wait_s`` seconds."""
        deadline = time.monotonic() + max_wait_s
        while self.in_flight > 0 and time.monotonic() < deadline:
            time.sleep(0.01)

    def wait_quiet(self, quiet_s: float, max_wait_s: float) -> float:
        """Block until ``quiet_for() >= quiet_s`` or ``max_wait_s`` has passed; returns the wait."""
        started = time.monotonic()
        while (waited := time.monotonic() - started) < max_wait_s:
            quiet = self.quiet_for()
            if quiet >= quiet_s:
                break
            time.sleep(min(0.25, quiet_s - quiet))
        return waited


def ask_for_warm_workers(job_manager, count: int | None) -> None:
    """``job_manager.warm_workers`` (all of them with ``count`` None); never raises: like the
    warm-up itself, it only saves time later."""
    try:
        job_manager.warm_workers.remote(*(() if count is None else (count,)))
    except Exception:  # noqa: BLE001
        log.exception("could not ask the job manager to warm its workers")


def start(activity: Activity | None = None, job_manager=None, wait_s: float = SERVE_WAIT_S,
          quiet_s: float = QUIET_S, quiet_wait_max_s: float = QUIET_WAIT_MAX_S) -> threading.Thread:
    """Warm on a daemon thread; returns it (tests may join it; its ``warmed`` event is set once
    the replica itself is warm).

    With ``activity``, the thread waits for the replica's first answer, or at most ``wait_s``
    seconds, so the warm-up starts once the replica is up and routed instead of competing with
    its start (measured on two cores: warming beside the replica's construction delayed the
    healthy API by 2-3 s). Then, the replica warm, it asks ``job_manager`` for one warm job
    worker at once (``warm_workers(1)``: one process beside the replica on two cores; the first
    report or backtest after a start is often asked for within seconds; ``sigma serve`` has
    asked for it already when the API first answered, so this matters under ``serve run``,
    and a second ask starts nothing) and for the rest once
    the API has been quiet for ``quiet_s`` (or after ``quiet_wait_max_s``): those workers import
    every area and load the numba caches at Ray's worker priority, above the API replica's
    (``SIGMA_INGRESS_NICE``), and on two cores two of them at once took the CPU from the
    dashboard's first views (0.5-3.6 s each on AMD EPYC with the warm-up beside them). A job
    submitted before a warm worker is free starts its own worker, as it would without any
    warm-up."""
    warmed = threading.Event()

    def run():
        if activity is not None:
            activity.serving.wait(wait_s)
        try:
            log.info("replica warm-up done in %.2f s", warm(activity))
        except Exception:  # noqa: BLE001 - warming only saves time; it must never stop a replica
            log.exception("replica warm-up failed (the first requests will load what they need)")
        warmed.set()
        if job_manager is None:
            return
        ask_for_warm_workers(job_manager, 1)
        if activity is not None:
            activity.wait_quiet(quiet_s, quiet_wait_max_s)
        ask_for_warm_workers(job_manager, None)

    thread = threading.Thread(target=run, name="sigma-warmup", daemon=True)
    thread.warmed = warmed
    thread.start()
    return thread
