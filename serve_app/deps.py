"""Request dependencies: the app state, the caller, admin checks."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request

from cluster.catalog import User
from serve_app.errors import ApiError
from serve_app.security import TokenError, decode_token
from serve_app.state import AppState


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
    return ApiError(401, "UNAUTHORIZED", reason, headers={"WWW-Authenticate": "Bearer"})


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


def current_user(request: Request, state: AppState = Depends(get_state)) -> Caller:
    """The authenticated caller; 401 for a missing, malformed, expired or forged token."""
    cached = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    token = bearer_token(request)
    if token is None:
        raise unauthorized("Missing bearer token; log in at POST /api/v1/auth/token")
    try:
        claims = decode_token(state.jwt_secret, token)
    except TokenError as exc:
        raise unauthorized(f"Invalid token: {exc}") from exc
    with state.catalog.session() as s:
        user = s.get(User, int(claims["sub"]))
        if user is None or not user.is_active:
            raise unauthorized("Invalid token: user no longer exists")
        caller = Caller(id=user.id, username=user.username, role=user.role, tier=user.tier)
    request.state.caller = caller
    return caller


def require_admin(caller: Caller = Depends(current_user)) -> Caller:
    if not caller.is_admin:
        raise ApiError(403, "FORBIDDEN", "This route needs the admin role")
    return caller
