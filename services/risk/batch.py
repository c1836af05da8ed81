"""The daily batch: every portfolio priced and analysed after the close, as Ray tasks.

One ``BatchRun`` row per run; each portfolio is a Ray task (:func:`process_portfolio_task`)
running the steps of :data:`STEPS` in order, each recorded as a ``BatchResult`` row with its
status (completed / failed / skipped), attempts, timing and JSON result:

- ``prices``    the priced book (every position must have a price; a missing one fails the step)
- ``values``    equity, cash, long/short/gross/net of notional and delta-adjusted exposure
- ``greeks``    portfolio Greeks (sums of position Greeks)
- ``factors``   factor exposures for the portfolio, longs and shorts views (served by /risk/factors)
- ``scenarios`` every stress template over the three views (served by POST /risk/scenarios)
- ``risk``      risk overview (3 views x 4 periods) and the VaR family (served by /risk/overview, /risk/var)
- ``snapshot``  the daily snapshot row (served by /portfolio/timeline)

A step's failure skips the steps that need its output (``STEP_NEEDS``) but not the others, and
one portfolio's failure never stops the others: each task catches its own errors, and the run
ends ``completed`` (all portfolios fine), ``partial`` or ``failed`` (none fine). Transient
errors (connection, timeout, database operational errors) are retried up to
:data:`MAX_ATTEMPTS` times with exponential backoff; other errors fail the step at once.

Scheduling: :func:`start_scheduler` starts a detached zero-CPU Ray actor that runs the batch
for each NYSE session at 16:30 America/New_York (and once on start-up when today's run is
due and missing), so ``sigma serve`` only has to call it once. It is the platform's one
scheduler: every minute it also runs the :data:`PERIODIC_TASKS` (report schedules: their own
cron times, run log and catch-up, ``services.reports.schedules``; AI workflows; live signal
subscriptions scored at each bar close, ``services.lab.subscriptions``) as zero-CPU Ray tasks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import ray
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from cluster.market import market_provider
from cluster.catalog import BatchResult, BatchRun, Catalog, Portfolio, Snapshot, get_catalog
from cluster.catalog.models import utcnow
from cluster.config import Settings
from cluster.errors import InputError
from cluster.jobs import JobContext, JobFailed
from compute.marketdata import calendar
from compute.jsonsafe import json_safe

log = logging.getLogger("sigma.batch")

JOB_KINDS = {
    "batch.daily": "services.risk.batch:batch_job",
    "portfolio.scenarios": "services.risk.batch:scenarios_job",
    "portfolio.timeline": "services.risk.batch:timeline_job",
}

STEPS = ("prices", "values", "greeks", "factors", "scenarios", "risk", "snapshot")
STEP_NEEDS = {
    "values": ("prices",),
    "greeks": ("prices",),
    "factors": ("prices",),
    "scenarios": ("factors",),
    "risk": ("factors",),
    "snapshot": ("prices",),
}
MAX_ATTEMPTS = 3
RETRY_BASE_S = 0.5
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, OperationalError)
SCHEDULE_TIME = dt.time(16, 30)
NEW_YORK = ZoneInfo("America/New_York")
SCHEDULER_NAME = "sigma_batch_scheduler"
TASK_NUM_CPUS = 0.5


class StepError(Exception):
    """A step's own failure (bad or missing data): not retried."""


class NothingToDo(Exception):
    """The step does not apply (e.g. factor analysis of an empty portfolio): recorded as skipped."""



# ---------------------------------------------------------------------------------------------
# one portfolio
# ---------------------------------------------------------------------------------------------
def _record_step(catalog: Catalog, run_id: str, portfolio_id: str, step: str, status: str, *, attempts: int = 0,
                 result: dict | None = None, error: str | None = None, started: dt.datetime | None = None,
                 duration_ms: float | None = None) -> None:
    with catalog.session() as s:
        s.add(BatchResult(
            run_id=run_id, portfolio_id=portfolio_id, step=step, status=status, attempts=attempts,
            result=json_safe(result) if result is not None else None, error=error,
            started_at=started or utcnow(), finished_at=utcnow(), duration_ms=duration_ms,
        ))


class PortfolioSteps:
    """The step bodies for one portfolio; each returns the step's JSON-able data."""

    def __init__(self, catalog: Catalog, provider, portfolio: Portfolio, as_of: dt.date, run_id: str):
        self.catalog = catalog
        self.provider = provider
        self.portfolio = portfolio
        self.as_of = as_of
        self.run_id = run_id
        self.book = None
        self.inputs = None
        #: step -> what the step had to leave out (kept in the run log beside its result)
        self.notes: dict[str, str] = {}

    def prices(self) -> dict:
        from services.risk.service import get_priced_book

        book = get_priced_book(self.catalog, self.provider, self.portfolio.user_id, self.portfolio.id, as_of=self.as_of)
        positions = book.positions
        if len(positions):
            live = ~positions["expired"].fillna(False).astype(bool)
            price = pd.to_numeric(positions["price"], errors="coerce")
            spot = pd.to_numeric(positions["underlying_price"], errors="coerce")
            missing = live & (price.isna() | ~(spot > 0))
            if missing.any() and missing.sum() == live.sum():
                raise StepError(f"missing market data for {sorted(set(positions.loc[missing, 'symbol'].astype(str)))}"
                                + "".join(f"; {w}" for w in book.warnings))
            if missing.any():
                # Degrade, don't die: the steps go on with what could be priced; the run log
                # names what was skipped and why (the ticker, the provider's reason).
                skipped = sorted(set(positions.loc[missing, "symbol"].astype(str)))
                self.notes["prices"] = (f"skipped {len(skipped)} position(s) without market data: {', '.join(skipped)}"
                                        + "".join(f"; {w}" for w in book.warnings))
                log.warning("batch %s %s: %s", self.run_id, self.portfolio.id, self.notes["prices"])
                kept = positions[~missing].reset_index(drop=True)
                kept.attrs.update(positions.attrs)
                book = dataclasses.replace(book, positions=kept)
                positions = kept
        self.book = book
        sources = positions["vol_source"].dropna().astype(str).value_counts().to_dict() if len(positions) else {}
        return {
            "positions": int(len(positions)),
            "equity": book.equity,
            "cash": book.cash,
            "priced_at": book.as_of,
            "vol_sources": sources,
            "prices": {str(s): p for s, p in zip(positions["symbol"], positions["price"])} if len(positions) else {},
        }

    def values(self) -> dict:
        from compute.exposure import aggregate_exposures

        p = self.book.positions
        report = aggregate_exposures(p["market_value"].to_numpy(np.float64), p["delta_exposure"].to_numpy(np.float64))
        return {"equity": self.book.equity, "cash": self.book.cash, "exposure": report.total}

    def greeks(self) -> dict:
        p = self.book.positions
        return {g: float(pd.to_numeric(p[f"position_{g}"], errors="coerce").fillna(0.0).sum())
                for g in ("delta", "gamma", "theta", "vega", "rho")}

    def factors(self) -> dict:
        from services.risk.service import OVERVIEW_LOOKBACK_SESSIONS, factor_report, risk_inputs
        from compute.risk import VIEWS

        if not len(self.book.positions):
            raise NothingToDo("the portfolio has no positions")
        self.inputs = risk_inputs(self.book, self.provider, sessions=max(OVERVIEW_LOOKBACK_SESSIONS.values()))
        return {view: factor_report(self.inputs, view) for view in VIEWS}

    def scenarios(self) -> dict:
        from services.risk.service import scenario_report
        from compute.risk import VIEWS
        from compute.scenarios import SCENARIO_TEMPLATES

        ids = [s.id for s in SCENARIO_TEMPLATES]
        return {view: scenario_report(self.inputs, ids, None, view) for view in VIEWS}

    def risk(self) -> dict:
        from services.risk.service import overview_report, var_report
        from compute.risk import PERIODS_PER_YEAR, VIEWS

        overview = {f"{v}:{p}": overview_report(self.inputs, v, p) for v in VIEWS for p in PERIODS_PER_YEAR}
        var = {v: var_report(self.inputs, v) for v in VIEWS}
        return {"overview": overview, "var": var}

    def snapshot(self) -> dict:
        from services.risk.service import get_priced_book, snapshot_record

        previous = calendar.previous_session(self.as_of).date()
        prev_book = get_priced_book(self.catalog, self.provider, self.portfolio.user_id, self.portfolio.id, as_of=previous)
        record = json_safe(snapshot_record(self.book, prev_book))
        record["date"] = str(self.as_of)
        with self.catalog.session() as s:
            row = s.scalar(select(Snapshot).where(Snapshot.portfolio_id == self.portfolio.id, Snapshot.as_of == self.as_of))
            if row is None:
                s.add(Snapshot(portfolio_id=self.portfolio.id, as_of=self.as_of, data=record, batch_run_id=self.run_id))
            else:
                row.data = record
                row.batch_run_id = self.run_id
                row.created_at = utcnow()
        return record


def process_portfolio(settings: Settings, run_id: str, portfolio_id: str, as_of: dt.date,
                      provider_factory: Callable | None = None, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Run every step for one portfolio, recording each; never raises for a step's failure."""
    from services.risk.service import holdings_fingerprint

    catalog = get_catalog(settings)
    with catalog.session() as s:
        portfolio = s.get(Portfolio, portfolio_id)
    if portfolio is None:
        return {"portfolio_id": portfolio_id, "status": "failed", "steps": {}, "error": "portfolio no longer exists"}
    provider = provider_factory(settings) if provider_factory is not None else market_provider(settings)
    fingerprint = holdings_fingerprint(catalog, portfolio_id)
    runner = PortfolioSteps(catalog, provider, portfolio, as_of, run_id)
    outcome: dict[str, str] = {}
    errors: dict[str, str] = {}
    for step in STEPS:
        blocked = [need for need in STEP_NEEDS.get(step, ()) if outcome.get(need) not in ("completed", "not_applicable")]
        if blocked:
            outcome[step] = "skipped"
            _record_step(catalog, run_id, portfolio_id, step, "skipped", error=f"needs {', '.join(blocked)}")
            continue
        not_applicable = [need for need in STEP_NEEDS.get(step, ()) if outcome.get(need) == "not_applicable"]
        if not_applicable:
            outcome[step] = "not_applicable"
            _record_step(catalog, run_id, portfolio_id, step, "skipped", error=f"not applicable: {not_applicable[0]} did not apply")
            continue
        started = utcnow()
        clock = time.perf_counter()
        attempts = 0
        while True:
            attempts += 1
            try:
                data = getattr(runner, step)()
            except NothingToDo as exc:
                status, error = "skipped", f"not applicable: {exc}"
            except TRANSIENT_ERRORS as exc:
                if attempts < MAX_ATTEMPTS:
                    log.warning("batch %s %s %s: transient %s, retrying", run_id, portfolio_id, step, exc)
                    sleep(RETRY_BASE_S * 2 ** (attempts - 1))
                    continue
                status, error = "failed", f"{type(exc).__name__} (after {attempts} attempts): {exc}"
            except Exception as exc:  # noqa: BLE001 - a step's failure is recorded, never propagated
                status, error = "failed", f"{type(exc).__name__}: {exc}"
            else:
                status, error = "completed", runner.notes.get(step)
            break
        elapsed = (time.perf_counter() - clock) * 1000.0
        result = {"fingerprint": fingerprint, "as_of": str(as_of), "data": data} if status == "completed" else None
        if result is not None and runner.book is not None:
            from services.portfolio.service import pricing_stamp

            # where the step's figures were priced from, and when (the routes' meta.market_data)
            result["market_data"] = pricing_stamp(provider, runner.book.as_of)
        _record_step(catalog, run_id, portfolio_id, step, status, attempts=attempts, result=result, error=error,
                     started=started, duration_ms=elapsed)
        outcome[step] = "not_applicable" if status == "skipped" else status
        if status == "failed":
            errors[step] = error
    status = "completed" if all(v in ("completed", "not_applicable") for v in outcome.values()) else "failed"
    return {"portfolio_id": portfolio_id, "status": status, "steps": outcome, "errors": errors}


@ray.remote(max_retries=1, retry_exceptions=False)
def process_portfolio_task(settings_json: str, run_id: str, portfolio_id: str, as_of: str,
                           provider_factory: Callable | None = None) -> dict:
    """Ray task: one portfolio's steps (retried once by Ray only if the worker dies)."""
    settings = Settings.model_validate_json(settings_json)
    return process_portfolio(settings, run_id, portfolio_id, dt.date.fromisoformat(as_of), provider_factory)


# ---------------------------------------------------------------------------------------------
# a run over every portfolio
# ---------------------------------------------------------------------------------------------
def batch_session(as_of=None) -> dt.date:
    """The session a run covers: ``as_of``'s session, or the latest one that has closed."""
    if as_of is not None:
        day = dt.date.fromisoformat(str(as_of)) if not isinstance(as_of, dt.date) else as_of
        if not calendar.is_session(day):
            raise InputError("date", f"{day} is not an NYSE trading session")
        if day > dt.datetime.now(NEW_YORK).date():
            raise InputError("date", f"{day} is in the future")
        return day
    now = pd.Timestamp.now(tz="UTC")
    day = calendar.session_on_or_before(now.tz_convert(calendar.NEW_YORK).tz_localize(None))
    if calendar.session_close(day) > now:
        day = calendar.previous_session(day)
    return day.date()


def run_daily_batch(settings: Settings, as_of=None, *, trigger: str = "manual", portfolio_ids: list[str] | None = None,
                    provider_factory: Callable | None = None, progress: Callable[[float, str], None] | None = None,
                    run_id: str | None = None) -> dict:
    """Run the batch over every portfolio (or ``portfolio_ids``) as Ray tasks; returns the summary.

    Needs Ray initialised (``cluster.runtime.ensure_ray``). ``provider_factory(settings)``
    replaces the configured market-data provider (tests, custom vendors).
    """
    day = batch_session(as_of)
    catalog = get_catalog(settings)
    with catalog.session() as s:
        if run_id is not None and s.get(BatchRun, run_id) is not None:
            run = s.get(BatchRun, run_id)
        else:
            run = BatchRun(as_of=day, trigger=trigger, status="running", **({"id": run_id} if run_id else {}))
            s.add(run)
            s.flush()
        run_id = run.id
        query = select(Portfolio.id).order_by(Portfolio.created_at, Portfolio.id)
        if portfolio_ids is not None:
            query = query.where(Portfolio.id.in_(portfolio_ids))
        ids = list(s.scalars(query))
    started = time.perf_counter()
    settings_json = settings.worker_json()
    refs = {
        process_portfolio_task.options(num_cpus=TASK_NUM_CPUS, name=f"batch:{pid}").remote(
            settings_json, run_id, pid, day.isoformat(), provider_factory): pid
        for pid in ids
    }
    outcomes: dict[str, dict] = {}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            pid = refs[ref]
            try:
                outcomes[pid] = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a dead worker fails its portfolio only
                outcomes[pid] = {"portfolio_id": pid, "status": "failed", "steps": {},
                                 "errors": {"task": f"{type(exc).__name__}: {exc}"}}
            if progress is not None:
                progress(len(outcomes) / max(len(ids), 1), f"{len(outcomes)}/{len(ids)} portfolios")
    ok = sum(1 for o in outcomes.values() if o["status"] == "completed")
    status = "completed" if ok == len(ids) else ("failed" if ok == 0 else "partial")
    summary = {
        "run_id": run_id,
        "as_of": str(day),
        "status": status,
        "portfolios": len(ids),
        "completed": ok,
        "failed": len(ids) - ok,
        "duration_ms": round((time.perf_counter() - started) * 1000.0, 1),
        "failures": {pid: o.get("errors", {}) for pid, o in outcomes.items() if o["status"] != "completed"},
    }
    with catalog.session() as s:
        s.execute(update(BatchRun).where(BatchRun.id == run_id)
                  .values(status=status, summary=json_safe(summary), finished_at=utcnow()))
    return summary


def run_view(run: BatchRun, results: list[BatchResult] | None = None) -> dict:
    """A run as the admin API shows it; with ``results``, every step of every portfolio."""
    view = {
        "run_id": run.id,
        "as_of": str(run.as_of),
        "status": run.status,
        "trigger": run.trigger,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "summary": run.summary,
    }
    if results is not None:
        portfolios: dict[str, dict] = {}
        for r in results:
            entry = portfolios.setdefault(r.portfolio_id, {"portfolio_id": r.portfolio_id, "status": "completed", "steps": []})
            entry["steps"].append({
                "step": r.step, "status": r.status, "attempts": r.attempts, "error": r.error,
                "duration_ms": r.duration_ms,
                "started_at": r.started_at.isoformat() if r.started_at else None,
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            })
            if r.status == "failed" or (r.status == "skipped" and (r.error or "").startswith("needs")):
                entry["status"] = "failed"
        order = {s: i for i, s in enumerate(STEPS)}
        for entry in portfolios.values():
            entry["steps"].sort(key=lambda x: order.get(x["step"], 99))
        view["portfolios"] = list(portfolios.values())
    return view


def list_runs(catalog: Catalog, limit: int = 50, offset: int = 0) -> list[dict]:
    with catalog.session() as s:
        runs = s.scalars(select(BatchRun).order_by(BatchRun.started_at.desc()).limit(limit).offset(offset)).all()
    return [run_view(r) for r in runs]


def get_run(catalog: Catalog, run_id: str) -> dict:
    with catalog.session() as s:
        run = s.get(BatchRun, run_id)
        if run is None:
            raise LookupError(f"batch run {run_id} not found")
        results = s.scalars(select(BatchResult).where(BatchResult.run_id == run_id).order_by(BatchResult.id)).all()
    return run_view(run, list(results))


# ---------------------------------------------------------------------------------------------
# jobs
# ---------------------------------------------------------------------------------------------
def batch_job(ctx: JobContext, params: dict) -> dict:
    """``batch.daily``: the batch for ``params['as_of']`` (default: the last closed session)."""
    try:
        return run_daily_batch(ctx.settings, params.get("as_of"), trigger=params.get("trigger", "manual"),
                               run_id=params.get("run_id"), progress=lambda f, m: ctx.progress(f, m))
    except ValueError as exc:
        raise JobFailed(str(exc), code="INVALID_PARAMETER") from exc


def _job_provider(ctx: JobContext):

    return market_provider(ctx.settings)


def scenarios_job(ctx: JobContext, params: dict) -> dict:
    """``portfolio.scenarios``: POST /risk/scenarios?mode=async."""
    from services.risk.service import portfolio_scenarios

    try:
        data, meta = portfolio_scenarios(ctx.catalog, _job_provider(ctx), ctx.user_id, params.get("portfolio_id"),
                                         scenario_ids=params.get("scenario_ids") or [], custom=params.get("custom_scenario"),
                                         view=params.get("view", "portfolio"))
    except (ValueError, LookupError) as exc:
        raise JobFailed(str(exc), code="INVALID_PARAMETER") from exc
    return json_safe(dict(data, source=meta))


def timeline_job(ctx: JobContext, params: dict) -> dict:
    """``portfolio.timeline``: GET /portfolio/timeline?mode=async."""
    from services.portfolio.service import recording_pricing
    from services.risk.service import timeline

    try:
        with recording_pricing() as pricing:  # none when every point came from stored snapshots
            data = timeline(ctx.catalog, _job_provider(ctx), ctx.user_id, params.get("portfolio_id"),
                            start=params.get("start"), end=params.get("end"), progress=lambda f, m: ctx.progress(f, m))
    except (ValueError, LookupError) as exc:
        raise JobFailed(str(exc), code="INVALID_PARAMETER") from exc
    return json_safe({**data, "market_data": dict(pricing) or None})


# ---------------------------------------------------------------------------------------------
# schedule
# ---------------------------------------------------------------------------------------------
def scheduled_time(day: dt.date) -> dt.datetime:
    """When the batch of session ``day`` runs: 16:30 New York time, as UTC."""
    return dt.datetime.combine(day, SCHEDULE_TIME, tzinfo=NEW_YORK).astimezone(dt.timezone.utc)


def next_scheduled_run(now: dt.datetime) -> tuple[dt.date, dt.datetime]:
    """(session, UTC time) of the first scheduled run strictly after ``now`` (tz-aware)."""
    day = now.astimezone(NEW_YORK).date()
    for offset in range(0, 15):
        candidate = day + dt.timedelta(days=offset)
        if calendar.is_session(candidate) and scheduled_time(candidate) > now:
            return candidate, scheduled_time(candidate)
    raise RuntimeError("no NYSE session in the next two weeks")


def due_session(now: dt.datetime) -> dt.date | None:
    """Today's session when its scheduled time has passed (the run a restart may have missed)."""
    day = now.astimezone(NEW_YORK).date()
    if calendar.is_session(day) and scheduled_time(day) <= now:
        return day
    return None


def has_run(catalog: Catalog, day: dt.date) -> bool:
    """True when a run for ``day`` finished well or is in progress (a failed one may be redone)."""
    # a run left "running" for hours died with its process: it does not block a new one
    stale = utcnow() - dt.timedelta(hours=3)
    with catalog.session() as s:
        return s.scalar(select(BatchRun.id).where(
            BatchRun.as_of == day,
            (BatchRun.status.in_(("completed", "partial"))) | ((BatchRun.status == "running") & (BatchRun.started_at > stale)),
        ).limit(1)) is not None


@ray.remote(num_cpus=0)
def daily_batch_task(settings_json: str, as_of: str, trigger: str) -> dict:
    return run_daily_batch(Settings.model_validate_json(settings_json), as_of, trigger=trigger)


#: "module:function(settings)" run by the scheduler every :data:`TICK_S` seconds, each in a
#: zero-CPU Ray task (its own catalog rows make it idempotent: see services.reports.schedules).
PERIODIC_TASKS = ("services.reports.schedules:scheduled_tick", "services.ai.workflows:scheduled_tick",
                  "services.lab.subscriptions:scheduled_tick")
TICK_S = 60.0


@ray.remote(num_cpus=0)
def periodic_task(settings_json: str, target: str):
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(Settings.model_validate_json(settings_json))


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class BatchScheduler:
    """Runs the daily batch at 16:30 New York time on trading days (one actor per catalog)."""

    def __init__(self, settings_json: str):
        self.settings_json = settings_json
        settings = Settings.model_validate_json(settings_json)
        self.catalog = get_catalog(settings)
        self.start_delay_s = max(0.0, float(settings.scheduler_start_delay_s))
        self.started = False
        self.last: dict | None = None
        self.next: tuple[dt.date, dt.datetime] | None = None
        self.periodic: dict[str, dict] = {}

    async def run(self) -> None:
        if self.started:
            return
        self.started = True
        # the first round waits (SIGMA_SCHEDULER_START_DELAY_S): a catch-up batch, the periodic
        # ticks and their worker processes would otherwise start beside the API's first views;
        # a restart of this actor (its node lost) waits again, which only delays a catch-up
        self.next = next_scheduled_run(dt.datetime.now(dt.timezone.utc))
        await asyncio.sleep(self.start_delay_s)
        while True:
            await self._periodic()
            now = dt.datetime.now(dt.timezone.utc)
            day = due_session(now)
            if day is not None and not has_run(self.catalog, day):
                await self._run(day)
                continue
            self.next = next_scheduled_run(now)
            wait = (self.next[1] - now).total_seconds()
            await asyncio.sleep(max(1.0, min(wait, TICK_S)))

    async def _periodic(self) -> None:
        for target in PERIODIC_TASKS:
            try:
                self.periodic[target] = {"at": utcnow().isoformat(),
                                         "result": await periodic_task.remote(self.settings_json, target)}
            except Exception as exc:  # noqa: BLE001 - one task's failure never stops the schedule
                log.exception("periodic task %s failed", target)
                self.periodic[target] = {"at": utcnow().isoformat(), "error": f"{type(exc).__name__}: {exc}"}

    async def _run(self, day: dt.date) -> None:
        try:
            self.last = await daily_batch_task.remote(self.settings_json, day.isoformat(), "schedule")
        except Exception as exc:  # noqa: BLE001 - keep the schedule alive; the run row says what failed
            log.exception("scheduled batch for %s failed", day)
            self.last = {"as_of": str(day), "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            await asyncio.sleep(60.0)

    async def status(self) -> dict:
        return {
            "running": self.started,
            "next_run": None if self.next is None else {"as_of": str(self.next[0]), "at": self.next[1].isoformat()},
            "last": self.last,
            "periodic": self.periodic,
        }


def scheduler_name(settings: Settings) -> str:
    digest = hashlib.sha256(settings.resolved_database_url.encode()).hexdigest()[:10]
    return f"{SCHEDULER_NAME}_{digest}"


def start_scheduler(settings: Settings):
    """Start (or find) the detached scheduler actor and its loop; returns the actor handle.

    Call once from ``sigma serve`` after Ray is up; calling again is harmless.
    """
    actor = BatchScheduler.options(
        name=scheduler_name(settings), namespace="sigma", get_if_exists=True, lifetime="detached"
    ).remote(settings.worker_json())
    actor.run.remote()
    return actor
