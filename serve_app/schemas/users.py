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
