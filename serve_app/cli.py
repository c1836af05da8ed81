"""``sigma``: serve the API, report status, manage users."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

import httpx


def _settings(args):
    from cluster.config import Settings

    overrides = {}
    for name in ("host", "port"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def prepare_catalog(settings):
    from cluster.catalog import prepare_catalog as prepare

    return prepare(settings)


def cmd_serve(args) -> int:
    import os

    from cluster.runtime import haproxy_env, ingress_mode, reap_orphaned_haproxy

    # the ingress is chosen before Ray Serve is imported or started: its switches are read once
    ingress = "proxy" if args.address else ingress_mode(_settings(args))
    if ingress == "haproxy":
        stopped = reap_orphaned_haproxy()
        if stopped:
            print(f"Stopped an HAProxy left by a killed service (pid {', '.join(map(str, stopped))})", flush=True)
        os.environ.update(haproxy_env())
    from ray import serve

    from cluster.runtime import alive_nodes, ensure_ray
    from serve_app.users import seed_demo_users

    from cluster.config import redact_url, require_shared_storage

    settings = _settings(args)
    # The catalog's migrations and the demo logins before Ray starts (a bad database URL fails
    # at once); the demo books and Lab models on a thread while Ray and Serve start. Measured:
    # moving the logins (bcrypt, about a second) onto that thread too made no start faster on
    # two cores, whose Ray start-up is CPU-bound anyway.
    catalog = prepare_catalog(settings)
    creds = seed_demo_users(catalog, settings) if args.demo else {}
    seeding = _start_seeding(catalog, settings) if args.demo else None
    ray_info = None
    try:
        print(f"Starting Ray ({'joining ' + args.address if args.address else 'local, ' + str(settings.num_cpus) + ' CPUs'}) ...", flush=True)
        ray_info = ensure_ray(settings, address=args.address, include_dashboard=not args.no_dashboard, ingress=ingress)
        require_shared_storage(settings, alive_nodes())
        _start_service_actors(settings)
        serve.start(http_options={"host": settings.host, "port": settings.port})
        from serve_app.app import build_app

        serve.run(build_app(settings), name="sigma", route_prefix="/", blocking=False)
        try:
            wait_healthy(settings.api_url, timeout=120)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        if seeding is not None:
            seeding.result()  # re-raises what the seeding raised
        # the first warm job worker as soon as the API answers, so the first report or backtest
        # finds it ready; not while the replica is built: beside it, at Ray's worker priority
        # above the replica's, it cost the start 2-3 s (measured on two cores)
        from cluster.jobs import get_job_manager

        get_job_manager(settings).warm_workers.remote(1)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            print("Stopping Sigma (interrupted while starting) ...", flush=True)
        if ray_info and ray_info.get("started"):
            import ray

            ray.shutdown()
        if isinstance(exc, KeyboardInterrupt):
            return 130
        raise
    from services.risk.batch import next_scheduled_run, start_scheduler

    start_scheduler(settings)

    print("")
    print(f"Sigma API:      {settings.api_url}")
    print(f"API docs:       {settings.api_url}/docs")
    print(f"Dashboard:      {settings.api_url.removesuffix('/api/v1')}/app")
    print(f"Ray dashboard:  {ray_info.get('dashboard_url') or 'disabled'}")
    print(f"HTTP ingress:   {ray_info.get('ingress')} (SIGMA_INGRESS)")
    print(f"Metrics:        {ray_info.get('metrics_url') or 'see the Ray nodes (--metrics-export-port)'} "
          "(Prometheus; Grafana: docs/deploy.md#metrics)")
    print(f"Catalog:        {redact_url(settings.resolved_database_url)}")
    print(f"Artifacts:      {settings.resolved_storage_url}")
    print(f"Market data:    {settings.market_data}")
    import datetime as dt

    _, next_run = next_scheduled_run(dt.datetime.now(dt.timezone.utc))
    print(f"Daily batch:    next run {next_run.isoformat()} (after the close, on trading days)")
    if creds:
        # Passwords never reach a log: a generated one is shown on an interactive terminal
        # only; otherwise the banner names where it is (a 0600 file, or the setting).
        interactive = sys.stdout.isatty()
        print("Demo logins (demo mode only):")
        for user, login in creds.items():
            if login.generated and interactive:
                shown = login.password
            elif login.generated:
                shown = f"password in {login.source} (mode 0600)"
            else:
                shown = f"password from {login.source}"
            print(f"  {user:22s} {shown}")
    print("Press Ctrl-C to stop.", flush=True)

    stop = {"flag": False}

    def _stop(*_):
        stop["flag"] = True

    # Explicit handlers: a shell that starts us in the background hands down SIGINT ignored.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stop["flag"]:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    print("Stopping Sigma ...", flush=True)
    if ray_info.get("started"):
        serve.shutdown()
    else:
        serve.delete("sigma")
    return 0


def _start_service_actors(settings) -> None:
    """The rate limiter and the job manager (named, detached: the API replica finds them) asked
    for now, so their processes start beside Serve's controller, whose start leaves a core idle
    part of the time, rather than after the replica asks for them."""
    from cluster.jobs import get_job_manager
    from cluster.ratelimit import get_rate_limiter

    get_rate_limiter(settings.tier_limits())
    get_job_manager(settings)


def _start_seeding(catalog, settings):
    """Seed the demo books and Lab models on a thread while Ray and Serve start (seconds each
    on 2 cores); a future whose ``result()`` re-raises what the seeding raised."""
    from concurrent.futures import ThreadPoolExecutor

    from serve_app.demo import seed_demo_data

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sigma-demo-seed")
    future = pool.submit(seed_demo_data, catalog, settings)
    pool.shutdown(wait=False)
    return future


def wait_healthy(api_url: str, timeout: float = 120) -> None:
    """Poll ``<api_url>/healthz`` until it answers 200; RuntimeError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            resp = httpx.get(f"{api_url}/healthz", timeout=5)
            if resp.status_code == 200:
                return
            last = resp.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    raise RuntimeError(f"Sigma did not become ready at {api_url} within {timeout:.0f} s (last: {last})")


def cmd_status(args) -> int:
    settings = _settings(args)
    out: dict = {"api_url": settings.api_url}
    try:
        resp = httpx.get(f"{settings.api_url}/healthz", timeout=10)
        out["api"] = resp.json()
    except httpx.HTTPError as exc:
        out["api"] = {"status": "down", "error": str(exc)}
    dashboard = f"http://127.0.0.1:{settings.dashboard_port}"
    try:
        resp = httpx.get(f"{dashboard}/api/serve/applications/", timeout=10)
        apps = resp.json().get("applications", {})
        out["serve"] = {name: app.get("status") for name, app in apps.items()}
        out["dashboard_url"] = dashboard
    except (httpx.HTTPError, ValueError) as exc:
        out["serve"] = {"status": "unknown", "error": f"dashboard not reachable at {dashboard}: {exc}"}
    print(json.dumps(out, indent=2))
    return 0 if out["api"].get("status") in ("healthy", "degraded") else 1


def cmd_users_add(args) -> int:
    from serve_app.users import create_user

    settings = _settings(args)
    catalog = prepare_catalog(settings)
    password = args.password or _read_password()
    create_user(catalog, args.username, password, role=args.role, tier=args.tier, update=args.update)
    print(f"user {args.username} saved (role {args.role}, tier {args.tier})")
    return 0


def _read_password() -> str:
    import getpass

    return getpass.getpass("password: ")


def cmd_migrate(args) -> int:
    prepare_catalog(_settings(args))
    print("catalog schema is up to date")
    return 0


def cmd_warm(args) -> int:
    """Compile (or load) every kernel the API and the jobs use into the machine's numba cache,
    so no start, home or worker compiles again (``make install`` runs it)."""
    import os

    settings = _settings(args)
    cache = settings.resolved_numba_cache_dir
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache))  # before numba is first imported
    started = time.perf_counter()
    from cluster.jobs import warm_up_areas
    from serve_app.warmup import warm

    warm()
    warm_up_areas(None)
    print(f"numba kernels compiled or loaded in {time.perf_counter() - started:.1f} s (cache: {os.environ['NUMBA_CACHE_DIR']})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sigma", description="Sigma quant platform")
    sub = parser.add_subparsers(dest="command", required=True)

    serve_p = sub.add_parser("serve", help="start (or join) Ray and serve the API until Ctrl-C")
    serve_p.add_argument("--address", help="join an existing Ray cluster (e.g. auto or ray://head:10001)")
    serve_p.add_argument("--host", default=None)
    serve_p.add_argument("--port", type=int, default=None)
    serve_p.add_argument("--demo", action="store_true", help="seed demo users, portfolios and Lab models")
    serve_p.add_argument("--no-dashboard", action="store_true", help="do not start the Ray dashboard")
    serve_p.set_defaults(func=cmd_serve)

    status_p = sub.add_parser("status", help="report what is running")
    status_p.add_argument("--host", default=None)
    status_p.add_argument("--port", type=int, default=None)
    status_p.set_defaults(func=cmd_status)

    users_p = sub.add_parser("users", help="manage users")
    users_sub = users_p.add_subparsers(dest="users_command", required=True)
    add_p = users_sub.add_parser("add", help="create (or with --update, reset) a user")
    add_p.add_argument("username")
    add_p.add_argument("--password", help="read from the terminal when omitted")
    add_p.add_argument("--role", default="user", choices=["user", "admin"])
    add_p.add_argument("--tier", default="free", choices=["free", "basic", "pro", "enterprise"])
    add_p.add_argument("--update", action="store_true")
    add_p.set_defaults(func=cmd_users_add)

    warm_p = sub.add_parser("warm", help="compile every numba kernel into the machine's cache (make install runs it)")
    warm_p.set_defaults(func=cmd_warm)

    mig_p = sub.add_parser("migrate", help="apply catalog schema migrations")
    mig_p.set_defaults(func=cmd_migrate)

    from serve_app.batch_cli import add_batch_commands

    add_batch_commands(sub)
    from serve_app.sweep_cli import add_sweep_commands

    add_sweep_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"sigma: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
