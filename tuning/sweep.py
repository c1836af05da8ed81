"""Parameter sweeps on Ray Tune: a grid of backtest configurations in chunks.

A sweep request (``POST /backtest_sweep``) becomes a ``Sweep`` row and one ``lab.sweep`` job.
The job (the Tune *driver*) computes the model's walk-forward inputs once (fold models,
out-of-sample scores, training scores for ``top_pct`` cut-offs), cuts the grid into chunks
and runs one Tune trial per chunk. The shared, read-only inputs go into the Ray object
store once (``tune.with_parameters`` puts them there); every trial evaluates its whole chunk
in one numba call (``compute.sweep.run_sweep``) and reports once.

Durability: a trial stores its chunk itself, in one transaction (``SweepChunk`` row, one
``LeaderboardEntry`` per configuration, ``done_configs`` incremented), before it reports.
A crash (the driver, a trial's worker or the whole service) keeps every finished chunk;
``resume_sweep`` starts a new job that skips the stored chunks and computes only the rest.

The deflated Sharpe ratio of every configuration accounts for the number of configurations
tried: chunks store a provisional value (``n_trials`` = the whole grid, the variance of the
chunk's Sharpe ratios) and the final pass recomputes all of them with the variance across
every configuration of the sweep.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Optional

import numpy as np
import ray
from sqlalchemy import func, select

from cluster import metrics
from cluster.catalog import LabModel, Sweep, SweepChunk, User
from cluster.catalog.models import new_id, utcnow
from cluster.config import Settings
from cluster.nodecheck import NodeRefused, check_node
from cluster.jobs import JobCancelled, JobContext, JobFailed, is_cancelled, manager_name

from compute.sweep import evaluate_chunk
from services.lab.sweeps import FINAL, SweepMeta, chunk_plan, emit_sweep_event, chunk_bounds, chunk_rows, finalize_sweep, store_chunk, sweep_inputs_task

from services.lab import common

log = logging.getLogger("sigma.sweep")

#: Per running driver (key): the stop check and result collector its Tune hooks call.
_DRIVER_HOOKS: dict[str, dict] = {}


JOB_KINDS = {"lab.sweep": "tuning.sweep:sweep_job"}

#: CPUs reserved per trial. The kernel is ``prange``-parallel over configurations and uses
#: every core of its node anyway; the reservation only keeps Tune from over-packing a node.
TRIAL_CPUS = 0.5


def warm_up(settings: Optional[Settings] = None) -> None:
    """Import Ray Tune and load the sweep kernels (numba cache) in this worker: called by the
    job manager's warm-up task so the first sweep after a start does not pay for them. With the
    deployment's ``settings``, also start its warm ``ChunkRunner`` (without waiting for it)."""
    if settings is not None:
        chunk_runner(settings)
    from ray import tune  # noqa: F401 - importing it is the warm-up

    from compute.sweep import make_grid, run_sweep

    n = 64
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    run_sweep(close, close.copy(), rng.uniform(0.0, 1.0, n), make_grid(thresholds=[0.55]), hours=np.full(n, 9))


def run_chunk(chunk_index: int, inputs, meta: SweepMeta, bounds) -> dict:
    """Evaluate one chunk in one numba call and store it; returns the chunk's report.

    ``inputs`` is ``[ref]``: the reference of the sweep's shared inputs (``sweep_inputs``), which
    may still be computing while this process starts. A Tune trial (``chunk_trial``) and the
    warm ``ChunkRunner`` both run exactly this."""
    from cluster.catalog import get_catalog

    settings = Settings.model_validate_json(meta.settings_json)
    check_node(settings, store=False)  # the service's code and a reachable catalog, or NodeRefused
    catalog = get_catalog(settings)
    started = time.perf_counter()
    if is_cancelled(catalog, meta.job_id):
        return {"chunk": chunk_index, "n_configs": 0, "stored": False, "cancelled": True}
    shared = ray.get(inputs[0])
    waited_s = time.perf_counter() - started
    if "error" in shared:  # the driver reports it; nothing to evaluate
        return {"chunk": chunk_index, "n_configs": 0, "stored": False, "cancelled": False}
    start, stop = bounds[chunk_index]
    cpu_started = time.process_time()
    part = shared["grid"].slice(start, stop)
    arrays = shared["arrays"].local_copy()
    result, fold_std = evaluate_chunk(arrays, part)
    compute_s = time.perf_counter() - started - waited_s
    compute_cpu_s = time.process_time() - cpu_started
    rows = chunk_rows(arrays, meta, part, start, result, fold_std)
    stored = store_chunk(catalog, meta, chunk_index, rows, 1000 * (time.perf_counter() - started - waited_s))
    metrics.observe_chunk(stop - start if stored else 0, time.perf_counter() - started - waited_s)
    return {"chunk": chunk_index, "n_configs": stop - start, "stored": stored, "cancelled": False,
            "compute_s": compute_s, "compute_cpu_s": compute_cpu_s, "total_s": time.perf_counter() - started,
            "waited_s": waited_s, "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}


def chunk_trial(config: dict, inputs=None, meta: SweepMeta = None, bounds=None):
    """A Tune trial: one chunk (``run_chunk``), reported once."""
    from ray import tune

    tune.report(run_chunk(int(config["chunk"]), inputs, meta, bounds))


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class ChunkRunner:
    """A warm process for sweeps of a single chunk (at most ``MAX_CHUNK`` configurations).

    A Tune fit of one trial costs a new actor process (imports, numba cache loads) and Tune's
    controller start, seconds beside the chunk's own fraction of a second. The runner is one
    long-lived named actor, warmed once, that runs the very same ``run_chunk`` a trial runs;
    every sweep of more than one chunk runs on Ray Tune. It reserves no CPU (it is idle between
    sweeps, and a chunk is short); it restarts if its process dies, and a sweep whose call to it
    fails runs its missing chunks on Tune."""

    def __init__(self):
        warm_up()

    def run(self, chunk_index: int, inputs, meta: SweepMeta, bounds) -> dict:
        return run_chunk(chunk_index, inputs, meta, bounds)


def chunk_runner(settings: Settings):
    """The deployment's warm ``ChunkRunner`` (created on first use)."""
    return ChunkRunner.options(name=f"{manager_name(settings)}:chunk-runner", get_if_exists=True,
                               lifetime="detached").remote()


def run_chunk_warm(inputs: "ray.ObjectRef", chunk_index: int, bounds, meta: SweepMeta, settings: Settings, *,
                   should_stop, on_result) -> list[dict]:
    """Run one chunk on the warm runner; ``should_stop()`` is polled while it runs (a chunk
    already being evaluated finishes: it is short and its rows are stored atomically).
    Raises ``ray.exceptions.RayActorError`` when the runner died."""
    ref = chunk_runner(settings).run.remote(chunk_index, [inputs], meta, bounds)
    while True:
        ready, _ = ray.wait([ref], timeout=0.5)
        if ready:
            report = ray.get(ref)
            on_result(report)
            return [report]
        if should_stop():
            return []


def _tune_hooks():
    """The Tune stopper and callback classes, made once and published as module globals so
    that (cloud)pickle refers to them by name instead of copying them with their globals."""
    global CancelStopper, Collect
    if "CancelStopper" in globals():
        return CancelStopper, Collect
    from ray.tune import Callback
    from ray.tune.stopper import Stopper

    class CancelStopper(Stopper):
        def __init__(self, key):
            self.key = key

        def __call__(self, trial_id, result):
            return False

        def stop_all(self):
            hooks = _DRIVER_HOOKS.get(self.key)
            if hooks is not None and hooks.get("refused") is not None:
                return True  # a node refused the work: retrying the trials there cannot help
            if hooks is None or hooks["should_stop"] is None or hooks["stopped"]:
                return bool(hooks and hooks["stopped"])
            now = time.monotonic()
            if now - hooks["last"] >= 0.5:
                hooks["last"] = now
                hooks["stopped"] = bool(hooks["should_stop"]())
            return hooks["stopped"]

    class Collect(Callback):
        def __init__(self, key):
            self.key = key

        def on_trial_result(self, iteration, trials, trial, result, **info):
            hooks = _DRIVER_HOOKS.get(self.key)
            if hooks is None:
                return
            report = {k: result.get(k) for k in ("chunk", "n_configs", "stored", "cancelled", "compute_s",
                                                 "compute_cpu_s", "total_s", "waited_s", "pid", "node")}
            hooks["reports"].append(report)
            if hooks["on_result"] is not None:
                hooks["on_result"](report)

        def on_trial_recover(self, iteration, trials, trial, **info):
            self._note_refusal(trial)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._note_refusal(trial)

        def _note_refusal(self, trial):
            """A trial failed because its node refused the work (``NodeRefused``: other code, no
            catalog): the whole run stops at once. Tune would otherwise retry every trial
            ``max_failures`` times, each in a new actor that refuses again (seen: 37
            refusals over 2 min 44 s for a sweep of 12 chunks)."""
            hooks = _DRIVER_HOOKS.get(self.key)
            if hooks is None or hooks.get("refused") is not None:
                return
            try:  # the trial's error as Tune pickled it just before this call (its local copy:
                # trial.get_pickled_error() reads the synced storage, written later)
                import cloudpickle

                with open(trial.pickled_error_file, "rb") as handle:
                    error = cloudpickle.load(handle)
            except Exception:  # noqa: BLE001 - no readable error is no refusal
                return
            hooks["refused"] = refusal(error)

    CancelStopper.__module__ = Collect.__module__ = __name__
    CancelStopper.__qualname__, Collect.__qualname__ = "CancelStopper", "Collect"
    return CancelStopper, Collect


def refusal(error) -> Optional[NodeRefused]:
    """The node's ``NodeRefused`` behind a trial's error (Ray wraps it in a ``RayTaskError``,
    whose ``cause`` is the original, its message without Ray's traceback), or None."""
    for candidate in (getattr(error, "cause", None), error):
        if isinstance(candidate, NodeRefused):
            return NodeRefused(str(candidate), candidate.code)
    return None


#: Every placement group of a sweep's trials is named ``<prefix><sweep id>:<random>``.
TRIAL_GROUP_PREFIX = "sigma-sweep:"


def trial_group_prefix(sweep_id: str) -> str:
    return f"{TRIAL_GROUP_PREFIX}{sweep_id}:"


def _trial_groups_class():
    """``TrialGroups``: Tune's ``PlacementGroupFactory`` whose every placement group is named
    after the sweep (Ray refuses two groups of one name, hence a random tail per group). Made
    once and published as a module global so that (cloud)pickle refers to it by name, as
    ``_tune_hooks`` does."""
    global TrialGroups
    if "TrialGroups" in globals():
        return TrialGroups
    import uuid

    from ray.tune import PlacementGroupFactory
    from ray.util.placement_group import placement_group

    class TrialGroups(PlacementGroupFactory):
        def __init__(self, bundles, prefix: str):
            super().__init__(bundles)
            self.prefix = prefix

        def to_placement_group(self):
            return placement_group(*self._bound.args, **{**self._bound.kwargs, "name": self.prefix + uuid.uuid4().hex[:12]})

    TrialGroups.__module__ = __name__
    TrialGroups.__qualname__ = "TrialGroups"
    return TrialGroups


def __getattr__(name: str):
    # a trial's process unpickles its trainable, which carries its TrialGroups, before anything
    # there has called _trial_groups_class(): made on that first look-up (PEP 562)
    if name == "TrialGroups":
        return _trial_groups_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def release_stranded_trial_groups(sweep_id: str) -> int:
    """Remove the placement groups of this sweep's trials; returns how many.

    Ray removes a placement group with the job or the actor that made it, not with a task: a
    sweep's driver is a job task, so when its process or node dies, the groups its Tune run
    held stay reserved (on the nodes that survive: their CPUs, and the trial resources of
    ``SIGMA_TRIAL_RESOURCES`` too), and the restarted driver's trials would wait for them for
    ever. The job manager calls this (``driver_lost``) once the driver is dead and before the
    job runs again, so every group under the sweep's name is the dead driver's."""
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    from cluster.runtime import live_placement_groups

    prefix = trial_group_prefix(sweep_id)
    stranded = [pg_id for pg_id, info in live_placement_groups().items()
                if str(info.get("name") or "").startswith(prefix)]
    for pg_id in stranded:
        remove_placement_group(PlacementGroup(ray.PlacementGroupID.from_hex(pg_id)))
    if stranded:
        log.warning("sweep %s: removed %d placement group(s) a dead driver left", sweep_id, len(stranded))
    return len(stranded)


def driver_lost(params: dict) -> None:
    """The job manager's hook after a ``lab.sweep`` job's driver died (``cluster.jobs``)."""
    if params.get("sweep_id"):
        release_stranded_trial_groups(str(params["sweep_id"]))


def trial_concurrency(tier_limit: Optional[int], nodes: int) -> int:
    """Trials of one sweep at once: one per alive node (a trial's kernel uses every core of its
    node), never more than the tier's concurrent backtests (docs/spec/reference.md: free 1, basic 5, pro
    20, enterprise unlimited = None)."""
    n = max(1, int(nodes))
    return n if tier_limit is None else max(1, min(n, int(tier_limit)))


def trial_nodes(resources: dict[str, float]) -> int:
    """Alive Ray nodes a trial asking for ``resources`` (``Settings.trial_resources``, custom
    resources) can run on: every alive node when there are none."""
    return sum(1 for node in ray.nodes() if node.get("Alive")
               and all(node.get("Resources", {}).get(name, 0.0) >= amount for name, amount in resources.items()))


def run_chunks_on_tune(inputs: "ray.ObjectRef", todo: list[int], bounds, meta: SweepMeta, *,
                       storage_path: str, should_stop=None, on_result=None, max_concurrent: Optional[int] = None,
                       trial_fn=None, resources: Optional[dict[str, float]] = None) -> list[dict]:
    """Run one Tune trial per chunk index in ``todo``; returns the trials' reports.

    ``inputs``: the reference of ``{"arrays": SweepArrays, "grid": SweepGrid}`` (``sweep_inputs``'
    result, or ``ray.put`` of one); trials start while it is still being computed and wait for
    it, so their actors' start-up overlaps the walk-forward inputs.

    ``should_stop()`` is polled (at most twice a second) to stop the whole experiment;
    ``on_result(report)`` is called for each chunk report in the driver. ``resources``: custom
    Ray resources each trial asks for besides its CPUs (``Settings.trial_resources``).
    """
    from ray import tune

    if not todo:
        return []

    # Tune pickles stoppers and callbacks into its experiment state: they hold only a key
    # into this process's registry, never the (unpicklable) callables themselves.
    key = new_id("hooks")
    reports: list[dict] = []
    _DRIVER_HOOKS[key] = {"should_stop": should_stop, "on_result": on_result, "reports": reports,
                          "last": 0.0, "stopped": False, "refused": None}

    CancelStopper, Collect = _tune_hooks()

    if max_concurrent is None:
        max_concurrent = trial_concurrency(None, trial_nodes(resources or {}))
    # Results live in the catalog: of Tune's default loggers keep only the JSON one (the result
    # grid reads it); the CSV and TensorBoard writers (and tensorboardX's import) buy nothing.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    from ray.tune.logger import JsonLoggerCallback
    # A list, so that the reference reaches the trials unresolved (they get it when they need it).
    trainable = tune.with_parameters(trial_fn or chunk_trial, inputs=[inputs], meta=meta, bounds=bounds)
    trainable = tune.with_resources(trainable, _trial_groups_class()([{**(resources or {}), "CPU": TRIAL_CPUS}],
                                                                     trial_group_prefix(meta.sweep_id)))
    tuner = tune.Tuner(
        trainable,
        param_space={"chunk": tune.grid_search(list(todo))},
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True),
        run_config=tune.RunConfig(
            name=f"{meta.sweep_id}_{new_id('run')}", storage_path=storage_path, verbose=0, log_to_file=False,
            stop=CancelStopper(key), callbacks=[Collect(key), JsonLoggerCallback()],
            failure_config=tune.FailureConfig(max_failures=2),
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False),
        ),
    )
    try:
        grid_result = tuner.fit()
    finally:
        refused = (_DRIVER_HOOKS.pop(key, None) or {}).get("refused")
    if refused is not None:
        raise JobFailed(str(refused), code=refused.code)
    errors = [r.error for r in grid_result if r.error is not None]
    for error in errors:  # a node that refused the work (other code, no catalog) says why
        if (cause := refusal(error)) is not None:
            raise JobFailed(str(cause), code=cause.code)
    if errors and not (should_stop and should_stop()):
        raise RuntimeError(f"{len(errors)} sweep chunk(s) failed: {errors[0]}")
    return reports


def sweep_job(ctx: JobContext, params: dict) -> dict:
    """The ``lab.sweep`` job: the Tune driver. It starts the inputs task and the Tune run together
    (trials wait for the inputs while their actors start), then runs the final pass."""
    sweep_id = params["sweep_id"]
    catalog = ctx.catalog
    timings: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name] = round(now - mark, 3)
        mark = now

    with catalog.session() as s:
        sweep = s.get(Sweep, sweep_id)
        if sweep is None:
            raise JobFailed(f"sweep {sweep_id} not found", code="NOT_FOUND")
        if sweep.status == "cancelled":
            raise JobCancelled(ctx.job_id)
        model = s.get(LabModel, sweep.model_pk)
        done_chunks = set(s.scalars(select(SweepChunk.chunk_index).where(SweepChunk.sweep_id == sweep_id)).all())
        done_at_start = int(s.scalar(select(func.coalesce(func.sum(SweepChunk.n_configs), 0))
                                     .where(SweepChunk.sweep_id == sweep_id)) or 0)
        doc = dict(sweep.grid or {})
        runs = list(doc.get("runs") or [])
        runs.append({"job_id": ctx.job_id, "driver_pid": os.getpid(), "done_at_start": done_at_start,
                     "started_at": utcnow().isoformat()})
        doc["runs"] = runs
        sweep.grid = doc
        sweep.status, sweep.started_at, sweep.error, sweep.job_id = "running", utcnow(), None, ctx.job_id
        sweep.done_configs = done_at_start
        spec, profile, tag, total = doc["spec"], sweep.risk_profile, sweep.tag, sweep.total_configs
        user_id, model_pk, model_id, pack_id = sweep.user_id, model.id, model.model_id, model.pack_id
        tier = s.scalar(select(User.tier).where(User.id == user_id)) or "free"
    inputs_ref = None
    try:
        ctx.write(0.02, "walk-forward inputs")
        inputs_ref = sweep_inputs_task.options(num_cpus=ctx.settings.job_num_cpus, name=f"sweep-inputs:{sweep_id}").remote(
            ctx.settings.worker_json(), user_id, model_id, doc, profile, total)
        bounds = chunk_bounds(total, chunk_plan(catalog, sweep_id, model_pk, doc, total))
        todo = [i for i in range(len(bounds)) if i not in done_chunks]
        meta = SweepMeta(sweep_id=sweep_id, user_id=user_id, model_pk=model_pk, model_id=model_id, pack_id=pack_id,
                         tag=tag, risk_profile=profile, n_trials=total,
                         splits=int(spec.get("splits") or common.DEFAULT_SPLITS),
                         embargo=spec.get("embargo"), settings_json=ctx.settings.worker_json(), job_id=ctx.job_id)
        ctx.write(done_at_start / total, f"{len(todo)} of {len(bounds)} chunks to run")
        progress = {"done": done_at_start}

        def on_result(report):
            progress["done"] += int(report.get("n_configs") or 0) if report.get("stored") else 0
            ctx.write(progress["done"] / total, f"{progress['done']}/{total} configurations")

        def inputs_failed() -> bool:
            ready, _ = ray.wait([inputs_ref], timeout=0)
            return bool(ready) and "error" in ray.get(inputs_ref)

        started = time.perf_counter()
        lap("prepare_s")
        nodes = trial_nodes(ctx.settings.trial_resources)
        concurrency = trial_concurrency(ctx.settings.tier_limits().get(tier, {}).get("concurrent_backtests", 1), nodes)
        def should_stop() -> bool:
            return ctx.cancelled() or inputs_failed()

        reports = []
        if len(todo) == 1:
            try:
                reports = run_chunk_warm(inputs_ref, todo[0], bounds, meta, ctx.settings,
                                         should_stop=should_stop, on_result=on_result)
                lap("warm_runner_s")
            except ray.exceptions.RayActorError as exc:
                log.warning("sweep %s: the warm chunk runner failed (%s); running on Tune", sweep_id, exc)
                with catalog.session() as s:
                    done_chunks = set(s.scalars(select(SweepChunk.chunk_index)
                                                .where(SweepChunk.sweep_id == sweep_id)).all())
                todo = [i for i in todo if i not in done_chunks]
        if not reports and todo and not should_stop():
            if not nodes and ctx.settings.multi_node:  # a cluster's autoscaler adds nodes for the trials' demand
                ctx.write(done_at_start / total, "waiting for a node offering "
                          f"{json.dumps(ctx.settings.trial_resources)} (SIGMA_TRIAL_RESOURCES)")
            elif not nodes:  # the trials would wait for ever: say which setting asks for what
                raise JobFailed(f"no alive Ray node offers the resources SIGMA_TRIAL_RESOURCES asks every sweep trial "
                                f"for ({json.dumps(ctx.settings.trial_resources)}): start worker nodes with ray start "
                                "--resources (or unset it)", code="NO_TRIAL_NODES")
            reports = run_chunks_on_tune(inputs_ref, todo, bounds, meta, storage_path=str(ctx.settings.home / "tune"),
                                         should_stop=should_stop, on_result=on_result, max_concurrent=concurrency,
                                         resources=ctx.settings.trial_resources)
            lap("tune_s")
        cancelled = ctx.cancelled()
        # cancelled before the inputs were ready: no chunk can have been stored
        ready, _ = ray.wait([inputs_ref], timeout=0.0 if cancelled else None)
        shared = ray.get(inputs_ref) if ready else None
        if shared is None:
            ray.cancel(inputs_ref)
        elif "error" in shared:
            error = shared["error"]
            raise JobFailed(error["message"], code=error["code"],
                            details={"field": error["field"]} if error["field"] else {})
        else:
            timings["model_inputs_s"] = shared["seconds"]
        summary = finalize_sweep(catalog, sweep_id, shared["arrays"].periods_per_year if shared else None,
                                 "cancelled" if cancelled else "completed", job_id=ctx.job_id)
        lap("finalize_s")
    except BaseException as exc:
        if inputs_ref is not None:
            ray.cancel(inputs_ref)
        with catalog.session() as s:
            row = s.get(Sweep, sweep_id)
            # a sweep resumed by another job meanwhile is that job's to finish
            if row is not None and row.status not in FINAL and row.job_id == ctx.job_id:
                cancelled = isinstance(exc, (JobCancelled, KeyboardInterrupt))
                row.status = "cancelled" if cancelled else "failed"
                row.error = None if cancelled else f"{type(exc).__name__}: {exc}"
                row.finished_at = utcnow()
        raise
    if summary.get("superseded"):  # cancelled, and resumed by another job while this one wound down
        log.info("sweep %s: job %s ended after the sweep was resumed by another job", sweep_id, ctx.job_id)
        raise JobCancelled(ctx.job_id)
    seconds = time.perf_counter() - started
    run_configs = sum(int(r.get("n_configs") or 0) for r in reports if r.get("stored"))
    if run_configs and seconds > 0:
        metrics.observe_sweep_rate(run_configs / seconds)
    summary.update({
        # which node evaluated which configurations in this run: {node id: {"chunks", "configs"}}
        "nodes": _by_node(reports, bounds),
        "sweep_id": sweep_id, "model_id": model_id, "chunks": len(bounds), "chunks_run": len(reports),
        "chunks_skipped": len(bounds) - len(todo), "seconds": round(seconds, 3),
        "max_concurrent_trials": concurrency, "timings": {**timings, "trials_s": [r.get("total_s") for r in reports],
                    "trials_waited_s": [r.get("waited_s") for r in reports]},
    })
    emit_sweep_event(catalog, user_id, summary)
    if summary["status"] == "cancelled":
        raise JobCancelled(ctx.job_id)
    return summary


def _by_node(reports: list[dict], bounds) -> dict:
    """The stored chunks of a run grouped by the Ray node that evaluated them: chunk indexes and
    their configuration ranges ``[start, stop)``."""
    out: dict[str, dict] = {}
    for r in reports:
        if not r.get("stored") or r.get("node") is None:
            continue
        node = out.setdefault(r["node"], {"chunks": [], "configs": 0, "ranges": []})
        start, stop = bounds[int(r["chunk"])]
        node["chunks"].append(int(r["chunk"]))
        node["configs"] += stop - start
        node["ranges"].append([int(start), int(stop)])
    for node in out.values():
        order = sorted(range(len(node["chunks"])), key=node["chunks"].__getitem__)
        node["chunks"] = [node["chunks"][i] for i in order]
        node["ranges"] = [node["ranges"][i] for i in order]
    return out
