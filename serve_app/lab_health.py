"""Pack and model health for GET /healthz (filled in by the Lab routes)."""

from __future__ import annotations

from serve_app.deps import Caller
from serve_app.errors import invalid
from serve_app.state import AppState


def pack_health(state: AppState, caller: Caller, pack_id: str) -> dict:
    raise invalid("pack_id", f"unknown pack {pack_id!r}: the Lab packs are not installed on this server")


def model_health(state: AppState, caller: Caller, model_id: str) -> dict:
    raise invalid("model_id", f"unknown model {model_id!r}")
