"""Webhooks (Lab spec "Webhooks")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from serve_app.schemas.common import Deleted, Timestamp


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., min_length=1, max_length=2048, examples=["https://example.com/sigma-hook"])
    events: list[Any] = Field(..., min_length=1, max_length=10,
                              description="backtest.completed, sweep.completed, signal.generated, report.ready, alert.triggered")
    secret: str = Field(..., min_length=8, max_length=256, description="signs deliveries (X-Sigma-Signature)")


class Webhook(BaseModel):
    webhook_id: str
    url: str
    events: list[str]
    active: bool
    created_at: Timestamp | None = None


class WebhookList(BaseModel):
    items: list[Webhook]
    total: int


class WebhookDeleted(Deleted):
    webhook_id: str


class Delivery(BaseModel):
    delivery_id: str
    webhook_id: str
    event: str
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None
    next_attempt_at: Timestamp | None = None
    created_at: Timestamp | None = None
    delivered_at: Timestamp | None = None
    payload: dict[str, Any] | None = None


class DeliveryList(BaseModel):
    items: list[Delivery]
    total: int
    limit: int
    offset: int
