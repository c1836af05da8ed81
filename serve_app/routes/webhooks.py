"""Webhooks (Lab spec "Webhooks"): register a URL for events, list (never the secret), delete,
and read the delivery log. Deliveries are signed (``X-Sigma-Signature``, ``X-Sigma-Timestamp``)
and retried with exponential backoff by ``cluster.webhooks``' dispatcher."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query

from cluster import webhooks
from serve_app.deps import CallerDep, OffsetQuery, StateDep
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import not_found, service_errors
from serve_app.schemas import webhooks as schemas
from serve_app.schemas.common import error_responses
from serve_app.state import AppState

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _wake(state: AppState) -> None:
    webhooks.wake_dispatcher(state.catalog, state.settings)


@router.post("", status_code=201, summary="Register a webhook for backtest.completed, sweep.completed, signal.generated",
             response_model=schemas.Webhook, responses=error_responses(400, 401, 429))
async def create_webhook(body: schemas.WebhookRequest, caller: CallerDep, state: StateDep):
    with service_errors():
        # URL checks resolve host names: off the event loop.
        row = await asyncio.to_thread(webhooks.register, state.catalog, state.settings, caller.id, body.url,
                                      body.events, body.secret)
    _wake(state)
    return SigmaJSONResponse(webhooks.webhook_view(row), status_code=201)


@router.get("", summary="Your webhooks (secrets are never returned)", response_model=schemas.WebhookList,
            responses=error_responses(401, 429))
def list_webhooks(caller: CallerDep, state: StateDep):
    rows = webhooks.list_webhooks(state.catalog, caller.id)
    if rows:
        _wake(state)
    return SigmaJSONResponse({"items": [webhooks.webhook_view(r) for r in rows], "total": len(rows)})


@router.delete("/{webhook_id}", summary="Delete a webhook and its delivery log", response_model=schemas.WebhookDeleted,
               responses=error_responses(401, 404, 429))
def delete_webhook(webhook_id: str, caller: CallerDep, state: StateDep):
    try:
        webhooks.delete_webhook(state.catalog, caller.id, webhook_id)
    except LookupError:
        raise not_found("webhook", webhook_id) from None
    return SigmaJSONResponse({"webhook_id": webhook_id, "deleted": True})


@router.get("/{webhook_id}/deliveries", summary="Delivery log: status, attempts, last response, payload",
            response_model=schemas.DeliveryList, responses=error_responses(400, 401, 404, 429))
def list_deliveries(webhook_id: str, caller: CallerDep, state: StateDep,
                    status: str | None = Query(None, pattern="^(pending|delivered|failed)$"),
                    limit: int = Query(50, ge=1, le=500), offset: OffsetQuery = 0):
    try:
        rows, total = webhooks.deliveries(state.catalog, caller.id, webhook_id, status=status, limit=limit, offset=offset)
    except LookupError:
        raise not_found("webhook", webhook_id) from None
    if any(r.status == "pending" for r in rows):
        _wake(state)
    return SigmaJSONResponse({"items": [webhooks.delivery_view(r) for r in rows], "total": total,
                              "limit": limit, "offset": offset})
