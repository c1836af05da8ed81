"""Request ids, timing, token decoding and rate limits for every request (pure ASGI, no copies)."""

from __future__ import annotations

import re
import secrets
import time

import orjson
from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders

from cluster import metrics
from cluster.config import ANONYMOUS_TIER
from serve_app.errors import error_body
from serve_app.security import TokenError, decode_token
from services.portfolio.service import BOOK_PRICING, BOOK_WARNINGS

_RID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
#: Load balancers poll health; the docs are static. Neither spends a caller's budget.
UNLIMITED_PATHS = ("/api/v1/healthz", "/api/v1/docs", "/api/v1/openapi.json", "/api/v1/redoc", "/app/static/")


def new_request_id() -> str:
    return f"req_{secrets.token_hex(8)}"


#: The dashboard's calls into the API from inside this process carry this key: their page was
#: already counted against the user's budget (random per process: no outside caller can send it).
INTERNAL_KEY = secrets.token_hex(16)
#: The dashboard's cookie (an access token, HttpOnly, SameSite=Strict, Path=/app): read only
#: for /app paths; the API under /api/v1 takes tokens from the Authorization header alone.
DASHBOARD_COOKIE = "sigma_session"
DASHBOARD_PREFIX = "/app"


def token_claims(headers: Headers, secret: str, path: str = "") -> dict | None:
    """The verified claims of a bearer token (or, under /app, the dashboard's cookie), or None
    (the route's auth says why it failed)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        if path.startswith(DASHBOARD_PREFIX):
            token = _cookie(headers, DASHBOARD_COOKIE)
            if token:
                try:
                    return decode_token(secret, token)
                except TokenError:
                    return None
        return None
    try:
        return decode_token(secret, token.strip())
    except TokenError:
        return None


def _cookie(headers: Headers, name: str) -> str | None:
    from http.cookies import SimpleCookie

    raw = headers.get("cookie")
    if not raw:
        return None
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # noqa: BLE001 - a garbled cookie header is no token
        return None
    return jar[name].value if name in jar else None


class SigmaMiddleware:
    """Adopts or makes the request id, decodes the token once, applies the caller's rate limit
    (the user's tier when the token verifies, else the client address's anonymous budget) and
    adds the id, rate-limit and timing headers to the response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope["app"].state.sigma
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _RID_RE.match(incoming) else new_request_id()
        claims = token_claims(headers, state.jwt_secret, scope["path"])
        request_state = scope.setdefault("state", {})
        request_state.update(request_id=request_id, started=started, claims=claims)
        BOOK_WARNINGS.set([])  # this request's (and its worker threads') market data warnings
        BOOK_PRICING.set({})  # and where its figures were priced from (meta.market_data)

        extra: list[tuple[str, str]] = []
        if state.sets_request_id_header:
            extra.append(("X-Request-ID", request_id))
        internal = headers.get("x-sigma-internal") == INTERNAL_KEY
        if not internal and not scope["path"].startswith(UNLIMITED_PATHS):
            if claims is not None:
                key, tier = f"user:{claims['sub']}", str(claims.get("tier", "free"))
            else:
                key, tier = f"ip:{scope['client'][0] if scope.get('client') else 'unknown'}", ANONYMOUS_TIER
            verdict = await state.limiter.hit(key, tier)
            if verdict["limit"] is not None:
                extra += [
                    ("X-RateLimit-Limit", str(verdict["limit"])),
                    ("X-RateLimit-Remaining", str(verdict["remaining"])),
                    ("X-RateLimit-Reset", str(verdict["reset"])),
                ]
            if not verdict["allowed"]:
                metrics.count_rate_limited(tier)
                body = orjson.dumps(
                    error_body(
                        request_id,
                        "RATE_LIMITED",
                        f"Rate limit exceeded for tier '{tier}'; retry in {verdict['retry_after']} s",
                        details={"tier": tier, "retry_after": verdict["retry_after"]},
                        ai_suggestions=[f"retry after {verdict['retry_after']} s", "spread requests out or ask for a higher tier"],
                    )
                )
                raw = [(k.lower().encode(), v.encode()) for k, v in extra]
                raw += [(b"retry-after", str(verdict["retry_after"]).encode()), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 429, "headers": raw})
                await send({"type": "http.response.body", "body": body})
                return

        status = {"code": 500}
        agent = headers.get("x-ai-agent-id") if claims is not None and scope.get("method") in AUDITED_METHODS else None

        async def send_with_headers(message):
            if agent and message["type"] == "http.response.body" and not message.get("more_body", False):
                # audited before the answer's last byte goes out: a client that reads GET /audit
                # after its write finds the row
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                if route not in READ_ONLY_POSTS:
                    await audit_agent_write(state, claims, scope, route, status["code"], agent, headers.get("x-session-id"),
                                            request_id)
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                out = MutableHeaders(scope=message)
                for name, value in extra:
                    out[name] = value
                out["X-Execution-Time-Ms"] = f"{(time.perf_counter() - started) * 1000:.1f}"
            await send(message)

        # an event stream (the dashboard's) stays open for as long as the page: not activity
        streaming = "text/event-stream" in headers.get("accept", "")
        if not streaming:
            state.activity.begin()
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if not streaming:
                # answered: the replica's background warm-up may begin, or wait for a quiet moment
                state.activity.end()
            # the path template (FastAPI puts the matched route in the scope), never the raw path
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.observe_request(route, scope.get("method", ""), status["code"], time.perf_counter() - started)


#: Writes an AI agent makes are audited (``X-AI-Agent-ID``); these POSTs only read.
AUDITED_METHODS = ("POST", "PUT", "PATCH", "DELETE")
READ_ONLY_POSTS = ("/ai/interpret",)  # route templates under /api/v1, as the metrics label them


async def audit_agent_write(state, claims: dict, scope, route: str, status: int, agent: str, session: str | None,
                            request_id: str) -> None:
    """The audit row of an agent's write (``serve_app.users.record_agent_write``), after the
    answer went out; a failure to write it is logged, never the caller's error."""
    from starlette.concurrency import run_in_threadpool

    from serve_app.users import record_agent_write

    try:
        await run_in_threadpool(record_agent_write, state.catalog, user_id=int(claims["sub"]),
                                username=str(claims.get("username") or claims["sub"]), method=scope.get("method", ""),
                                route=route, path=scope.get("path", ""), status=status, agent_id=agent, session_id=session,
                                request_id=request_id)
    except Exception:  # noqa: BLE001
        import logging

        logging.getLogger("sigma.api").exception("could not audit agent write %s %s", scope.get("method"), route)


def install_middleware(app: FastAPI) -> None:
    app.add_middleware(SigmaMiddleware)
