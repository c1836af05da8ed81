"""Passwords (bcrypt) and tokens (JWT, HS256)."""

from __future__ import annotations

import time

import bcrypt
import jwt

ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode("utf-8")[:72], bcrypt.gensalt(rounds=12)).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8")[:72], password_hash.encode("ascii"))
    except ValueError:
        return False


def create_token(secret: str, *, user_id: int, username: str, role: str, tier: str, ttl_s: int,
                 version: int = 0) -> tuple[str, int]:
    """A signed access token; ``ver`` is the user's ``token_version`` (revoked when it moves)."""
    now = int(time.time())
    claims = {"sub": str(user_id), "username": username, "role": role, "tier": tier, "iat": now, "exp": now + ttl_s,
              "typ": "access", "ver": int(version)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM), ttl_s


class TokenError(Exception):
    pass


def decode_token(secret: str, token: str) -> dict:
    """Claims of a valid token; ``TokenError`` (with the reason) for expired, forged or malformed ones."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "iat"]})
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenError("token signature is invalid") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("token is malformed") from exc
    if claims.get("typ") != "access":
        raise TokenError("not an access token")
    return claims
