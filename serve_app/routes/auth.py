"""POST /auth/token (JSON or OAuth2 form), POST /auth/refresh and GET /auth/me."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy import select

from cluster.catalog import User
from serve_app.deps import CallerDep, StateDep
from serve_app.errors import ApiError, invalid
from serve_app.schemas.auth import LoginRequest, Me, TokenResponse, login_request_body
from serve_app.schemas.common import error_responses
from serve_app.security import create_token, verify_password
from serve_app.state import AppState

router = APIRouter(prefix="/auth", tags=["auth"])


async def _credentials(request: Request) -> LoginRequest:
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            return LoginRequest(username=form.get("username") or "", password=form.get("password") or "")
        payload = await request.json()
    except ValidationError as exc:
        raise invalid(str(exc.errors()[0]["loc"][0]), exc.errors()[0]["msg"]) from exc
    except Exception as exc:  # noqa: BLE001 - any unparsable body is the client's error
        raise invalid("body", "expected JSON {username, password} or an OAuth2 password form") from exc
    if not isinstance(payload, dict):
        raise invalid("body", "expected a JSON object {username, password}")
    try:
        return LoginRequest.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise invalid(str(err["loc"][0]), err["msg"]) from exc


def _issue(state: AppState, user: User) -> TokenResponse:
    token, ttl = create_token(
        state.jwt_secret, user_id=user.id, username=user.username, role=user.role, tier=user.tier, ttl_s=state.settings.jwt_ttl_s,
        version=user.token_version or 0,
    )
    return TokenResponse(access_token=token, expires_in=ttl)


@router.post("/token", response_model=TokenResponse, summary="Log in: username and password for a bearer token",
             responses=error_responses(400, 401, 429), openapi_extra=login_request_body())
async def login(request: Request, state: StateDep) -> TokenResponse:
    creds = await _credentials(request)
    return authenticate(state, creds.username, creds.password)


def authenticate(state: AppState, username: str, password: str) -> TokenResponse:
    """A token for the right username and password (the API's and the dashboard's log-in);
    401 otherwise."""
    with state.catalog.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        # Verify against a hash even for unknown users so timing does not reveal which exist.
        ok = verify_password(password, user.password_hash if user else _DUMMY_HASH)
        if user is None or not ok or not user.is_active:
            raise ApiError(401, "UNAUTHORIZED", "Invalid username or password")
        return _issue(state, user)


@router.post("/refresh", response_model=TokenResponse, summary="A fresh token for a still-valid one",
             responses=error_responses(401, 429))
def refresh(caller: CallerDep, state: StateDep) -> TokenResponse:
    with state.catalog.session() as s:
        return _issue(state, s.get(User, caller.id))


@router.get("/me", response_model=Me, summary="Who this token belongs to (user, role, tier)",
            responses=error_responses(401, 429))
def me(caller: CallerDep) -> Me:
    """Reads nothing beyond the token check every route does: also the platform's no-op route
    (benchmarks/portfolio_api.py times routes against it)."""
    return Me(username=caller.username, role=caller.role, tier=caller.tier)


_DUMMY_HASH = "$2b$12$C6UzMDM.H6dfI/f/IKcEeO5nVvbDKYQ1iECsG8Q2tFZyF/7v2nE5a"
