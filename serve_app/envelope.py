"""Success bodies of the portfolio API (spec 3.3) and its async form (spec 3.4)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse


class SigmaJSONResponse(JSONResponse):
    """orjson rendering: numpy scalars and arrays, dates, and NaN/inf as null (JSON has no NaN)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def envelope(
    request: Request,
    data: Any,
    *,
    cache_status: str | None = None,
    meta: dict | None = None,
    errors: list | None = None,
    status_code: int = 200,
) -> SigmaJSONResponse:
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
    from services.portfolio.service import BOOK_PRICING, BOOK_WARNINGS

    warnings = BOOK_WARNINGS.get()
    if warnings:  # market data the book could not get (degraded, not failed)
        body_meta["warnings"] = list(warnings)
    pricing = BOOK_PRICING.get()
    if pricing and not body_meta.get("market_data"):  # where the figures were priced from, and when
        body_meta["market_data"] = dict(pricing)
    return SigmaJSONResponse({"success": True, "data": data, "meta": body_meta, "errors": errors or []}, status_code=status_code)


def async_accepted(job_id: str, status: str, estimated_duration_ms: int | None) -> dict:
    return {
        "success": True,
        "job_id": job_id,
        "status": status,
        "poll_url": f"/api/v1/jobs/{job_id}",
        "estimated_duration_ms": estimated_duration_ms,
    }
