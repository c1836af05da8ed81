"""Request dependencies: the app state, the caller, admin checks, and the parameters many
routes share. Handlers take the aliases (``state: StateDep``, ``caller: CallerDep``,
``admin: AdminDep``, ``portfolio_id: PortfolioId = None``, ``offset: OffsetQuery = 0``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from cluster.catalog import User
from serve_app.errors import ApiError
from serve_app.security import TokenError, decode_token
from serve_app.state import AppState

if TYPE_CHECKING:
    from services.portfolio.service import PricedBook


def get_state(request: Request) -> AppState:
    return request.app.state.sigma


@dataclass(frozen=True)
class Caller:
    id: int
    username: str
    role: str
    tier: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def unauthorized(reason: str) -> ApiError:
    return ApiError(401, "UNAUTHORIZED", reason, headers={"WWW-Authenticate": "Bearer"},
                    ai_suggestions=["log in at POST /api/v1/auth/token and send Authorization: Bearer <token>"])


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


def _load_caller(state: AppState, user_id: int, token_version: int) -> Caller | None:
    """The token's user, read from the catalog on every request (one primary-key look-up), or
    None when the user is gone, deactivated, or revoked the token's version: a deactivated or
    deleted user's tokens stop working on their next request, on every replica at once."""
    with state.catalog.session() as s:
        row = s.execute(select(User.id, User.username, User.role, User.tier, User.is_active, User.token_version)
                        .where(User.id == user_id)).first()
    if row is None or not row.is_active or int(row.token_version or 0) != token_version:
        return None
    return Caller(id=row.id, username=row.username, role=row.role, tier=row.tier)


#: Declares the bearer token in the OpenAPI document (the "Authorize" button, client generators);
#: ``current_user`` reads and checks the header itself, so this never answers on its own.
bearer_scheme = HTTPBearer(auto_error=False, description="a token from POST /api/v1/auth/token")


def current_user(request: Request, state: AppState = Depends(get_state),
                 _credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> Caller:
    """The authenticated caller; 401 for a missing, malformed, expired or forged token."""
    cached = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    token = bearer_token(request)
    if token is None:
        raise unauthorized("Missing bearer token; log in at POST /api/v1/auth/token")
    # The middleware already verified the token; decode again only to say why it failed.
    claims = getattr(request.state, "claims", None)
    if claims is None:
        try:
            claims = decode_token(state.jwt_secret, token)
        except TokenError as exc:
            raise unauthorized(f"Invalid token: {exc}") from exc
    caller = _load_caller(state, int(claims["sub"]), int(claims.get("ver", 0)))
    if caller is None:
        raise unauthorized("Invalid token: revoked, or the user is deactivated or no longer exists")
    request.state.caller = caller
    return caller


def require_admin(caller: Caller = Depends(current_user)) -> Caller:
    if not caller.is_admin:
        raise ApiError(403, "FORBIDDEN", "This route needs the admin role")
    return caller


#: Every list route's ``offset``: bounded so a huge number is a 400, not a database overflow.
MAX_OFFSET = 1_000_000_000

StateDep = Annotated[AppState, Depends(get_state)]
CallerDep = Annotated[Caller, Depends(current_user)]
AdminDep = Annotated[Caller, Depends(require_admin)]
#: ``offset: OffsetQuery = 0``
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")]
#: ``portfolio_id: PortfolioId = None`` on every portfolio and risk route
PortfolioId = Annotated[str | None, Query(description="portfolio id (default: the user's default portfolio)",
                                          pattern=r"^[A-Za-z0-9_\-]{1,64}$")]


def book_for(state: AppState, caller: Caller, portfolio_id: str | None) -> PricedBook:
    """The caller's portfolio priced now (404 for a portfolio that is not theirs)."""
    from serve_app.errors import service_errors
    from serve_app.market import get_provider
    from services.portfolio import service

    with service_errors():
        return service.priced_book(state.catalog, get_provider(state), caller.id, portfolio_id)


# -- AI agent headers (portfolio spec 3.2) ------------------------------------------------------

_AGENT_HEADER = __import__("re").compile(r"^[A-Za-z0-9_\-.:@]{1,128}$")


@dataclass(frozen=True)
class AgentHeaders:
    """``X-AI-Agent-ID``, ``X-Session-ID`` and the decoded ``X-User-Context`` (base64url or
    plain JSON object) of a request; each None when absent."""

    agent_id: str | None
    session_id: str | None
    user_context: dict | None

    def require(self) -> tuple[str, str]:
        """Both ids, or a 400 naming the missing header."""
        for name, value in (("X-AI-Agent-ID", self.agent_id), ("X-Session-ID", self.session_id)):
            if not value:
                raise ApiError(400, "INVALID_PARAMETER", f"the {name} header is required on this route", field=name,
                               ai_suggestions=[f"send {name}: <id> with every agent request"])
        return self.agent_id, self.session_id


def agent_headers(request: Request) -> AgentHeaders:
    import base64
    import binascii
    import json

    values = {}
    for name in ("X-AI-Agent-ID", "X-Session-ID"):
        raw = request.headers.get(name)
        if raw is not None and not _AGENT_HEADER.match(raw):
            raise ApiError(400, "INVALID_PARAMETER", f"{name} must be 1 to 128 characters of letters, digits and _-.:@",
                           field=name)
        values[name] = raw
    context = None
    raw = request.headers.get("X-User-Context")
    if raw:
        if len(raw) > 8192:
            raise ApiError(400, "INVALID_PARAMETER", "X-User-Context is at most 8 KB", field="X-User-Context")
        try:
            text = raw if raw.lstrip().startswith("{") else base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
            context = json.loads(text)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            context = None
        if not isinstance(context, dict):
            raise ApiError(400, "INVALID_PARAMETER", "X-User-Context must be a JSON object, plain or base64url-encoded",
                           field="X-User-Context")
    return AgentHeaders(values["X-AI-Agent-ID"], values["X-Session-ID"], context)


AgentDep = Annotated[AgentHeaders, Depends(agent_headers)]
