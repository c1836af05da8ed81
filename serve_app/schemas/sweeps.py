"""Sweeps (Lab spec "Run Sweep") and the leaderboard (Lab spec "Leaderboard API")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from serve_app.schemas.common import IsoDate, Number, Timestamp
from services.lab.sweeps import MAX_CHUNK


class SweepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(..., min_length=1, max_length=80)
    risk_profile: str | None = None
    sweep: dict[str, Any] | None = Field(None, description="grid; omitted or {}: the model's pack's default grid; "
                                         "{strategy: {name, grid: {parameter: [values]}}, long_only}: a built-in "
                                         "strategy's windows, thresholds and holding limits (max_hold)")
    tag: str | None = Field(None, min_length=1, max_length=80)
    matrix_sha: str | None = Field(None, min_length=8, max_length=64)
    start_date: IsoDate | None = None
    end_date: IsoDate | None = None
    chunk_size: int | None = Field(None, ge=1, le=MAX_CHUNK, strict=True,
                                   description="configurations per Tune trial (default: about 25 M bar-configurations)")


class SweepAccepted(BaseModel):
    sweep_id: str
    total_configs: int
    status: str = Field(description="running or queued")
    progress: float
    tag: str | None = None
    model_id: str
    risk_profile: str | None = None
    job_id: str
    queue_position: int
    warnings: list[str] = Field(default_factory=list)


class Sweep(BaseModel):
    sweep_id: str
    model_id: str
    tag: str | None = None
    risk_profile: str | None = None
    status: str
    total_configs: int
    done_configs: int
    progress: float = Field(description="done/total, 0..1")
    best: dict[str, Any] | None = Field(None, description="the best result so far (leaderboard order)")
    eta_seconds: Number = None
    grid: dict[str, Any] | None = None
    matrix_sha: str | None = None
    job_id: str | None = None
    error: str | None = None
    created_at: Timestamp | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    leaderboard_url: str
    queue_position: int | None = Field(None, description="on resume")


class SweepList(BaseModel):
    items: list[Sweep]
    limit: int
    offset: int


class Gate(BaseModel):
    pass_: bool | None = Field(None, alias="pass")
    reasons: list[Any] | None = None


class LeaderboardItem(BaseModel):
    rank: int
    result_id: str
    backtest_id: str | None = None
    sweep_id: str | None = None
    config_index: int | None = None
    model_id: str
    pack_id: str | None = None
    tag: str | None = None
    risk_profile: str | None = None
    metrics: dict[str, Any]
    gate: Gate
    score: Number = None
    config: dict[str, Any] | None = None
    created_at: Timestamp | None = None


class Leaderboard(BaseModel):
    items: list[LeaderboardItem]
    total: int
    limit: int
    offset: int
