"""Webhooks (Lab spec "Webhooks"): register a URL for events, list (never the secret), delete,
and read the delivery log. Deliveries are signed (``X-Sigma-Signature``, ``X-Sigma-Timestamp``)
and retried with exponential backoff by ``cluster.webhooks``' dispatcher."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from cluster import webhooks
from serve_app.deps import Caller, Offset, current_user, get_state
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import invalid, not_found
from serve_app.state import AppState

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., min_length=1, max_length=2048)
    events: list[Any] = Field(..., min_length=1, max_length=10)
    secret: str = Field(..., min_length=8, max_length=256)


def _wake(state: AppState) -> None:
    webhooks.wake_dispatcher(state.catalog, state.settings)


@router.post("", status_code=201, summary="Register a webhook for backtest.completed, sweep.completed, signal.generated")
async def create_webhook(body: WebhookRequest, caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    try:
        # URL checks resolve host names: off the event loop.
        row = await asyncio.to_thread(webhooks.register, state.catalog, state.settings, caller.id, body.url,
                                      body.events, body.secret)
    except webhooks.WebhookError as exc:
        raise invalid(exc.field, exc.reason) from None
    _wake(state)
    return SigmaJSONResponse(webhooks.webhook_view(row), status_code=201)


@router.get("", summary="Your webhooks (secrets are never returned)")
def list_webhooks(caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    rows = webhooks.list_webhooks(state.catalog, caller.id)
    if rows:
        _wake(state)
    return SigmaJSONResponse({"items": [webhooks.webhook_view(r) for r in rows], "total": len(rows)})


@router.delete("/{webhook_id}", summary="Delete a webhook and its delivery log")
def delete_webhook(webhook_id: str, caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    try:
        webhooks.delete_webhook(state.catalog, caller.id, webhook_id)
    except LookupError:
        raise not_found("webhook", webhook_id) from None
    return SigmaJSONResponse({"webhook_id": webhook_id, "deleted": True})


@router.get("/{webhook_id}/deliveries", summary="Delivery log: status, attempts, last response, payload")
def list_deliveries(webhook_id: str, status: str | None = Query(None, pattern="^(pending|delivered|failed)$"),
                    limit: int = Query(50, ge=1, le=500), offset: int = Offset,
                    caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    try:
        rows, total = webhooks.deliveries(state.catalog, caller.id, webhook_id, status=status, limit=limit, offset=offset)
    except LookupError:
        raise not_found("webhook", webhook_id) from None
    if any(r.status == "pending" for r in rows):
        _wake(state)
    return SigmaJSONResponse({"items": [webhooks.delivery_view(r) for r in rows], "total": total,
                              "limit": limit, "offset": offset})
