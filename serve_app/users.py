"""Creating users and seeding the demo accounts."""

from __future__ import annotations


import os
import secrets
from dataclasses import dataclass

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


def _password(settings: Settings, value: str | None, name: str) -> tuple[str, str | None]:
    """The configured password (and None), or one generated once and kept (0600) in
    SIGMA_HOME (and the file that holds it)."""
    if value:
        return value, None
    path = settings.ensure_home() / f"{name}_password"
    if path.exists():
        return path.read_text().strip(), str(path)
    generated = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generated)
    return generated, str(path)


@dataclass(frozen=True)
class DemoLogin:
    """A demo login for the start-up banner: the password, and where it comes from (the
    setting that configured it, or the 0600 file a generated one is kept in)."""

    password: str
    source: str
    generated: bool


def seed_demo_users(catalog: Catalog, settings: Settings) -> dict[str, DemoLogin]:
    """Demo users (tier pro) and the admin; returns username -> DemoLogin for the banner."""
    logins = {}
    for names, value, kind, role, tier, variable in (
            (DEMO_USERS, settings.demo_password, "demo", "user", "pro", "SIGMA_DEMO_PASSWORD"),
            ((ADMIN_USER,), settings.admin_password, "admin", "admin", "enterprise", "SIGMA_ADMIN_PASSWORD")):
        password, path = _password(settings, value, kind)
        for name in names:
            create_user(catalog, name, password, role=role, tier=tier, update=True)
            logins[name] = DemoLogin(password, path or variable, path is not None)
    return logins
