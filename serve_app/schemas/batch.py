"""Admin: the daily batch."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from serve_app.schemas.common import AsyncAccepted, IsoDate, Timestamp


class BatchRequest(BaseModel):
    date: IsoDate | None = Field(None, description="session to run (default: the latest closed session)")


class BatchAccepted(AsyncAccepted):
    run_id: str


class BatchStep(BaseModel):
    step: str
    status: str
    attempts: int | None = None
    error: str | None = None
    duration_ms: float | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None


class BatchPortfolio(BaseModel):
    portfolio_id: str
    status: str
    steps: list[BatchStep]


class BatchRun(BaseModel):
    run_id: str
    as_of: str
    status: str
    trigger: str | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    summary: dict[str, Any] | None = None


class BatchRunDetail(BatchRun):
    portfolios: list[BatchPortfolio]
