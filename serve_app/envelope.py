"""Success bodies of the portfolio API (spec 3.3) and its async form (spec 3.4)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fastapi import Request


def envelope(request: Request, data: Any, *, cache_status: str | None = None, meta: dict | None = None, errors: list | None = None) -> dict:
    started = getattr(request.state, "started", None)
    elapsed = (time.perf_counter() - started) * 1000 if started else None
    body_meta = {
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        "request_id": getattr(request.state, "request_id", None),
        "execution_time_ms": round(elapsed, 2) if elapsed is not None else None,
        "cache_status": cache_status,
    }
    if meta:
        body_meta.update(meta)
    return {"success": True, "data": data, "meta": body_meta, "errors": errors or []}


def async_accepted(job_id: str, status: str, estimated_duration_ms: int | None) -> dict:
    return {
        "success": True,
        "job_id": job_id,
        "status": status,
        "poll_url": f"/api/v1/jobs/{job_id}",
        "estimated_duration_ms": estimated_duration_ms,
    }
