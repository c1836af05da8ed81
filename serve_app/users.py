"""Creating users and seeding the demo accounts."""

from __future__ import annotations

import os
import secrets

from sqlalchemy import select

from cluster.catalog import Catalog, User
from cluster.config import ROLES, TIERS, Settings
from serve_app.security import hash_password

DEMO_USERS = ("demo_individual", "demo_hnw", "demo_hedgefundstyle")
ADMIN_USER = "admin"


def create_user(catalog: Catalog, username: str, password: str, *, role: str = "user", tier: str = "free", update: bool = False) -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}")
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    with catalog.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is not None and not update:
            raise ValueError(f"user {username!r} already exists")
        if user is None:
            user = User(username=username)
            s.add(user)
        user.password_hash = hash_password(password)
        user.role, user.tier, user.is_active = role, tier, True
    return user


def _password(settings: Settings, value: str | None, name: str) -> tuple[str, bool]:
    """The configured password, or one generated once and kept (0600) in SIGMA_HOME."""
    if value:
        return value, False
    path = settings.ensure_home() / f"{name}_password"
    if path.exists():
        return path.read_text().strip(), False
    generated = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generated)
    return generated, True


def seed_demo_users(catalog: Catalog, settings: Settings) -> dict[str, str]:
    """Demo users (tier pro) and the admin; returns username -> password for the start-up banner."""
    demo_password, _ = _password(settings, settings.demo_password, "demo")
    admin_password, _ = _password(settings, settings.admin_password, "admin")
    creds = {}
    for name in DEMO_USERS:
        create_user(catalog, name, demo_password, role="user", tier="pro", update=True)
        creds[name] = demo_password
    create_user(catalog, ADMIN_USER, admin_password, role="admin", tier="enterprise", update=True)
    creds[ADMIN_USER] = admin_password
    return creds
