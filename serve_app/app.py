"""The FastAPI app under /api/v1 and the Ray Serve application that hosts it."""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI
from ray import serve

from cluster.config import Settings
from cluster.runtime import ON_HEAD_NODE, head_offers_cpus
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import install_error_handlers
from serve_app.middleware import install_middleware
from serve_app.state import AppState, LocalLimiter

API_PREFIX = "/api/v1"

log = logging.getLogger("sigma.app")


def api_router() -> APIRouter:
    """Every module in serve_app/routes with a ``router`` (one per resource), in name order."""
    import importlib
    import pkgutil

    import serve_app.routes as routes

    router = APIRouter(prefix=API_PREFIX)
    for info in sorted(pkgutil.iter_modules(routes.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"serve_app.routes.{info.name}")
        if hasattr(module, "router"):
            router.include_router(module.router)
    return router


def create_app(state: AppState) -> FastAPI:
    app = FastAPI(
        title="Sigma",
        version="0.1.0",
        description="Lab (feature matrices, training, backtests, sweeps, leaderboard) and Portfolio "
        "(positions, exposures, Greeks, factors, VaR, scenarios) APIs.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=f"{API_PREFIX}/redoc",
        default_response_class=SigmaJSONResponse,
    )
    app.state.sigma = state
    install_error_handlers(app)
    install_middleware(app)
    app.include_router(api_router())
    from serve_app.dashboard.routes import router as dashboard_router

    app.include_router(dashboard_router)
    return app


def local_app(settings: Settings) -> FastAPI:
    """The same app without Ray Serve (in-process limiter, no job workers): for router tests."""
    return create_app(AppState(settings=settings, limiter=LocalLimiter(settings.tier_limits())))


def lower_priority(niceness: int) -> None:
    """Run this process at ``niceness`` (never raising its priority): every thread of it. Linux
    keeps a niceness per thread, so the thread that builds the replica cannot lower the others
    (Serve's event loop, Ray's own threads) by calling ``os.nice``; a thread made later
    inherits its creator's, so one pass over the threads alive now covers the process."""
    import os

    target = min(int(niceness), 19)
    if target <= 0 or not os.path.isdir("/proc/self/task"):
        return
    for tid in os.listdir("/proc/self/task"):
        try:
            if os.getpriority(os.PRIO_PROCESS, int(tid)) < target:
                os.setpriority(os.PRIO_PROCESS, int(tid), target)
        except OSError:  # the thread ended meanwhile
            pass


@serve.deployment(name="SigmaIngress", max_ongoing_requests=64, health_check_period_s=10)
@serve.ingress()
class SigmaIngress:
    """Thin ingress: routes run here; heavy work goes to job tasks and actors."""

    def __init__(self, settings_json: str, secrets: dict):
        from cluster.jobs import get_job_manager
        from cluster.ratelimit import get_rate_limiter
        from serve_app.state import ActorLimiter

        settings = Settings.model_validate_json(settings_json).model_copy(update=secrets)
        logging.basicConfig(level=settings.log_level)
        state = AppState(
            settings=settings,
            limiter=ActorLimiter(get_rate_limiter(settings.tier_limits()), settings.tier_limits()),
            job_manager=get_job_manager(settings),
            sets_request_id_header=False,
        )
        self._sigma_app = create_app(state)
        from serve_app import warmup

        # in the background, from the replica's first request on: no request waits for it
        warmup.start(state.activity, state.job_manager)
        # after the replica is built: its start-up is not slowed below the other processes starting
        lower_priority(settings.ingress_nice)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return self._sigma_app


def build_app(settings: Settings):
    """The Serve application: one ingress deployment with fractional CPUs."""
    secrets = {
        "jwt_secret": settings.resolved_jwt_secret(),
    }
    if settings.ingress_max_replicas > settings.ingress_replicas:
        # Serve autoscaling: a replica more when each has ingress_target_ongoing requests in
        # flight, back down after two quiet minutes
        size = {"autoscaling_config": {"min_replicas": settings.ingress_replicas,
                                       "max_replicas": settings.ingress_max_replicas,
                                       "target_ongoing_requests": settings.ingress_target_ongoing,
                                       # react within seconds to a burst of users
                                       "metrics_interval_s": 1, "look_back_period_s": 5,
                                       "upscale_delay_s": 2, "downscale_delay_s": 120}}
    else:
        size = {"num_replicas": settings.ingress_replicas}
    actor_options = {"num_cpus": settings.ingress_num_cpus}
    if settings.ingress_on_head and head_offers_cpus(settings.ingress_num_cpus):
        actor_options["resources"] = dict(ON_HEAD_NODE["resources"])
    elif settings.ingress_on_head:
        log.warning("the Ray head has fewer CPUs than an API replica asks for (SIGMA_INGRESS_NUM_CPUS=%s): "
                    "the API replicas go wherever Serve places them", settings.ingress_num_cpus)
    return SigmaIngress.options(**size, ray_actor_options=actor_options).bind(settings.worker_json(), secrets)


def app_from_env():
    """The Serve application with settings from the ``SIGMA_*`` environment, the catalog migrated
    first: what ``serve run serve_app.app:app`` and deploy/serve.yaml's ``import_path`` build.

    A deployment that spans several nodes (``SIGMA_MULTI_NODE``, or more than one alive node)
    is refused on a SQLite catalog or a ``file://`` store (``require_shared_storage``)."""
    from cluster.config import require_shared_storage
    from cluster.runtime import alive_nodes
    from cluster.catalog import prepare_catalog

    settings = Settings()
    require_shared_storage(settings, alive_nodes())
    prepare_catalog(settings)
    return build_app(settings)


def __getattr__(name: str):
    # ``app`` is built on first access (PEP 562), so importing this module for its functions
    # neither reads the environment nor touches a catalog.
    if name == "app":
        return app_from_env()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
