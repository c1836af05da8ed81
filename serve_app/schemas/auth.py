"""POST /auth/token, /auth/refresh and GET /auth/me."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LoginRequest(BaseModel):
    """JSON body of POST /auth/token (an OAuth2 password form with the same fields works too)."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds until the token expires")


class Me(BaseModel):
    """Who the token belongs to."""

    username: str
    role: str = Field(description="user | admin")
    tier: str = Field(description="free | basic | pro | enterprise: the rate limits and quotas that apply")


def login_request_body() -> dict:
    """``openapi_extra`` of POST /auth/token: the handler reads JSON or a form itself."""
    schema = LoginRequest.model_json_schema()
    form = {**schema, "title": "LoginForm"}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema, "example": {"username": "demo_individual", "password": "..."}},
        "application/x-www-form-urlencoded": {"schema": form},
    }}}
