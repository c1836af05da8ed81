"""Admin: list and create users (there is no self sign-up)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from cluster.catalog import User
from serve_app.deps import AdminDep, StateDep
from serve_app.envelope import envelope
from serve_app.errors import ApiError
from serve_app.schemas.common import Envelope, error_responses
from serve_app.schemas.users import NewUser, UserView
from serve_app.users import create_user

router = APIRouter(prefix="/admin/users", tags=["admin"])


def _view(user: User) -> dict:
    return {"id": user.id, "username": user.username, "role": user.role, "tier": user.tier, "is_active": user.is_active, "created_at": user.created_at.isoformat()}


@router.get("", summary="All users (admin only)", response_model=Envelope[list[UserView]],
            responses=error_responses(401, 403, 429))
def list_users(request: Request, _: AdminDep, state: StateDep):
    with state.catalog.session() as s:
        users = s.scalars(select(User).order_by(User.id)).all()
        return envelope(request, [_view(u) for u in users])


@router.post("", status_code=201, summary="Create a user (admin only)", response_model=Envelope[UserView],
             responses=error_responses(400, 401, 403, 409, 429))
def add_user(body: NewUser, request: Request, _: AdminDep, state: StateDep):
    with state.catalog.session() as s:
        if s.scalar(select(User.id).where(User.username == body.username)) is not None:
            raise ApiError(409, "CONFLICT", f"user {body.username!r} already exists", field="username")
    user = create_user(state.catalog, body.username, body.password, role=body.role, tier=body.tier)
    return envelope(request, _view(user), status_code=201)
