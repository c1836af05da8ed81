"""Long work as Ray tasks with durable state in the catalog.

A job is a catalog row (queued -> running -> completed | failed | cancelled) plus a Ray task
that runs a registered function. One named actor, the ``JobManager``, owns every job task so
that any API replica can cancel any job and enforces per-user concurrency (tier quotas).

Jobs finish themselves. A job whose worker process dies (killed, out of memory, a lost node)
goes back to ``queued`` and starts again after a backoff; so does a job that was running when
the service stopped (the manager's recovery at start). Every job kind can run again from its
inputs: a sweep skips its stored chunks, a training or backtest recomputes. After
``Settings.job_max_attempts`` runs the job fails with an error that says how many runs died.
A job's own failure (bad input, a ``JobFailed``) is never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import importlib
import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import ray
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from cluster import metrics
from cluster.catalog import Catalog, Job, get_catalog
from cluster.catalog.models import utcnow
from cluster.config import Settings
from cluster.nodecheck import NodeRefused, check_node
from cluster.runtime import ON_HEAD_NODE, WARM_WORKERS, live_placement_groups

log = logging.getLogger("sigma.jobs")

STATES = ("queued", "running", "completed", "failed", "cancelled")
FINAL_STATES = ("completed", "failed", "cancelled")
MANAGER_NAME = "sigma_job_manager"

#: kind -> "module:function". The function takes (JobContext, params) and returns a JSON-able dict.
JOB_KINDS: dict[str, str] = {
    "system.probe": "cluster.jobs:probe_job",
}

#: Each area declares its own kinds in a module-level ``JOB_KINDS`` dict; workers import these
#: modules lazily, so a worker process knows every kind without the API having registered it.
JOB_KIND_MODULES = ("services.lab.jobs", "services.portfolio.jobs", "services.risk.batch", "tuning.sweep",
                    "services.reports.jobs",
                    "services.proforma.jobs", "services.ai.jobs")


def all_job_kinds() -> dict[str, str]:
    kinds = dict(JOB_KINDS)
    for module in JOB_KIND_MODULES:
        try:
            kinds.update(getattr(importlib.import_module(module), "JOB_KINDS", {}))
        except ModuleNotFoundError as exc:
            # An area not installed is fine; an area whose own imports fail is a bug to surface.
            if not (exc.name and (module == exc.name or module.startswith(exc.name + "."))):
                raise
    return kinds


class JobCancelled(Exception):
    """Raised inside a job when its owner cancelled it."""


class JobFailed(Exception):
    """A job's own, user-facing failure: ``code`` and ``message`` reach the API unchanged."""

    def __init__(self, message: str, code: str = "CALCULATION_ERROR", details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.details = details or {}


@contextlib.contextmanager
def job_failures() -> Iterator[None]:
    """A service's bad input (``cluster.errors.InputError``) ends the job ``INVALID_PARAMETER``
    naming the field; a row that is not there (``LookupError``) ends it ``NOT_FOUND``."""
    from cluster.errors import InputError

    try:
        yield
    except InputError as exc:
        raise JobFailed(str(exc), code="INVALID_PARAMETER", details={"field": exc.field, "reason": exc.reason}) from None
    except LookupError as exc:
        raise JobFailed(str(exc), code="NOT_FOUND") from None


def _this_run(job_id: str, attempt: int | None, *states: str):
    """The row of ``job_id`` in one of ``states`` or, with ``attempt``, running that run: a run
    that was given up for dead (its job requeued, then started again with ``attempts`` counted
    up) may still be alive for a moment, and must not write over the queue or the run that
    replaced it."""
    if attempt is not None:
        return [Job.id == job_id, Job.status == "running", Job.attempts == attempt]
    return [Job.id == job_id, Job.status.in_(states)]


def write_progress(catalog, job_id: str, fraction: float, message: str | None, attempt: int | None = None) -> None:
    """Record a running job's progress (clipped to 0..1) and message; with ``attempt``, only
    while that run is the job's current one."""
    with catalog.session() as s:
        s.execute(update(Job).where(*_this_run(job_id, attempt, "running"))
                  .values(progress=max(0.0, min(1.0, float(fraction))), message=message, updated_at=utcnow()))


def is_cancelled(catalog, job_id: str | None) -> bool:
    """Whether the job was cancelled (False for no job)."""
    if not job_id:
        return False
    with catalog.session() as s:
        return s.scalar(select(Job.status).where(Job.id == job_id)) == "cancelled"


@dataclass
class JobContext:
    job_id: str
    user_id: int
    settings: Settings
    catalog: Catalog
    #: This run's number (the job's ``attempts`` when it started): its writes apply only while
    #: it is the job's current run.
    attempt: int | None = None
    _last_progress: float = field(default=0.0, repr=False)

    def progress(self, fraction: float, message: str | None = None, *, force: bool = False) -> None:
        """Record progress (0..1); at most a few writes a second unless ``force``."""
        now = time.monotonic()
        if not force and now - self._last_progress < 0.25:
            return
        self._last_progress = now
        if self.write(fraction, message):
            self.check_cancelled()

    def write(self, fraction: float, message: str | None = None) -> bool:
        """Record progress now, unthrottled and without the cancel check (safe from another
        thread, e.g. a sweep's Tune callback), while this run is the job's current one; False
        when the catalog hiccuped (logged; progress is advisory)."""
        try:
            write_progress(self.catalog, self.job_id, fraction, message, self.attempt)
            return True
        except SQLAlchemyError as exc:
            self._catalog_hiccup("progress", exc)
            return False

    def cancelled(self) -> bool:
        try:
            return is_cancelled(self.catalog, self.job_id)
        except SQLAlchemyError as exc:
            self._catalog_hiccup("cancel check", exc)
            return False

    def _catalog_hiccup(self, what: str, exc: Exception) -> None:
        """Progress and the cancel check are advisory: a failed write or read is logged and the
        pool's idle connections are dropped, and the job goes on (its end is written as usual).
        Seen in CI: a job worker reused after an interrupted task handed out a connection left
        mid-transaction ("can't change 'autocommit' now"), and the probe job failed on it."""
        log.warning("job %s: %s not recorded (%s: %s); the catalog's idle connections are reset",
                    self.job_id, what, type(exc).__name__, str(exc).splitlines()[0][:200])
        self.catalog.engine.dispose()

    def check_cancelled(self) -> None:
        if self.cancelled():
            raise JobCancelled(self.job_id)


def _resolve(kind: str) -> Callable[[JobContext, dict], dict]:
    target = all_job_kinds().get(kind)
    if target is None:
        raise JobFailed(f"unknown job kind {kind!r}", code="INVALID_PARAMETER")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _finish(catalog: Catalog, job_id: str, status: str, attempt: int | None = None, **values) -> bool:
    """Write a final state unless the job already reached one (cancel wins races) or, with
    ``attempt``, another run has replaced that one."""
    with catalog.session() as s:
        res = s.execute(
            update(Job)
            .where(*_this_run(job_id, attempt, "queued", "running"))
            .values(status=status, finished_at=utcnow(), updated_at=utcnow(), **values)
        )
        return res.rowcount == 1


def _finish_run(catalog: Catalog, job_id: str, status: str, attempt: int | None, **values) -> bool:
    """``_finish`` for a run's own end, tried again once on fresh connections if the catalog
    hiccups (a pooled connection in a bad state): the end of a finished run is never lost to it."""
    try:
        return _finish(catalog, job_id, status, attempt, **values)
    except SQLAlchemyError as exc:
        log.warning("job %s: writing its end failed (%s); once more on fresh connections", job_id,
                    type(exc).__name__)
        catalog.engine.dispose()
        return _finish(catalog, job_id, status, attempt, **values)


def execute_job(job_id: str, settings: Settings) -> str:
    """Run one job in this process: the body of the Ray task. Returns the final status.

    Raises ``NodeRefused`` (before touching the job) when this node runs other code than the
    service or cannot reach the catalog or the store; the job manager fails the job with it."""
    catalog = get_catalog(settings)
    # A Ray worker runs job after job: connections pooled by an earlier task (perhaps one
    # interrupted mid-write by a cancel or its owner's death) are not handed to this run, nor to
    # the node check.
    catalog.engine.dispose()
    check_node(settings)
    with catalog.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.status in FINAL_STATES:
            return job.status if job else "missing"
        job.status = "running"
        job.started_at = utcnow()
        job.attempts = (job.attempts or 0) + 1
        job.progress = 0.0
        kind, params, user_id, attempt = job.kind, dict(job.params or {}), job.user_id, job.attempts
    ctx = JobContext(job_id=job_id, user_id=user_id, settings=settings, catalog=catalog, attempt=attempt)
    try:
        result = _resolve(kind)(ctx, params)
    except (JobCancelled, ray.exceptions.TaskCancelledError, KeyboardInterrupt):
        _finish_run(catalog, job_id, "cancelled", attempt, message="cancelled by user")
        return "cancelled"
    except JobFailed as exc:
        _finish_run(catalog, job_id, "failed", attempt, error={"code": exc.code, "message": str(exc), "details": exc.details})
        return "failed"
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, never lost
        log.exception("job %s failed", job_id)
        _finish_run(
            catalog,
            job_id,
            "failed",
            attempt,
            error={
                "code": "CALCULATION_ERROR",
                "message": f"{type(exc).__name__}: {exc}",
                "details": {"trace": traceback.format_exc(limit=5)[-2000:]},
            },
        )
        return "failed"
    ok = _finish_run(catalog, job_id, "completed", attempt, result=result, progress=1.0)
    return "completed" if ok else "cancelled"


def warm_up_areas(settings: Settings | None = None) -> list[str]:
    """Import every job area and let it warm up (``warm_up(settings)``: numba cache loads, warm
    actors such as the sweep's chunk runner)."""
    warmed = []
    for module in JOB_KIND_MODULES:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        warm = getattr(mod, "warm_up", None)
        if warm is not None:
            warm(settings)
        warmed.append(module)
    return warmed


#: Job tasks (and the warm-ups made for them) run in Ray workers of their own: Ray hands a task
#: an idle worker with the same runtime environment, so a job lands on a warm job worker rather
#: than on whichever process last ran a batch or a periodic task (which has imported other
#: things), and those tasks never take a warm job worker. Measured before: the first report
#: after a start ran in a new process while both warm workers sat idle. The variable itself
#: means nothing to Sigma; the job-level runtime environment (settings, numba cache) merges in.
JOB_WORKER_POOL = {"env_vars": {"SIGMA_WORKER_POOL": "jobs"}}


@ray.remote(max_retries=0)
def warm_worker_task(settings_json: str | None = None) -> list[str]:
    """Leaves a job worker with every area imported in Ray's idle pool, so the first real job
    after a (re)start does not pay seconds of imports and numba cache loads. At the normal
    priority: under ``SCHED_IDLE`` (tried) a busy machine kept these workers loading for
    minutes, and the first jobs all started cold (a client walkthrough took 88 s instead of 15)."""
    return warm_up_areas(Settings.model_validate_json(settings_json) if settings_json else None)


def holds_placement_groups() -> bool:
    """Whether Ray holds a placement group that is not removed. What the ``driver_lost`` hooks
    release is what Ray keeps after a dead task, placement groups; when there are none (always
    so in a Ray started afresh, as after a restart of the whole service) the hooks' task, its
    worker and its imports are skipped. True when Ray cannot say."""
    try:
        return bool(live_placement_groups())
    except Exception:  # noqa: BLE001 - then run the hooks
        return True


@ray.remote(num_cpus=0, max_retries=0)
def driver_lost_task(kind: str, params: dict) -> bool:
    """After a job's process died: its area's ``driver_lost(params)`` (in the kind's module, if
    it has one) cleans up what Ray keeps after a task's death, e.g. a sweep's placement groups.
    Returns whether there was a hook. In a task of its own, so the job manager imports nothing
    of the areas."""
    target = all_job_kinds().get(kind)
    hook = getattr(importlib.import_module(target.split(":")[0]), "driver_lost", None) if target else None
    if hook is None:
        return False
    hook(params)
    return True


@ray.remote(max_retries=0)
def run_job_task(job_id: str, settings_json: str) -> str:
    return execute_job(job_id, Settings.model_validate_json(settings_json))


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class JobManager:
    """Owns job tasks; queues per (user, group) over the concurrency limit."""

    def __init__(self, settings_json: str):
        self.settings_json = settings_json
        self.settings = Settings.model_validate_json(settings_json)
        self.catalog = get_catalog(self.settings)
        self.running: dict[str, ray.ObjectRef] = {}
        self.running_key: dict[str, tuple[int, str]] = {}
        self.pending: list[tuple[str, int, str, int | None]] = []
        self.kinds: dict[str, str] = {}  # job id -> kind, for the sigma_jobs gauge
        self.known_kinds: set[str] = set()
        self.warm: list[ray.ObjectRef] = []  # started by warm_workers(), when asked
        self.recovered = self._recover()

    def warm_workers(self, count: int = WARM_WORKERS) -> int:
        """Leave up to ``count`` warm job workers in Ray's idle pool of job workers (later jobs
        skip seconds of imports and loads); each is started once per manager; returns how many
        this call started. Never of the manager's own accord (beside the replica being built
        they delayed the healthy API by 2-3 s on two cores): ``sigma serve`` asks for the first
        as soon as the API answers, the API replica for the rest once it is warm and the API
        quiet. The second also starts the sweep's warm chunk runner (another process loading
        kernels)."""
        count = min(int(count), WARM_WORKERS)
        started = [warm_worker_task.options(num_cpus=0, name="job:warm-up", runtime_env=JOB_WORKER_POOL).remote(
                       self.settings_json if i == 1 else None) for i in range(len(self.warm), count)]
        self.warm += started
        return len(started)

    def _recover(self) -> dict:
        """Restart recovery: jobs left running died with the old processes; they start again
        (up to ``job_max_attempts`` runs), and queued ones run as they would have."""
        failed = 0
        with self.catalog.session() as s:
            interrupted = s.execute(select(Job.id, Job.attempts, Job.kind, Job.params).where(Job.status == "running")).all()
        if interrupted and holds_placement_groups():
            # this manager restarted while the cluster lives (it crashed): the jobs it ran died
            # with it, and what Ray keeps after them (a sweep's placement groups) goes first. A
            # Ray started afresh (the whole service restarted) holds nothing of theirs.
            refs = [driver_lost_task.remote(kind, dict(params or {})) for _, _, kind, params in interrupted]
            try:
                ray.get(refs, timeout=60)
            except Exception:  # noqa: BLE001 - cleaning up only; the jobs run again either way
                log.exception("cleaning up after %d interrupted job(s) failed", len(refs))
        for job_id, attempts, _, _ in interrupted:
            if not self._requeue(job_id, attempts, "the service stopped while this job was running"):
                failed += 1
        with self.catalog.session() as s:
            queued = s.execute(
                select(Job.id, Job.user_id, Job.queue_group, Job.queue_limit, Job.kind)
                .where(Job.status == "queued")
                .order_by(Job.created_at)
            ).all()
        for job_id, user_id, group, limit, kind in queued:
            self.pending.append((job_id, user_id, group, limit))
            self.kinds[job_id] = kind
        self._pump()
        return {"failed": failed, "requeued": len(queued), "interrupted": len(interrupted)}

    def _requeue(self, job_id: str, attempts: int | None, why: str) -> bool:
        """Put a job whose run died back in the queue (True), or fail it when it has had its
        runs (False). Cancelled or finished jobs are left as they are."""
        attempts = int(attempts or 0)
        limit = max(1, int(self.settings.job_max_attempts))
        with self.catalog.session() as s:
            if attempts >= limit:
                s.execute(update(Job).where(Job.id == job_id, Job.status.in_(("queued", "running"))).values(
                    status="failed", finished_at=utcnow(), updated_at=utcnow(),
                    error={"code": "WORKER_FAILED",
                           "message": f"{why}; it ran {attempts} times, the limit (SIGMA_JOB_MAX_ATTEMPTS) is {limit}",
                           "details": {"attempts": attempts}}))
                return False
            res = s.execute(update(Job).where(Job.id == job_id, Job.status == "running").values(
                status="queued", updated_at=utcnow(),
                message=f"{why}; starting again (run {attempts + 1} of {limit})"))
            return res.rowcount == 1

    def retry_delay_s(self, attempts: int) -> float:
        return min(60.0, float(self.settings.job_retry_backoff_s) * 2 ** max(0, int(attempts) - 1))

    def recovery_report(self) -> dict:
        return self.recovered

    def _running_in(self, user_id: int, group: str) -> int:
        return sum(1 for key in self.running_key.values() if key == (user_id, group))

    def _pump(self) -> None:
        still_pending = []
        for item in self.pending:
            job_id, user_id, group, limit = item
            if limit is not None and self._running_in(user_id, group) >= limit:
                still_pending.append(item)
                continue
            # The manager never imports the job areas (seconds of imports on the first submit);
            # every job task reserves the same CPUs (SIGMA_JOB_NUM_CPUS).
            ref = run_job_task.options(num_cpus=self.settings.job_num_cpus, name=f"job:{job_id}",
                                       runtime_env=JOB_WORKER_POOL).remote(
                job_id, self.settings_json
            )
            self.running[job_id] = ref
            self.running_key[job_id] = (user_id, group)
            asyncio.get_event_loop().create_task(self._watch(job_id, ref))
        self.pending = still_pending
        self._export_gauges()

    def _export_gauges(self) -> None:
        kind = self.kinds.get
        metrics.set_jobs([kind(p[0], "unknown") for p in self.pending], [kind(j, "unknown") for j in self.running],
                         self.known_kinds)

    async def _watch(self, job_id: str, ref: ray.ObjectRef) -> None:
        retry = None
        try:
            await ref
        except ray.exceptions.TaskCancelledError:
            _finish(self.catalog, job_id, "cancelled", message="cancelled by user")
        except NodeRefused as exc:  # the node said why it cannot run it: the job fails saying so
            log.error("job %s: %s", job_id, exc)
            _finish(self.catalog, job_id, "failed", error={"code": exc.code, "message": str(exc), "details": {}})
        except Exception as exc:  # noqa: BLE001 - a crashed worker must not leave the job running
            # execute_job records every failure of the job itself: an exception here means the
            # process running it died, so the job runs again from its inputs.
            with self.catalog.session() as s:
                row = s.execute(select(Job.attempts, Job.user_id, Job.queue_group, Job.queue_limit, Job.kind, Job.params)
                                .where(Job.id == job_id)).first()
            if row is not None:
                await self._driver_lost(job_id, row.kind, dict(row.params or {}))
            if row is not None and self._requeue(job_id, row.attempts,
                                                 f"the worker running this job died ({type(exc).__name__})"):
                retry = (row.user_id, row.queue_group, row.queue_limit, self.retry_delay_s(row.attempts))
        finally:
            self.running.pop(job_id, None)
            self.running_key.pop(job_id, None)
            self.kinds.pop(job_id, None)
            self._pump()
        if retry is not None:
            user_id, group, limit, delay = retry
            log.warning("job %s: worker died; starting again in %.1f s", job_id, delay)
            await asyncio.sleep(delay)
            with self.catalog.session() as s:
                still_queued = s.scalar(select(Job.status).where(Job.id == job_id)) == "queued"
            if still_queued and job_id not in self.running and all(p[0] != job_id for p in self.pending):
                self.pending.append((job_id, user_id, group, limit))
                self._pump()

    async def _driver_lost(self, job_id: str, kind: str, params: dict) -> None:
        """Before a dead job runs again, its area cleans up after it (``driver_lost_task``); a
        failure is logged, never the job's."""
        if not holds_placement_groups():
            return
        try:
            await asyncio.wait_for(driver_lost_task.remote(kind, params), timeout=60)
        except Exception:  # noqa: BLE001
            log.exception("job %s: cleaning up after its dead process failed", job_id)

    async def submit(self, job_id: str, user_id: int, group: str, limit: int | None) -> int:
        """Queue a job; returns how many jobs of this user's group are ahead of it (0: started)."""
        with self.catalog.session() as s:
            self.kinds[job_id] = s.scalar(select(Job.kind).where(Job.id == job_id)) or "unknown"
        self.pending.append((job_id, user_id, group, limit))
        self._pump()
        if job_id in self.running:
            return 0
        waiting = [p[0] for p in self.pending if p[1] == user_id and p[2] == group]
        return waiting.index(job_id) + self._running_in(user_id, group)

    async def cancel(self, job_id: str) -> bool:
        self.pending = [p for p in self.pending if p[0] != job_id]
        if job_id not in self.running:
            self.kinds.pop(job_id, None)
        self._export_gauges()
        ref = self.running.get(job_id)
        if ref is not None:
            ray.cancel(ref, force=False)
        return True

    async def status(self) -> dict:
        return {"running": list(self.running), "pending": [p[0] for p in self.pending]}


def manager_name(settings: Settings) -> str:
    """One manager per catalog: two services on one cluster with different catalogs never mix jobs."""
    digest = hashlib.sha256(settings.resolved_database_url.encode()).hexdigest()[:10]
    return f"{MANAGER_NAME}_{digest}"


def get_job_manager(settings: Settings):
    return JobManager.options(
        name=manager_name(settings), namespace="sigma", get_if_exists=True, lifetime="detached", **ON_HEAD_NODE
    ).remote(settings.worker_json())


def create_job(
    catalog: Catalog,
    *,
    user_id: int,
    kind: str,
    params: dict,
    estimated_duration_ms: int | None = None,
    queue_group: str = "default",
    queue_limit: int | None = None,
) -> Job:
    if kind not in all_job_kinds():
        raise ValueError(f"unknown job kind {kind!r}")
    with catalog.session() as s:
        job = Job(
            user_id=user_id,
            kind=kind,
            params=params,
            estimated_duration_ms=estimated_duration_ms,
            queue_group=queue_group,
            queue_limit=queue_limit,
        )
        s.add(job)
    return job


def request_cancel(catalog: Catalog, job_id: str) -> str:
    """Mark a job cancelled if it has not finished; returns the resulting status."""
    with catalog.session() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(("queued", "running")))
            .values(status="cancelled", cancel_requested=True, finished_at=utcnow(), updated_at=utcnow(), message="cancelled by user")
        )
        return s.scalar(select(Job.status).where(Job.id == job_id))


def job_view(job: Job) -> dict[str, Any]:
    """The job as the API shows it (spec section 14)."""
    estimated = None
    if job.estimated_duration_ms and job.status in ("queued", "running"):
        start = job.started_at or job.created_at
        estimated = (start + dt.timedelta(milliseconds=job.estimated_duration_ms)).isoformat()
    return {
        "job_id": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "estimated_completion": estimated,
        "error": job.error,
    }


def probe_job(ctx: JobContext, params: dict) -> dict:
    """Report which node ran the job and how fast it computes (a cluster smoke test).

    ``duration_s`` (0-60) keeps the worker busy that long, reporting progress, so operators
    can watch scheduling, progress and cancellation on the dashboard.
    """
    import platform

    import numpy as np

    duration = float(params.get("duration_s", 0.0))
    started = time.monotonic()
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((256, 256))
    iterations = 0
    while True:
        matrix = np.tanh(matrix @ matrix.T / 256.0)
        iterations += 1
        elapsed = time.monotonic() - started
        if elapsed >= duration:
            break
        ctx.progress(elapsed / duration if duration else 1.0, f"{iterations} iterations")
    elapsed = time.monotonic() - started
    return {
        "node_id": ray.get_runtime_context().get_node_id() if ray.is_initialized() else None,
        "hostname": platform.node(),
        "python": platform.python_version(),
        "iterations": iterations,
        "elapsed_s": round(elapsed, 4),
        "matmul_per_s": round(iterations / elapsed, 2) if elapsed else None,
    }
