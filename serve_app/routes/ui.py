"""UI sync (spec 10): an agent steers the caller's dashboard. The three POST routes publish an
event to the caller's UI session (``X-Session-ID``, default ``default``); ``GET /ui/events``
streams the session's events as Server-Sent Events (``Last-Event-ID`` replays missed ones)."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from cluster.catalog import Position
from services import ui_sync
from services.portfolio import service
from serve_app.deps import CallerDep, StateDep, bearer_token
from serve_app.envelope import envelope
from serve_app.errors import ApiError, not_found
from serve_app.schemas import ui as schemas
from serve_app.schemas.common import Envelope, error_responses
from serve_app.ui_stream import event_stream, notify, sse_response, start_after

router = APIRouter(prefix="/ui", tags=["ui"])

SessionHeader = Header(None, alias="X-Session-ID", description="the UI session to publish to (default: 'default'); "
                       "sessions are per user", max_length=64)


@contextmanager
def ui_errors():
    try:
        yield
    except ui_sync.UIInputError as exc:
        details = {"field": exc.field, "reason": exc.reason}
        if exc.valid is not None:
            details["valid"] = exc.valid
        message = f"The '{exc.field}' parameter is invalid: {exc.reason}"
        if exc.valid is not None:
            message += f" (valid: {', '.join(exc.valid)})"
        raise ApiError(400, "INVALID_PARAMETER", message, field=exc.field, details=details) from None


def _position_ids(state, caller) -> list[str]:
    with state.catalog.session() as s:
        return list(s.scalars(select(Position.id).where(Position.user_id == caller.id)))


def _tag_names(state, caller) -> list[str]:
    return [t["name"] for t in service.list_tags(state.catalog, caller.id)]


def _own_session(state, caller, session_id: str) -> None:
    """404 unless ``session_id`` is the caller's open modeling session."""
    from services.proforma.sessions import load_session

    try:
        load_session(state.catalog, caller.id, session_id)
    except LookupError:
        raise not_found("modeling session", session_id) from None


def _publish(request: Request, state, session: str, kind: str, event: dict):
    """Store the checked event in the caller's UI session, wake its streams, answer with it."""
    caller_id = request.state.caller.id
    event_id = ui_sync.publish(state.catalog, caller_id, session, kind, event)
    notify(caller_id, session)
    return envelope(request, {"event_id": event_id, "session_id": session, "type": kind, "event": event})


@router.post("/navigate", summary="Switch the dashboard to a page, optionally with a filter, sort and highlights",
             response_model=Envelope[schemas.UIEventOut], responses=error_responses(400, 401, 404, 429))
def navigate(request: Request, body: schemas.NavigateBody, caller: CallerDep, state: StateDep,
             x_session_id: str | None = SessionHeader):
    with ui_errors():
        session = ui_sync.session_id(x_session_id)
        page = ui_sync.page_of(body.target)
        preset = ui_sync.check_preset(body.params.filter, _tag_names(state, caller), "params.filter") \
            if body.params.filter else None
        sort = ui_sync.parse_sort(body.params.sort.model_dump() if isinstance(body.params.sort, schemas.SortSpec)
                                  else body.params.sort, "params.sort")
        if body.params.highlight:
            ui_sync.check_elements(body.params.highlight, _position_ids(state, caller), "params.highlight")
        if body.params.session_id:
            if page != "modeling":
                raise ui_sync.UIInputError("params.session_id", "only with the modeling target", ("modeling", "modeling_tab"))
            _own_session(state, caller, body.params.session_id)
    reason = (body.ai_context or {}).get("reason")
    event = {"type": "navigate", "target": body.target, "page": page, "filter": preset, "sort": sort,
             "highlight": body.params.highlight, "reason": str(reason)[:200] if reason is not None else None,
             "session_id": body.params.session_id}
    return _publish(request, state, session, "navigate", event)


@router.post("/highlight", summary="Highlight dashboard elements (metrics, panels, positions) with a style and pulse",
             response_model=Envelope[schemas.UIEventOut], responses=error_responses(400, 401, 429))
def highlight(request: Request, body: schemas.HighlightBody, caller: CallerDep, state: StateDep,
              x_session_id: str | None = SessionHeader):
    with ui_errors():
        session = ui_sync.session_id(x_session_id)
        for i, el in enumerate(body.elements):
            ui_sync.check_style(el.style, f"elements[{i}].style")
        ui_sync.check_elements([el.id for el in body.elements], _position_ids(state, caller))
    event = {"type": "highlight", "elements": [el.model_dump() for el in body.elements]}
    return _publish(request, state, session, "highlight", event)


@router.post("/apply-filter", summary="Apply a filter preset and sort to the dashboard's positions table",
             response_model=Envelope[schemas.UIEventOut], responses=error_responses(400, 401, 429))
def apply_filter(request: Request, body: schemas.ApplyFilterBody, caller: CallerDep, state: StateDep,
                 x_session_id: str | None = SessionHeader):
    with ui_errors():
        session = ui_sync.session_id(x_session_id)
        if body.view not in ui_sync.VIEWS:
            raise ui_sync.UIInputError("view", f"unknown view {body.view!r}", ui_sync.VIEWS)
        preset = ui_sync.check_preset(body.filter.preset, _tag_names(state, caller))
        sort = ui_sync.parse_sort(body.filter.sort.model_dump() if body.filter.sort else None)
    event = {"type": "filter", "view": body.view, "page": "portfolio", "preset": preset, "sort": sort,
             "reason": body.highlight_reason}
    return _publish(request, state, session, "filter", event)


@router.get("/events", summary="The UI session's events as Server-Sent Events (Last-Event-ID replays missed ones)",
            response_class=StreamingResponse,
            responses={**error_responses(400, 401, 429),
                       200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                             "description": "event: navigate|highlight|filter, id: the event id, data: JSON; "
                                            "event: logout when the token expires or is revoked"}})
async def events(request: Request, caller: CallerDep, state: StateDep, x_session_id: str | None = SessionHeader):
    with ui_errors():
        session = ui_sync.session_id(x_session_id or request.query_params.get("session"))
    after = await asyncio.to_thread(start_after, request, state.catalog, caller.id, session)
    token = bearer_token(request) or ""
    claims = getattr(request.state, "claims", None) or {}
    return sse_response(event_stream(request, state, caller.id, session, after, token, claims))
