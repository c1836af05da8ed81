"""Tag management (spec 2.7): a user's tags, with how many positions carry each."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response

from services.portfolio import service
from serve_app.deps import Caller, current_user, get_state
from serve_app.envelope import envelope
from serve_app.errors import invalid
from serve_app.routes.portfolio import service_errors
from serve_app.state import AppState

router = APIRouter(prefix="/tags", tags=["tags"])


def _body(body: Any) -> dict:
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object")
    return body


@router.get("", summary="List tags")
def list_tags(request: Request, caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    return envelope(request, {"tags": service.list_tags(state.catalog, caller.id)})


@router.post("", status_code=201, summary="Create a tag")
def create_tag(request: Request, body: Any = Body(..., examples=[{"name": "#momentum", "color": "#4CAF50"}]),
               caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    with service_errors():
        return envelope(request, service.create_tag(state.catalog, caller.id, _body(body)), status_code=201)


@router.put("/{tag_id}", summary="Rename or recolour a tag")
def update_tag(tag_id: str, request: Request, body: Any = Body(...), caller: Caller = Depends(current_user),
               state: AppState = Depends(get_state)):
    with service_errors():
        return envelope(request, service.update_tag(state.catalog, caller.id, tag_id, _body(body)))


@router.delete("/{tag_id}", status_code=204, summary="Delete a tag (positions keep their other tags)")
def delete_tag(tag_id: str, caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    with service_errors():
        service.delete_tag(state.catalog, caller.id, tag_id)
    return Response(status_code=204)
