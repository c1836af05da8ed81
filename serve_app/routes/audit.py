"""``GET /audit``: the audit log. Every write an AI agent makes (a request with
``X-AI-Agent-ID``) is a row with the agent, its ``X-Session-ID``, the route and the outcome
(``serve_app.middleware``); admin actions on users are rows too. A user sees their own rows;
an admin sees everyone's."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from serve_app.deps import CallerDep, OffsetQuery, StateDep
from serve_app.envelope import envelope
from serve_app.schemas.ai import AuditPage
from serve_app.schemas.common import Envelope, error_responses
from serve_app.users import audit_events

router = APIRouter(prefix="/audit", tags=["ai"])


@router.get("", summary="Audit log, newest first: your own rows (admins: all)", response_model=Envelope[AuditPage],
            responses=error_responses(400, 401, 429))
def list_audit(request: Request, caller: CallerDep, state: StateDep, offset: OffsetQuery = 0,
               limit: int = Query(100, ge=1, le=1000),
               kind: str = Query("all", pattern="^(all|admin|agent)$", description="admin actions, AI-agent writes, or all"),
               agent_id: str | None = Query(None, max_length=128), session_id: str | None = Query(None, max_length=128)):
    events, total = audit_events(state.catalog, actor_id=None if caller.is_admin else caller.id, kind=kind,
                                 agent_id=agent_id, session_id=session_id, limit=limit, offset=offset)
    return envelope(request, {"events": events, "total": total})
