"""Modeling sessions (portfolio spec 7.1-7.4, 7.7): what-if copies of the book, their impact,
and the broker-ready trade list of their changes."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.proforma import exports, service, sessions
from serve_app.deps import CallerDep, StateDep
from serve_app.envelope import envelope
from serve_app.errors import service_errors
from serve_app.market import get_provider
from serve_app.schemas import proforma as schemas
from serve_app.schemas.common import Envelope, error_responses

router = APIRouter(prefix="/modeling/sessions", tags=["proforma"])

PRICED_ERRORS = error_responses(400, 401, 404, 429, 503)


@router.post("", status_code=201, summary="Open a modeling session on a copy of the book (spec 7.1)",
             response_model=Envelope[schemas.Session], responses=error_responses(400, 401, 429))
def create_session(request: Request, body: schemas.NewSessionBody, caller: CallerDep, state: StateDep):
    with service_errors():
        created = sessions.create_session(state.catalog, caller.id, body)
    return envelope(request, created, status_code=201)


@router.get("", summary="The caller's open modeling sessions", response_model=Envelope[schemas.SessionList],
            responses=error_responses(401, 429))
def list_sessions(request: Request, caller: CallerDep, state: StateDep):
    return envelope(request, {"sessions": sessions.list_sessions(state.catalog, caller.id)})


@router.get("/{session_id}", summary="Original and modified book, changes and impact (spec 7.2)",
            response_model=Envelope[schemas.SessionDetail], responses=PRICED_ERRORS)
def get_session(session_id: str, request: Request, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, service.get_session(state.catalog, get_provider(state), caller.id, session_id))


@router.put("/{session_id}/positions", summary="Modify, close or add positions, all or nothing (spec 7.3)",
            response_model=Envelope[schemas.SessionDetail], responses=PRICED_ERRORS)
def modify_positions(session_id: str, request: Request, body: schemas.ModificationsBody, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, service.modify(state.catalog, get_provider(state), caller.id, session_id,
                                                body.get("modifications")))


@router.post("/{session_id}/reset", summary="Restore the original book (spec 7.4)",
             response_model=Envelope[schemas.SessionDetail], responses=PRICED_ERRORS)
def reset_session(session_id: str, request: Request, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, service.reset(state.catalog, get_provider(state), caller.id, session_id))


@router.delete("/{session_id}", status_code=204, summary="Close (delete) a modeling session", response_class=Response,
               responses=error_responses(401, 404, 429))
def delete_session(session_id: str, caller: CallerDep, state: StateDep):
    with service_errors():
        sessions.delete_session(state.catalog, caller.id, session_id)
    return Response(status_code=204)


@router.get("/{session_id}/export", summary="The session's changes as a broker trade list: csv, json or FIX 4.4 (spec 7.7)",
            response_model=Envelope[schemas.TradeList], responses=PRICED_ERRORS)
def export_session(session_id: str, request: Request, caller: CallerDep, state: StateDep,
                   format: str = Query("csv", description="csv | json | fix")):
    with service_errors():
        return envelope(request, exports.session_trade_list(state.catalog, get_provider(state), state.store, caller.id,
                                                            session_id, format))


@router.post("/{session_id}/apply-hedge", summary="Add a hedge found by POST /proforma/hedge to the session",
             response_model=Envelope[schemas.SessionDetail], responses=PRICED_ERRORS)
def apply_hedge(session_id: str, request: Request, body: schemas.ApplyHedgeBody, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, service.apply_hedge(state.catalog, get_provider(state), caller.id, session_id, body))
