"""Sigma's own metrics, exported through Ray's metrics endpoint (``ray.util.metrics``).

Every Ray node serves Prometheus text on its metrics export port; the Ray dashboard's Metrics
tab and Ray's generated Grafana dashboards read the same series. Ray prefixes custom metrics
with ``ray_``, so ``sigma_request_latency_s`` is scraped as ``ray_sigma_request_latency_s_*``.

| metric | kind | tags |
|---|---|---|
| ``sigma_request_latency_s`` | histogram | route (the path template under /api/v1), method, status |
| ``sigma_rate_limited_total`` | counter | tier |
| ``sigma_jobs`` | gauge | kind, state (``queued``, ``running``) |
| ``sigma_sweep_configs_total`` | counter | (none) |
| ``sigma_sweep_configs_per_second`` | histogram | (none): each finished sweep run's rate |
| ``sigma_sweep_chunk_duration_s`` | histogram | (none): evaluate + store of one chunk |
| ``sigma_webhook_deliveries_total`` | counter | outcome (``delivered``, ``failed``) |

Gauges belong to the process that sets them and vanish from the endpoint when it exits, so
they are set only by long-lived actors (the job manager); what a job or trial measures is a
counter or a histogram, which the node's agent keeps after the worker exits (a sweep's rate is
also ``rate(ray_sigma_sweep_configs_total[1m])``).

Outside a Ray process (router tests on ``local_app``, plain scripts) every call is a no-op.
"""

from __future__ import annotations

import threading
from typing import Iterable

import ray

_LATENCY_BOUNDS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
_CHUNK_BOUNDS_S = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]

_lock = threading.Lock()
_metrics: dict[str, object] = {}

_DEFS = {
    "sigma_request_latency_s": ("histogram", "API request latency in seconds, by route template, method and status",
                                ("route", "method", "status"), _LATENCY_BOUNDS_S),
    "sigma_rate_limited_total": ("counter", "Requests refused with 429 by the rate limiter, by tier", ("tier",), None),
    "sigma_jobs": ("gauge", "Jobs queued or running in the job manager, by kind", ("kind", "state"), None),
    "sigma_sweep_configs_total": ("counter", "Sweep configurations evaluated and stored", (), None),
    "sigma_sweep_configs_per_second": ("histogram", "Configurations per second of each finished sweep run", (),
                                       [10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000]),
    "sigma_sweep_chunk_duration_s": ("histogram", "Seconds to evaluate and store one sweep chunk", (),
                                     _CHUNK_BOUNDS_S),
    "sigma_webhook_deliveries_total": ("counter", "Webhook delivery attempts, by outcome", ("outcome",), None),
}

#: The metric names, for docs and tests.
METRIC_NAMES = tuple(_DEFS)


def _metric(name: str):
    """The metric object for ``name`` in this process (made once), or None outside Ray."""
    if not ray.is_initialized():
        return None
    metric = _metrics.get(name)
    if metric is None:
        with _lock:
            metric = _metrics.get(name)
            if metric is None:
                from ray.util import metrics

                kind, description, tags, bounds = _DEFS[name]
                if kind == "histogram":
                    metric = metrics.Histogram(name, description=description, boundaries=bounds, tag_keys=tags)
                elif kind == "counter":
                    metric = metrics.Counter(name, description=description, tag_keys=tags)
                else:
                    metric = metrics.Gauge(name, description=description, tag_keys=tags)
                _metrics[name] = metric
    return metric


def _safe(fn):
    """Metrics never break the work they measure."""
    def wrapper(*args, **kwargs):
        try:
            fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 - a metrics failure is not the caller's failure
            pass
    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper


@_safe
def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    metric = _metric("sigma_request_latency_s")
    if metric is not None:
        metric.observe(seconds, tags={"route": route, "method": method, "status": str(status)})


@_safe
def count_rate_limited(tier: str) -> None:
    metric = _metric("sigma_rate_limited_total")
    if metric is not None:
        metric.inc(1, tags={"tier": tier})


@_safe
def set_jobs(queued: Iterable[str], running: Iterable[str], known_kinds: set) -> None:
    """Set the job gauges from the kinds of the queued and running jobs. ``known_kinds`` (kept
    by the caller) gets every kind seen, so a kind whose jobs all finished drops to 0."""
    metric = _metric("sigma_jobs")
    if metric is None:
        return
    counts: dict[tuple[str, str], int] = {}
    for state, kinds in (("queued", queued), ("running", running)):
        for kind in kinds:
            known_kinds.add(kind)
            counts[(kind, state)] = counts.get((kind, state), 0) + 1
    for kind in known_kinds:
        for state in ("queued", "running"):
            metric.set(counts.get((kind, state), 0), tags={"kind": kind, "state": state})


@_safe
def observe_chunk(n_configs: int, seconds: float) -> None:
    """One stored sweep chunk: its configurations and its evaluate + store seconds."""
    chunk = _metric("sigma_sweep_chunk_duration_s")
    if chunk is not None:
        chunk.observe(seconds)
        if n_configs:
            _metric("sigma_sweep_configs_total").inc(n_configs)


@_safe
def observe_sweep_rate(configs_per_second: float) -> None:
    metric = _metric("sigma_sweep_configs_per_second")
    if metric is not None:
        metric.observe(configs_per_second)


@_safe
def count_webhook_delivery(delivered: bool) -> None:
    metric = _metric("sigma_webhook_deliveries_total")
    if metric is not None:
        metric.inc(1, tags={"outcome": "delivered" if delivered else "failed"})
