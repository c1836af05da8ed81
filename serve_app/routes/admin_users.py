"""Admin: list and create users (there is no self sign-up)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from cluster.catalog import User
from serve_app.deps import Caller, get_state, require_admin
from serve_app.envelope import envelope
from serve_app.errors import ApiError
from serve_app.state import AppState
from serve_app.users import create_user

router = APIRouter(prefix="/admin/users", tags=["admin"])


class NewUser(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: str = Field(min_length=8, max_length=256)
    role: Literal["user", "admin"] = "user"
    tier: Literal["free", "basic", "pro", "enterprise"] = "free"


def _view(user: User) -> dict:
    return {"id": user.id, "username": user.username, "role": user.role, "tier": user.tier, "is_active": user.is_active, "created_at": user.created_at.isoformat()}


@router.get("", summary="All users (admin only)")
def list_users(request: Request, _: Caller = Depends(require_admin), state: AppState = Depends(get_state)):
    with state.catalog.session() as s:
        users = s.scalars(select(User).order_by(User.id)).all()
        return envelope(request, [_view(u) for u in users])


@router.post("", status_code=201, summary="Create a user (admin only)")
def add_user(body: NewUser, request: Request, _: Caller = Depends(require_admin), state: AppState = Depends(get_state)):
    with state.catalog.session() as s:
        if s.scalar(select(User.id).where(User.username == body.username)) is not None:
            raise ApiError(409, "CONFLICT", f"user {body.username!r} already exists", field="username")
    user = create_user(state.catalog, body.username, body.password, role=body.role, tier=body.tier)
    return envelope(request, _view(user), status_code=201)
