"""Lab packs and their templates (docs/spec/reference.md "Lab packs")."""

from __future__ import annotations

from fastapi import APIRouter

from services.lab import packs
from serve_app.deps import CallerDep
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import not_found
from serve_app.schemas.common import error_responses
from serve_app.schemas.lab import PackList, TemplateList

router = APIRouter(tags=["lab"])


@router.get("/packs", summary="Lab packs: instrument, cadence, label, indicators, trainer defaults, risk policies",
            response_model=PackList, responses=error_responses(401, 429))
def get_packs(caller: CallerDep):
    items = packs.list_packs()
    return SigmaJSONResponse({"items": items, "total": len(items)})


@router.get("/packs/{pack_id}/templates", summary="Templates of a pack (default first)", response_model=TemplateList,
            responses=error_responses(401, 404, 429))
def get_pack_templates(pack_id: str, caller: CallerDep):
    try:
        items = packs.pack_templates(pack_id)
    except LookupError:
        raise not_found("pack", pack_id) from None
    return SigmaJSONResponse({"pack_id": pack_id, "items": items, "total": len(items)})
