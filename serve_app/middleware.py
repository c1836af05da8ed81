"""Request ids, timing and rate limits for every request."""

from __future__ import annotations

import re
import secrets
import time

from fastapi import FastAPI, Request
from starlette.middleware.base import BaseHTTPMiddleware

from serve_app.errors import error_body
from serve_app.security import TokenError, decode_token

_RID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
#: Load balancers poll health; the docs are static. Neither spends a caller's budget.
UNLIMITED_PATHS = ("/api/v1/healthz", "/api/v1/docs", "/api/v1/openapi.json", "/api/v1/redoc")


def new_request_id() -> str:
    return f"req_{secrets.token_hex(8)}"


def _rate_key(request: Request, secret: str) -> tuple[str, str]:
    """Bucket key and tier: the token's user when it verifies, else the client address (free tier)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            claims = decode_token(secret, token.strip())
            return f"user:{claims['sub']}", str(claims.get("tier", "free"))
        except TokenError:
            pass
    host = request.client.host if request.client else "unknown"
    return f"ip:{host}", "free"


class SigmaMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next):
        started = time.perf_counter()
        incoming = request.headers.get("x-request-id", "")
        request_id = incoming if _RID_RE.match(incoming) else new_request_id()
        request.state.request_id = request_id
        request.state.started = started
        state = request.app.state.sigma

        limit_headers: dict[str, str] = {}
        if not request.url.path.startswith(UNLIMITED_PATHS):
            key, tier = _rate_key(request, state.jwt_secret)
            verdict = await state.limiter.hit(key, tier)
            if verdict["limit"] is not None:
                limit_headers = {
                    "X-RateLimit-Limit": str(verdict["limit"]),
                    "X-RateLimit-Remaining": str(verdict["remaining"]),
                    "X-RateLimit-Reset": str(verdict["reset"]),
                }
            if not verdict["allowed"]:
                from fastapi.responses import JSONResponse

                body = error_body(
                    request_id,
                    "RATE_LIMITED",
                    f"Rate limit exceeded for tier '{tier}'; retry in {verdict['retry_after']} s",
                    details={"tier": tier, "retry_after": verdict["retry_after"]},
                )
                headers = {**limit_headers, "Retry-After": str(verdict["retry_after"])}
                if state.sets_request_id_header:
                    headers["X-Request-ID"] = request_id
                return JSONResponse(body, status_code=429, headers=headers)

        response = await call_next(request)
        if state.sets_request_id_header:
            response.headers["X-Request-ID"] = request_id
        for name, value in limit_headers.items():
            response.headers[name] = value
        response.headers["X-Execution-Time-Ms"] = f"{(time.perf_counter() - started) * 1000:.1f}"
        return response


def install_middleware(app: FastAPI) -> None:
    app.add_middleware(SigmaMiddleware)
