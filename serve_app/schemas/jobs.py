"""Jobs (portfolio spec section 14)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from serve_app.schemas.common import Timestamp


class Job(BaseModel):
    job_id: str
    kind: str
    status: str = Field(description="queued, running, completed, failed or cancelled")
    progress: float | None = None
    message: str | None = None
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    estimated_completion: Timestamp | None = None
    error: dict[str, Any] | None = None


class JobResult(BaseModel):
    job_id: str
    status: str
    result: Any = Field(None, description="the original endpoint's data once completed")
    error: dict[str, Any] | None = Field(None, description="when failed")


class JobCancelled(BaseModel):
    job_id: str
    status: str


class ProbeRequest(BaseModel):
    duration_s: float = Field(0.0, ge=0.0, le=60.0, strict=True, description="keep a worker busy this long (0-60 s)")
