"""Packs and their templates as the API lists them."""

from __future__ import annotations

import logging


from compute import packs as packs_mod

log = logging.getLogger("sigma.lab")


def list_packs() -> list[dict]:
    """Every pack with its policies and the ids of its templates."""
    out = []
    for pack in packs_mod.list_packs():
        d = pack.to_dict()
        d["templates"] = [t.template_id for t in packs_mod.templates_for(pack.pack_id)]
        out.append(d)
    return out


def pack_templates(pack_id: str) -> list[dict]:
    try:
        return [t.to_dict() for t in packs_mod.templates_for(pack_id)]
    except ValueError as exc:
        raise LookupError(str(exc)) from None
