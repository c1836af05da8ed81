"""AI workflows (portfolio spec 9.3): a cron trigger and a list of actions, stored per user and
run on the platform scheduler as jobs (kind ``ai.workflow``), with a run log.

The scheduler (``services.risk.batch.PERIODIC_TASKS``, every minute) calls
:func:`scheduled_tick`: for each active workflow the fire times between its ``checked_until``
and now are worked out with croniter in the workflow's time zone; after downtime only the
latest is run and the earlier ones are logged ``skipped`` (as report schedules do). A fire
time is claimed by inserting its run row (unique per workflow and time) in the same
transaction that moves ``checked_until``, so no time runs twice. ``POST
/ai/workflow/{id}/run`` runs a workflow now (trigger ``manual``).

Actions (``{"type", "parameters"}``):

- ``analyze_expiration_risk`` ``{days_ahead: 0..366 = 5}``: the options expiring in the window,
  their share of the book's absolute gamma;
- ``check_risk_limits`` ``{alert_on_breach: bool = true}``: the active alerts of the book (the
  built-in expiration checks and the user's rules, as ``GET /alerts``); with
  ``alert_on_breach`` each one is sent to the user's webhooks as ``alert.triggered``;
- ``generate_report`` ``{type = risk_summary, format = pdf, ...}``: a report, as ``POST
  /reports/generate`` makes it;
- ``generate_signals`` ``{model_ids: [...]}`` (default: every model of the user): the newest
  signal of each model, as ``POST /lab/signals/generate`` makes it.

Each action's outcome (``ok`` or ``error`` with the reason) is on the run; one action's failure
does not stop the next.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Mapping

from croniter import croniter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cluster.catalog import AIWorkflow, AIWorkflowRun, Catalog, owned_row
from cluster.catalog.models import utcnow
from cluster.errors import InputError

log = logging.getLogger("sigma.ai")

ACTIONS = ("analyze_expiration_risk", "check_risk_limits", "generate_report", "generate_signals")
MAX_ACTIONS = 20
MAX_WORKFLOWS = 100


class WorkflowInputError(InputError):
    pass


def parse(body: Any) -> dict:
    """A validated workflow ``{name, cron, timezone, actions}`` (400 naming the field)."""
    from services.reports.schedules import _zone

    if not isinstance(body, Mapping):
        raise WorkflowInputError("body", "must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 120:
        raise WorkflowInputError("name", "a string of 1 to 120 characters")
    trigger = body.get("trigger")
    if not isinstance(trigger, Mapping):
        raise WorkflowInputError("trigger", "an object {type: time, schedule: '<cron>'}")
    if trigger.get("type") != "time":
        raise WorkflowInputError("trigger.type", "only 'time' triggers are supported")
    cron = trigger.get("schedule")
    if not isinstance(cron, str) or len(cron.split()) != 5 or len(cron) > 120 or not croniter.is_valid(cron):
        raise WorkflowInputError("trigger.schedule", "a 5-field cron expression, e.g. '0 9 * * *'")
    try:
        zone = _zone(trigger.get("timezone", "America/New_York"))
    except InputError as exc:
        raise WorkflowInputError("trigger.timezone", exc.reason) from None
    actions = body.get("actions")
    if not isinstance(actions, list) or not 1 <= len(actions) <= MAX_ACTIONS:
        raise WorkflowInputError("actions", f"a list of 1 to {MAX_ACTIONS} actions")
    clean = []
    for i, action in enumerate(actions):
        at = f"actions[{i}]"
        if not isinstance(action, Mapping) or action.get("type") not in ACTIONS:
            raise WorkflowInputError(f"{at}.type", f"one of {', '.join(ACTIONS)}")
        params = action.get("parameters", {})
        if not isinstance(params, Mapping):
            raise WorkflowInputError(f"{at}.parameters", "must be an object")
        params = dict(params)
        kind = action["type"]
        if kind == "analyze_expiration_risk":
            days = params.setdefault("days_ahead", 5)
            if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 366:
                raise WorkflowInputError(f"{at}.parameters.days_ahead", "an integer 0..366")
        elif kind == "check_risk_limits":
            if not isinstance(params.setdefault("alert_on_breach", True), bool):
                raise WorkflowInputError(f"{at}.parameters.alert_on_breach", "true or false")
        elif kind == "generate_report":
            from services.reports import service as reports

            params.setdefault("type", "risk_summary")
            try:
                params = reports.validate_request(params)
            except InputError as exc:
                raise WorkflowInputError(f"{at}.parameters.{exc.field}", exc.reason) from None
        elif kind == "generate_signals":
            ids = params.get("model_ids")
            if ids is not None and (not isinstance(ids, list) or not all(isinstance(x, str) and x for x in ids) or len(ids) > 50):
                raise WorkflowInputError(f"{at}.parameters.model_ids", "a list of up to 50 model ids")
        clean.append({"type": kind, "parameters": params})
    return {"name": name.strip(), "cron": cron, "timezone": zone, "actions": clean}


def view(row: AIWorkflow) -> dict:
    from services.reports.schedules import fire_times

    nxt = fire_times(row.cron, row.timezone, False, max(utcnow(), row.checked_until), utcnow() + dt.timedelta(days=400), limit=1) \
        if row.active else []
    return {"workflow_id": row.id, "name": row.name, "trigger": {"type": "time", "schedule": row.cron, "timezone": row.timezone},
            "actions": row.actions, "active": row.active, "next_run": nxt[0].isoformat() if nxt else None,
            "created_at": row.created_at.isoformat() if row.created_at else None}


def create(catalog: Catalog, user_id: int, body: Any) -> dict:
    spec = parse(body)
    with catalog.session() as s:
        count = len(s.scalars(select(AIWorkflow.id).where(AIWorkflow.user_id == user_id, AIWorkflow.active.is_(True))).all())
        if count >= MAX_WORKFLOWS:
            raise WorkflowInputError("name", f"at most {MAX_WORKFLOWS} workflows; delete one first")
        row = AIWorkflow(user_id=user_id, active=True, checked_until=utcnow(), **spec)
        s.add(row)
        s.flush()
        return view(row)


def _own(s, user_id: int, workflow_id: str) -> AIWorkflow:
    return owned_row(s, AIWorkflow, workflow_id, user_id, "workflow", active_only=True)


def get(catalog: Catalog, user_id: int, workflow_id: str) -> dict:
    with catalog.session() as s:
        return view(_own(s, user_id, workflow_id))


def list_all(catalog: Catalog, user_id: int) -> list[dict]:
    with catalog.session() as s:
        rows = s.scalars(select(AIWorkflow).where(AIWorkflow.user_id == user_id, AIWorkflow.active.is_(True))
                         .order_by(AIWorkflow.created_at, AIWorkflow.id)).all()
        return [view(r) for r in rows]


def delete(catalog: Catalog, user_id: int, workflow_id: str) -> None:
    """Deactivate: it never runs again; the user sees it gone."""
    with catalog.session() as s:
        _own(s, user_id, workflow_id).active = False


def run_view(r: AIWorkflowRun) -> dict:
    return {"run_id": r.id, "scheduled_for": r.scheduled_for.isoformat(), "trigger": r.trigger, "status": r.status,
            "job_id": r.job_id, "results": r.results or [], "error": r.error,
            "finished_at": r.finished_at.isoformat() if r.finished_at else None}


def runs(catalog: Catalog, user_id: int, workflow_id: str, limit: int = 100) -> list[dict]:
    with catalog.session() as s:
        _own(s, user_id, workflow_id)
        rows = s.scalars(select(AIWorkflowRun).where(AIWorkflowRun.workflow_id == workflow_id)
                         .order_by(AIWorkflowRun.scheduled_for.desc()).limit(limit)).all()
        return [run_view(r) for r in rows]


def new_manual_run(catalog: Catalog, user_id: int, workflow_id: str) -> str:
    with catalog.session() as s:
        _own(s, user_id, workflow_id)
        row = AIWorkflowRun(workflow_id=workflow_id, scheduled_for=utcnow(), trigger="manual", status="queued", results=[])
        s.add(row)
        s.flush()
        return row.id


def attach_job(catalog: Catalog, run_id: str, job_id: str) -> None:
    with catalog.session() as s:
        s.get(AIWorkflowRun, run_id).job_id = job_id


# -- running -----------------------------------------------------------------------------------

def _action(catalog: Catalog, store, provider, settings, user_id: int, action: dict) -> dict:
    from services.ai import facts as facts_mod
    from services.portfolio import alerts, service as portfolio_service

    kind, params = action["type"], action["parameters"]
    if kind == "analyze_expiration_risk":
        book = portfolio_service.priced_book(catalog, provider, user_id)
        figures = facts_mod.book_facts(book, "expiring_options", {"days_ahead": params["days_ahead"]})
        return {"expiring": figures.get("expiring", {"count": 0, "position_ids": [], "gamma_share": None}),
                "equity": figures["equity"]}
    if kind == "check_risk_limits":
        from services.lab.events import emit_event

        book = portfolio_service.priced_book(catalog, provider, user_id)
        found = alerts.evaluate_alerts(catalog, user_id, book)
        sent = []
        if params.get("alert_on_breach", True):
            for alert in found:
                ids = emit_event(catalog, user_id, "alert.triggered", {"alert": alert, "source": "ai_workflow"})
                sent.extend(ids or [])
        return {"alerts": [{k: a[k] for k in ("id", "type", "priority", "title", "message")} for a in found],
                "breaches": len(found), "webhook_deliveries": sent}
    if kind == "generate_report":
        from services.lab.events import emit_event
        from services.reports import service as reports

        row = reports.create_report(catalog, user_id, params)
        done = reports.run_report_job(catalog, store, provider, row.id,
                                      emit=lambda uid, event, data: emit_event(catalog, uid, event, data))
        return {"report_id": row.id, "sha256": done.get("sha256"), "status": "completed"}
    if kind == "generate_signals":
        from services.lab import models as lab_models, signals

        ids = params.get("model_ids")
        if ids is None:
            ids = [m.model_id for m in lab_models.list_models(catalog, user_id, limit=50)[0]]
        out = []
        for model_id in ids:
            try:
                signal, created, decision = signals.generate_signal(catalog, store, provider, user_id, model_id)
                out.append({"model_id": model_id, "signal_id": (signal or {}).get("signal_id"), "created": created,
                            "reason": decision.get("reason")})
            except (LookupError, InputError) as exc:
                out.append({"model_id": model_id, "error": str(exc)})
        return {"signals": out}
    raise ValueError(f"unknown action {kind}")


def execute_run(catalog: Catalog, store, provider, settings, run_id: str, progress=None) -> dict:
    """The ``ai.workflow`` job body: every action in order, each outcome on the run row."""
    from compute.jsonsafe import json_safe

    with catalog.session() as s:
        run = s.get(AIWorkflowRun, run_id)
        wf = s.get(AIWorkflow, run.workflow_id)
        run.status = "running"
        user_id, actions = wf.user_id, list(wf.actions)
    results = []
    for i, action in enumerate(actions):
        if progress:
            progress(i / len(actions), f"action {i + 1}/{len(actions)}: {action['type']}", force=True)
        try:
            results.append({"type": action["type"], "status": "ok",
                            "result": json_safe(_action(catalog, store, provider, settings, user_id, action))})
        except Exception as exc:  # noqa: BLE001 - the run log says what failed; the next action runs
            log.exception("workflow action %s failed", action["type"])
            results.append({"type": action["type"], "status": "error", "error": f"{type(exc).__name__}: {exc}"[:500]})
    failed = [r for r in results if r["status"] != "ok"]
    with catalog.session() as s:
        run = s.get(AIWorkflowRun, run_id)
        run.results, run.finished_at = results, utcnow()
        run.status = "completed" if not failed else "failed"
        run.error = f"{len(failed)} of {len(results)} actions failed" if failed else None
        return run_view(run)


def _claim(catalog: Catalog, wf: AIWorkflow, times: list[dt.datetime], until: dt.datetime) -> str | None:
    try:
        with catalog.session() as s:
            for t in times[:-1]:
                s.add(AIWorkflowRun(workflow_id=wf.id, scheduled_for=t, trigger="schedule", status="skipped", results=[],
                                    finished_at=utcnow(), error=f"missed while the scheduler was down; caught up at {times[-1].isoformat()}"))
            run = AIWorkflowRun(workflow_id=wf.id, scheduled_for=times[-1], trigger="schedule", status="queued", results=[])
            s.add(run)
            s.get(AIWorkflow, wf.id).checked_until = until
            s.flush()
            return run.id
    except IntegrityError:
        return None


def run_due(catalog: Catalog, settings, now: dt.datetime | None = None, submit=None) -> list[dict]:
    """Start a job for every workflow's due fire time (at most one per workflow per tick).
    ``submit(job_id, user_id)`` hands the job to the job manager."""
    from cluster.jobs import create_job
    from services.reports.schedules import fire_times

    now = now or dt.datetime.now(dt.timezone.utc)
    if submit is None:
        import ray

        from cluster.jobs import get_job_manager

        manager = get_job_manager(settings)

        def submit(job_id, user_id):
            return ray.get(manager.submit.remote(job_id, user_id, "default", None))
    with catalog.session() as s:
        rows = s.scalars(select(AIWorkflow).where(AIWorkflow.active.is_(True))).all()
        for r in rows:
            s.expunge(r)
    started = []
    for wf in rows:
        times = fire_times(wf.cron, wf.timezone, False, wf.checked_until, now)
        if not times:
            continue
        run_id = _claim(catalog, wf, times, now)
        if run_id is None:
            continue
        job = create_job(catalog, user_id=wf.user_id, kind="ai.workflow", params={"run_id": run_id}, estimated_duration_ms=5000)
        attach_job(catalog, run_id, job.id)
        submit(job.id, wf.user_id)
        started.append({"workflow_id": wf.id, "run_id": run_id, "job_id": job.id, "scheduled_for": times[-1].isoformat()})
    return started


def scheduled_tick(settings) -> list[dict]:
    """The platform scheduler's hook (``services.risk.batch.PERIODIC_TASKS``)."""
    from cluster.catalog import get_catalog

    return run_due(get_catalog(settings), settings)
