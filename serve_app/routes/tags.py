"""Tag management (spec 2.7): a user's tags, with how many positions carry each."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.portfolio import service
from serve_app.deps import CallerDep, StateDep
from serve_app.envelope import envelope
from serve_app.errors import service_errors
from serve_app.schemas.common import Envelope, created_links, error_responses
from serve_app.schemas.tags import Tag, TagCreateBody, TagList, TagUpdateBody

router = APIRouter(prefix="/tags", tags=["tags"])


@router.get("", summary="List tags", response_model=Envelope[TagList], responses=error_responses(401, 429))
def list_tags(request: Request, caller: CallerDep, state: StateDep):
    return envelope(request, {"tags": service.list_tags(state.catalog, caller.id)})


@router.post("", status_code=201, summary="Create a tag", response_model=Envelope[Tag],
             responses={**error_responses(400, 401, 409, 429), **created_links(201, "/data/id", {
                 "UpdateTag": ("put", "/api/v1/tags/{tag_id}", "tag_id"),
                 "DeleteTag": ("delete", "/api/v1/tags/{tag_id}", "tag_id")})})
def create_tag(request: Request, body: TagCreateBody, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, service.create_tag(state.catalog, caller.id, body), status_code=201)


@router.put("/{tag_id}", summary="Rename or recolour a tag", response_model=Envelope[Tag],
            responses=error_responses(400, 401, 404, 409, 429))
def update_tag(tag_id: str, request: Request, body: TagUpdateBody, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, service.update_tag(state.catalog, caller.id, tag_id, body))


@router.delete("/{tag_id}", status_code=204, summary="Delete a tag (positions keep their other tags)",
               response_class=Response, responses=error_responses(401, 404, 429))
def delete_tag(tag_id: str, caller: CallerDep, state: StateDep):
    with service_errors():
        service.delete_tag(state.catalog, caller.id, tag_id)
    return Response(status_code=204)
