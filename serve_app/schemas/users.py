"""Admin: users."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from serve_app.schemas.common import Timestamp


class NewUser(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: str = Field(min_length=8, max_length=256)
    role: Literal["user", "admin"] = "user"
    tier: Literal["free", "basic", "pro", "enterprise"] = "free"


class UserView(BaseModel):
    id: int
    username: str
    role: str
    tier: str
    is_active: bool
    created_at: Timestamp


class UserPatch(BaseModel):
    """``{"is_active": false}`` deactivates the user and revokes every token they hold at once
    (on every replica); ``true`` lets them log in again (old tokens stay revoked)."""

    is_active: bool = Field(strict=True)


class AuditEventView(BaseModel):
    id: int
    at: Timestamp
    actor: str = Field(description="the admin's username")
    actor_id: int | None = None
    action: Literal["user.deactivated", "user.reactivated", "user.deleted"]
    target: str = Field(description="the user's username (kept after a delete)")
    target_user_id: int | None = None
    details: dict


class AuditList(BaseModel):
    events: list[AuditEventView]
    total: int
