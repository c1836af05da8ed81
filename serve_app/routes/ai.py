"""AI agent control (portfolio spec 9): ``/ai/interpret``, ``/ai/execute`` and its confirmation,
``/ai/context``, ``/ai/workflow``. The logic is in ``services.ai`` (docs/ai.md)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from serve_app.deps import AgentDep, Caller, CallerDep, StateDep
from serve_app.envelope import SigmaJSONResponse, async_accepted, envelope
from serve_app.errors import ApiError, not_found, service_errors
from serve_app.jobrunner import start_job
from serve_app.market import get_provider
from serve_app.schemas import ai as schemas
from serve_app.schemas.common import AsyncAccepted, Envelope, also, error_responses
from services.ai import context as context_service, execute, workflows

router = APIRouter(prefix="/ai", tags=["ai"])


# -- interpret ---------------------------------------------------------------------------------

def _interpret(state, caller: Caller, query: str, user_context: dict) -> dict:
    from compute.marketdata.reference import KNOWN_PROFILES
    from serve_app.deps import book_for
    from services.ai import facts, intents
    from services.ai.llm import ranker_from_settings
    from services.portfolio import service as portfolio_service

    book = book_for(state, caller, user_context.get("portfolio_id") if isinstance(user_context.get("portfolio_id"), str) else None)
    tags = [t["name"] for t in portfolio_service.list_tags(state.catalog, caller.id)]
    book_tickers = set(book.positions["underlying"].astype(str)) if len(book.positions) else set()
    ranker = ranker_from_settings(state.settings)
    with service_errors("query"):
        got = intents.interpret(query, known_tickers=KNOWN_PROFILES.keys(), book_tickers=book_tickers, tag_names=tags,
                                threshold=state.settings.ai_confidence_threshold, ranker=ranker)
    figures = facts.book_facts(book, got.intent, got.parameters) if got.intent in intents.INTENTS else {}
    text = facts.answer(got.intent, got.parameters, figures, question=got.question, reason=got.reason)
    return {"interpretation": {"intent": got.intent, "confidence": got.confidence, "parameters": got.parameters},
            "actions": got.actions, "response": text, "clarification": got.question, "refusal": got.reason,
            "entities": got.entities, "scores": got.scores, "facts": figures, "backend": got.backend,
            "llm_error": getattr(ranker, "last_error", None)}


@router.post("/interpret", summary="Interpret a request: intent, confidence, parameters, UI actions, answer (spec 9.1)",
             response_model=Envelope[schemas.InterpretResult], responses=error_responses(400, 401, 429, 503))
async def interpret(request: Request, body: schemas.InterpretRequest, caller: CallerDep, state: StateDep, agent: AgentDep):
    context = {**(agent.user_context or {}), **body.context}
    return envelope(request, await run_in_threadpool(_interpret, state, caller, body.query, context))


JOB_ACCEPTED = also(202, AsyncAccepted, "a job (hedge_risk, generate_report, run_backtest with backtest_id, run_sweep "
                    "with sweep_id, or mode=async); poll its poll_url (or result_url)")

# -- execute -----------------------------------------------------------------------------------

async def _start(state, caller: Caller, intent: str, params: dict, planned: dict | None, mode: str):
    """Run a checked intent: a job for the job intents and ``mode=async``, else in a thread.
    Returns (status_code, payload)."""
    provider = get_provider(state)
    if intent == "hedge_risk":
        from services.proforma import hedge

        body = execute.hedge_body(params)
        with service_errors(aliases={"risk_to_hedge": "parameters.risk", "budget": "parameters.budget"}):
            hedge.validate(body)
        job, _ = await start_job(state, caller, "proforma.hedge", {**body, "portfolio_id": None}, estimated_duration_ms=8000)
        return 202, async_accepted(job.id, job.status, job.estimated_duration_ms)
    if intent == "generate_report":
        from services.reports import service as reports

        with service_errors(aliases={"type": "parameters.type", "format": "parameters.format"}):
            req = reports.validate_request(execute.report_body(params))
            reports.check_subject(state.catalog, caller.id, req)
        row = reports.create_report(state.catalog, caller.id, req)
        job, _ = await start_job(state, caller, "reports.generate", {"report_id": row.id}, estimated_duration_ms=3000)
        reports.attach_job(state.catalog, row.id, job.id)
        return 202, {**async_accepted(job.id, job.status, 3000), "report_id": row.id}
    if intent in ("run_backtest", "run_sweep"):
        return 202, await _start_lab(state, caller, intent, params)
    if mode == "async":
        job, _ = await start_job(state, caller, "ai.execute", {"intent": intent, "parameters": params, "plan": planned},
                                 estimated_duration_ms=2000)
        return 202, async_accepted(job.id, job.status, job.estimated_duration_ms)

    def run():
        with service_errors():
            return execute.run(state.catalog, provider, caller.id, intent, params, planned)

    return 200, await run_in_threadpool(run)


async def _start_lab(state, caller: Caller, intent: str, params: dict) -> dict:
    """``run_backtest`` / ``run_sweep``: the Lab's own ``POST /backtest`` / ``POST /backtest_sweep``
    (same checks, quotas and job), their fields named as the agent sent them."""
    from pydantic import ValidationError

    from serve_app.lab_jobs import submit_backtest, submit_sweep
    from serve_app.schemas import lab as lab_schemas, sweeps as sweep_schemas

    aliases = {"sweep.strategy.grid": "parameters.grid", "sweep.strategy": "parameters.strategy",
               "sweep": "parameters.sweep", "strategy": "parameters.strategy", "model_id": "parameters.model_id",
               "start_date": "parameters.start_date", "end_date": "parameters.end_date",
               "risk_profile": "parameters.risk_profile"}
    sweep = intent == "run_sweep"
    body = execute.sweep_body(params) if sweep else execute.backtest_body(params)
    try:
        request = sweep_schemas.SweepRequest(**body) if sweep else lab_schemas.BacktestRequest(**body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "parameters." + ".".join(str(p) for p in first["loc"])
        raise ApiError(400, "INVALID_PARAMETER", f"{field}: {first['msg']}", field=field) from None
    with service_errors(aliases=aliases):
        if sweep:
            accepted = await submit_sweep(state, caller, request)
            url = f"/api/v1/backtest_sweep/{accepted['sweep_id']}"
        else:
            accepted = await submit_backtest(state, caller, request)
            url = f"/api/v1/backtest/{accepted['backtest_id']}"
    return {**async_accepted(accepted["job_id"], accepted["status"], execute.JOB_INTENTS[intent][1]), **accepted,
            "result_url": url}


def _show_session(state, caller: Caller, agent, intent: str, payload: dict) -> None:
    """A plan applied to a modeling session opens it on the caller's dashboard: a navigate event
    to the UI session of ``X-Session-ID`` (the dashboard's default session without one)."""
    from services import ui_sync
    from serve_app.ui_stream import notify

    sid = payload.get("session_id") if isinstance(payload, dict) else None
    if not sid:
        return
    try:
        session = ui_sync.session_id(agent.session_id)
    except ui_sync.UIInputError:
        session = ui_sync.DEFAULT_SESSION
    event = {"type": "navigate", "target": "modeling_tab", "page": "modeling", "filter": None, "sort": None,
             "highlight": [], "reason": f"{intent.replace('_', ' ')}: modeling session {sid}", "session_id": sid}
    ui_sync.publish(state.catalog, caller.id, session, "navigate", event)
    notify(caller.id, session)


@router.post("/execute", summary="Run an intent through the platform's services, or plan it for confirmation (spec 9.2)",
             response_model=Envelope[schemas.ExecuteResult],
             responses={**JOB_ACCEPTED,
                        **error_responses(400, 401, 404, 409, 429, 503)})
async def execute_intent(request: Request, body: schemas.ExecuteRequest, caller: CallerDep, state: StateDep, agent: AgentDep,
                         mode: str = Query("sync", pattern="^(sync|async)$")):
    with service_errors():
        checked = execute.check(body.intent, body.parameters)
    intent, params = checked["intent"], checked["parameters"]

    def make_plan():
        with service_errors():
            return execute.plan(state.catalog, get_provider(state), caller.id, intent, params)

    planned = await run_in_threadpool(make_plan)
    if body.confirmation_required:
        saved = execute.save_confirmation(state.catalog, caller.id, intent, params, planned,
                                          state.settings.ai_confirmation_ttl_s, agent.agent_id)
        return envelope(request, {"status": "pending_confirmation", "intent": intent, "plan": planned, **saved,
                                  "confirm_url": f"/api/v1/ai/execute/{saved['confirmation_id']}/confirm"})
    if planned["changes_positions"]:
        raise ApiError(409, "CONFIRMATION_REQUIRED", f"{intent} with apply_to=portfolio changes positions: it needs a confirmation",
                       field="confirmation_required",
                       ai_suggestions=["resend with confirmation_required: true and confirm the plan",
                                       "use apply_to: session to model the trades first"])
    status, payload = await _start(state, caller, intent, params, planned, mode)
    if status == 202:
        return SigmaJSONResponse(payload, status_code=202)
    _show_session(state, caller, agent, intent, payload)
    return envelope(request, {"status": "completed", "intent": intent, "plan": planned, "result": payload})


@router.post("/execute/{confirmation_id}/confirm", summary="Apply a confirmed plan (single use, expires; spec 9.2)",
             response_model=Envelope[schemas.ExecuteResult],
             responses={**JOB_ACCEPTED,
                        **error_responses(400, 401, 404, 409, 429, 503)})
async def confirm(request: Request, confirmation_id: str, caller: CallerDep, state: StateDep, agent: AgentDep,
                  mode: str = Query("sync", pattern="^(sync|async)$")):
    try:
        with service_errors():
            row = execute.take_confirmation(state.catalog, caller.id, confirmation_id)
    except execute.ConfirmationGone as exc:
        raise ApiError(409, "CONFLICT", str(exc), field="confirmation_id",
                       ai_suggestions=["POST /ai/execute again for a fresh plan"]) from None
    status, payload = await _start(state, caller, row.intent, row.parameters, row.plan, mode)
    execute.record_result(state.catalog, row.id, payload)
    if status == 202:
        return SigmaJSONResponse(payload, status_code=202)
    _show_session(state, caller, agent, row.intent, payload)
    return envelope(request, {"status": "completed", "intent": row.intent, "plan": row.plan, "confirmation_id": row.id,
                              "result": payload})


# -- context -----------------------------------------------------------------------------------

@router.post("/context/save", summary="Save the agent session's context (spec 9.4); X-AI-Agent-ID and X-Session-ID",
             response_model=Envelope[schemas.ContextItem], responses=error_responses(400, 401, 429))
def save_context(request: Request, body: schemas.ContextSave, caller: CallerDep, state: StateDep, agent: AgentDep):
    agent_id, session_id = agent.require()
    with service_errors():
        return envelope(request, context_service.save(state.catalog, caller.id, agent_id, session_id, body.context_type, body.data))


@router.get("/context", summary="The agent session's saved contexts; X-AI-Agent-ID and X-Session-ID",
            response_model=Envelope[schemas.ContextList], responses=error_responses(400, 401, 429))
def get_context(request: Request, caller: CallerDep, state: StateDep, agent: AgentDep,
                context_type: str | None = Query(None, pattern=r"^[A-Za-z0-9_\-.]{1,64}$")):
    agent_id, session_id = agent.require()
    return envelope(request, {"contexts": context_service.load(state.catalog, caller.id, agent_id, session_id, context_type)})


# -- workflows ---------------------------------------------------------------------------------

@router.post("/workflow/create", status_code=201, summary="Create a workflow: cron trigger and actions, run as jobs (spec 9.3)",
             response_model=Envelope[schemas.Workflow], responses=error_responses(400, 401, 429))
def create_workflow(request: Request, body: schemas.WorkflowBody, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, workflows.create(state.catalog, caller.id, body), status_code=201)


@router.get("/workflows", summary="Your workflows with their next run", response_model=Envelope[schemas.WorkflowList],
            responses=error_responses(401, 429))
def list_workflows(request: Request, caller: CallerDep, state: StateDep):
    return envelope(request, {"workflows": workflows.list_all(state.catalog, caller.id)})


@router.get("/workflow/{workflow_id}", summary="One workflow", response_model=Envelope[schemas.Workflow],
            responses=error_responses(401, 404, 429))
def get_workflow(request: Request, workflow_id: str, caller: CallerDep, state: StateDep):
    try:
        return envelope(request, workflows.get(state.catalog, caller.id, workflow_id))
    except LookupError:
        raise not_found("workflow", workflow_id) from None


@router.delete("/workflow/{workflow_id}", status_code=204, response_class=Response, summary="Stop and remove a workflow",
               responses=error_responses(401, 404, 429))
def delete_workflow(workflow_id: str, caller: CallerDep, state: StateDep):
    try:
        workflows.delete(state.catalog, caller.id, workflow_id)
    except LookupError:
        raise not_found("workflow", workflow_id) from None
    return Response(status_code=204)


@router.get("/workflow/{workflow_id}/runs", summary="A workflow's run log, newest first: each action's outcome",
            response_model=Envelope[schemas.WorkflowRunList], responses=error_responses(401, 404, 429))
def workflow_runs(request: Request, workflow_id: str, caller: CallerDep, state: StateDep):
    try:
        return envelope(request, {"runs": workflows.runs(state.catalog, caller.id, workflow_id)})
    except LookupError:
        raise not_found("workflow", workflow_id) from None


@router.post("/workflow/{workflow_id}/run", status_code=202, summary="Run a workflow now, as a job (trigger manual)",
             response_model=schemas.WorkflowRunStarted, responses=error_responses(401, 404, 429, 503))
async def run_workflow(workflow_id: str, caller: CallerDep, state: StateDep):
    try:
        run_id = workflows.new_manual_run(state.catalog, caller.id, workflow_id)
    except LookupError:
        raise not_found("workflow", workflow_id) from None
    job, _ = await start_job(state, caller, "ai.workflow", {"run_id": run_id}, estimated_duration_ms=5000)
    workflows.attach_job(state.catalog, run_id, job.id)
    return SigmaJSONResponse({**async_accepted(job.id, job.status, job.estimated_duration_ms), "run_id": run_id}, status_code=202)
