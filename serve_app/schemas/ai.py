"""AI agent APIs (portfolio spec 9): interpret, execute and confirm, context, workflows, audit."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from serve_app.schemas.common import ServiceBody, Timestamp


class InterpretRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=2000, description="the user's request in plain English")
    context: dict[str, Any] = Field(default_factory=dict, description="e.g. {current_view, recent_actions}")


class Interpretation(BaseModel):
    intent: str = Field(description="a platform intent (docs/ai.md), or clarify / unsupported")
    confidence: float = Field(ge=0, le=1)
    parameters: dict[str, Any]


class UIAction(BaseModel):
    type: Literal["navigate_ui", "highlight_elements", "apply_filter"]
    route: str = Field(description="the /ui route the body is for: /ui/navigate, /ui/highlight, /ui/apply-filter")
    body: dict[str, Any] = Field(description="that route's request body (spec 10)")


class InterpretResult(BaseModel):
    interpretation: Interpretation
    actions: list[UIAction]
    response: str = Field(description="the answer, built from the book's figures; the question when intent is clarify")
    clarification: str | None = Field(None, description="the clarifying question (intent clarify)")
    refusal: str | None = Field(None, description="why the platform does not do it (intent unsupported)")
    entities: dict[str, Any]
    scores: dict[str, float] = Field(description="each intent's cue score (the grammar in docs/ai.md)")
    facts: dict[str, Any] = Field(description="the book's figures the response quotes")
    backend: Literal["rules", "llm"]
    llm_error: str | None = Field(None, description="why the LLM backend was not used, when it is configured")


class ExecuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    intent: str = Field(min_length=1, max_length=40, examples=["reduce_exposure"])
    parameters: dict[str, Any] = Field(default_factory=dict)
    confirmation_required: bool = Field(True, description="return the plan and a confirmation id instead of running")


class ExecuteResult(BaseModel):
    status: Literal["pending_confirmation", "completed"]
    intent: str
    plan: dict[str, Any]
    confirmation_id: str | None = None
    expires_at: Timestamp | None = None
    confirm_url: str | None = None
    result: dict[str, Any] | None = None


class ContextSave(BaseModel):
    model_config = ConfigDict(extra="forbid")

    context_type: str = Field(pattern=r"^[A-Za-z0-9_\-.]{1,64}$", examples=["conversation"])
    data: dict[str, Any] = Field(description="any JSON object (at most 64 KB)")


class ContextItem(BaseModel):
    agent_id: str
    session_id: str
    context_type: str
    data: dict[str, Any]
    updated_at: Timestamp


class ContextList(BaseModel):
    contexts: list[ContextItem]


class WorkflowTrigger(BaseModel):
    type: Literal["time"]
    schedule: str = Field(description="5-field cron, e.g. '0 9 * * *'")
    timezone: str = Field("America/New_York", description="IANA time zone of the cron times")


class WorkflowAction(BaseModel):
    type: Literal["analyze_expiration_risk", "check_risk_limits", "generate_report", "generate_signals"]
    parameters: dict[str, Any] = Field(default_factory=dict)


class WorkflowRequest(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    trigger: WorkflowTrigger
    actions: list[WorkflowAction] = Field(min_length=1, max_length=20)


WorkflowBody = ServiceBody(WorkflowRequest, examples=[{
    "name": "Daily Risk Check", "trigger": {"type": "time", "schedule": "0 9 * * *"},
    "actions": [{"type": "analyze_expiration_risk", "parameters": {"days_ahead": 5}},
                {"type": "check_risk_limits", "parameters": {"alert_on_breach": True}}]}])


class Workflow(BaseModel):
    workflow_id: str
    name: str
    trigger: dict[str, Any]
    actions: list[dict[str, Any]]
    active: bool
    next_run: Timestamp | None
    created_at: Timestamp | None


class WorkflowList(BaseModel):
    workflows: list[Workflow]


class WorkflowRun(BaseModel):
    run_id: str
    scheduled_for: Timestamp
    trigger: Literal["schedule", "manual"]
    status: str = Field(description="queued, running, completed, failed (an action failed), skipped (missed while down)")
    job_id: str | None
    results: list[dict[str, Any]] = Field(description="each action: {type, status: ok|error, result | error}")
    error: str | None
    finished_at: Timestamp | None


class WorkflowRunList(BaseModel):
    runs: list[WorkflowRun]


class WorkflowRunStarted(BaseModel):
    success: Literal[True] = True
    job_id: str
    status: str
    poll_url: str
    estimated_duration_ms: int | None = None
    run_id: str


class AuditRow(BaseModel):
    id: int
    at: Timestamp
    actor: str
    actor_id: int | None
    action: str
    target: str
    target_user_id: int | None
    details: dict[str, Any]
    agent_id: str | None = None
    session_id: str | None = None
    route: str | None = None
    status: int | None = None


class AuditPage(BaseModel):
    events: list[AuditRow]
    total: int
