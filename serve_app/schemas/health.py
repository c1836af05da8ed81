"""GET /healthz."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from serve_app.schemas.common import Number, Timestamp

Status = Literal["healthy", "degraded", "unhealthy"]


class Check(BaseModel):
    status: Status
    latency_ms: float
    detail: dict[str, Any] | None = None
    error: str | None = None


class Health(BaseModel):
    status: Literal["healthy", "degraded"]
    timestamp: Timestamp
    components: dict[str, Status]
    checks: dict[str, Check]
    version: str


class TickerHealth(BaseModel):
    status: Status
    last_update: Timestamp | None = None
    data_quality: Number = None
    provider: str


class HealthDetail(BaseModel):
    """With ``ticker``, ``pack_id`` or ``model_id`` (a token needed): those components only."""

    ticker: TickerHealth | None = None
    pack: dict[str, Any] | None = Field(None, description="status, models_count, active_signals")
    model: dict[str, Any] | None = Field(None, description="status, last_backtest, performance")
