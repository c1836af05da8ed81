"""Lab packs and their templates (docs/spec/reference.md "Lab packs")."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from services.lab import packs
from serve_app.deps import Caller, current_user
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import not_found

router = APIRouter(tags=["lab"])


@router.get("/packs", summary="Lab packs: instrument, cadence, label, indicators, trainer defaults, risk policies")
def get_packs(caller: Caller = Depends(current_user)):
    items = packs.list_packs()
    return SigmaJSONResponse({"items": items, "total": len(items)})


@router.get("/packs/{pack_id}/templates", summary="Templates of a pack (default first)")
def get_pack_templates(pack_id: str, caller: Caller = Depends(current_user)):
    try:
        items = packs.pack_templates(pack_id)
    except LookupError:
        raise not_found("pack", pack_id) from None
    return SigmaJSONResponse({"pack_id": pack_id, "items": items, "total": len(items)})
