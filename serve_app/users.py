"""Creating users and seeding the demo accounts."""

from __future__ import annotations


import os
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from cluster.catalog import AuditEvent, Catalog, User
from cluster.errors import InputError
from cluster.config import ROLES, TIERS, Settings
from serve_app.security import hash_password

DEMO_USERS = ("demo_individual", "demo_hnw", "demo_hedgefundstyle")
ADMIN_USER = "admin"


def create_user(catalog: Catalog, username: str, password: str, *, role: str = "user", tier: str = "free", update: bool = False,
                password_hash: str | None = None) -> User:
    """Add (or with ``update`` reset) a user; ``password_hash``, when given, is ``password``'s
    bcrypt hash made already (the demo seeding hashes its logins in parallel)."""
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
        user.password_hash = password_hash or hash_password(password)
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
    from concurrent.futures import ThreadPoolExecutor

    todo = []
    for names, value, kind, role, tier, variable in (
            (DEMO_USERS, settings.demo_password, "demo", "user", "pro", "SIGMA_DEMO_PASSWORD"),
            ((ADMIN_USER,), settings.admin_password, "admin", "admin", "enterprise", "SIGMA_ADMIN_PASSWORD")):
        password, path = _password(settings, value, kind)
        todo += [(name, password, role, tier, DemoLogin(password, path or variable, path is not None)) for name in names]
    # bcrypt releases the GIL: four hashes on two threads take half the start's second
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sigma-demo-hash") as pool:
        hashes = list(pool.map(hash_password, [password for _, password, *_ in todo]))
    logins = {}
    for (name, password, role, tier, login), hashed in zip(todo, hashes):
        create_user(catalog, name, password, role=role, tier=tier, update=True, password_hash=hashed)
        logins[name] = login
    return logins


# -- admin actions on users: each revokes or restores at once and leaves an audit row --------

class UserInputError(InputError):
    """Bad input to an admin action on users (400 naming the field)."""


def user_view(user: User) -> dict:
    return {"id": user.id, "username": user.username, "role": user.role, "tier": user.tier,
            "is_active": user.is_active, "created_at": user.created_at.isoformat()}


def _audit(s, actor_id: int, actor: str, action: str, target: User, **details) -> None:
    s.add(AuditEvent(actor_id=actor_id, actor=actor, action=action, target_user_id=target.id,
                     target=target.username, details=details))


def _target(s, actor_id: int, user_id: int, verb: str) -> User:
    user = s.get(User, user_id)
    if user is None:
        raise LookupError(f"user {user_id}")
    if user.id == actor_id:
        raise UserInputError("user_id", f"an admin cannot {verb} themself")
    return user


def set_user_active(catalog: Catalog, actor_id: int, actor: str, user_id: int, active: bool) -> dict:
    """Deactivate (every token the user holds stops working on its next request, on every
    replica: ``token_version`` moves and each request checks it) or reactivate (the user logs
    in again for a new token). Audited as ``user.deactivated`` / ``user.reactivated``;
    repeating the current state changes nothing and writes no row."""
    with catalog.session() as s:
        user = _target(s, actor_id, user_id, "deactivate" if not active else "reactivate")
        if bool(user.is_active) != active:
            user.is_active = active
            if not active:
                user.token_version = (user.token_version or 0) + 1
            _audit(s, actor_id, actor, "user.reactivated" if active else "user.deactivated", user,
                   tokens_revoked=not active)
        s.flush()
        return user_view(user)


def delete_user(catalog: Catalog, actor_id: int, actor: str, user_id: int) -> None:
    """Delete the user and everything they own (portfolios, positions, models, jobs: the
    catalog's foreign keys cascade); their tokens stop working at once. The audit row
    (``user.deleted``) keeps the username."""
    with catalog.session() as s:
        user = _target(s, actor_id, user_id, "delete")
        _audit(s, actor_id, actor, "user.deleted", user, role=user.role, tier=user.tier)
        s.flush()
        s.execute(delete(User).where(User.id == user.id))


AUDIT_KINDS = ("all", "admin", "agent")


def audit_events(catalog: Catalog, *, user_id: int | None = None, limit: int = 100, offset: int = 0,
                 actor_id: int | None = None, kind: str = "all", agent_id: str | None = None,
                 session_id: str | None = None) -> tuple[list[dict], int]:
    """Audit rows, newest first, and how many there are: optionally about one user
    (``user_id``), by one user (``actor_id``), only admin actions on users (``kind="admin"``)
    or only AI-agent writes (``kind="agent"``, optionally of one agent and agent session)."""
    with catalog.session() as s:
        where = [] if user_id is None else [AuditEvent.target_user_id == user_id]
        if actor_id is not None:
            where.append(AuditEvent.actor_id == actor_id)
        if kind == "admin":
            where.append(AuditEvent.agent_id.is_(None))
        elif kind == "agent":
            where.append(AuditEvent.agent_id.is_not(None))
        if agent_id is not None:
            where.append(AuditEvent.agent_id == agent_id)
        if session_id is not None:
            where.append(AuditEvent.session_id == session_id)
        total = s.scalar(select(func.count()).select_from(AuditEvent).where(*where))
        rows = s.scalars(select(AuditEvent).where(*where).order_by(AuditEvent.id.desc()).offset(offset).limit(limit)).all()
        return [{"id": r.id, "at": r.at.isoformat(), "actor": r.actor, "actor_id": r.actor_id, "action": r.action,
                 "target": r.target, "target_user_id": r.target_user_id, "details": r.details or {},
                 "agent_id": r.agent_id, "session_id": r.session_id, "route": r.route, "status": r.status}
                for r in rows], int(total or 0)


def record_agent_write(catalog: Catalog, *, user_id: int, username: str, method: str, route: str, path: str,
                       status: int, agent_id: str, session_id: str | None, request_id: str | None) -> None:
    """One audit row for a write an AI agent made (``X-AI-Agent-ID``): who, which agent and
    agent session, the route template, the outcome (HTTP status)."""
    with catalog.session() as s:
        s.add(AuditEvent(actor_id=user_id, actor=username[:64], action=f"agent.{method.lower()}"[:40], target_user_id=user_id,
                         target=username[:64], details={"path": path[:500], "request_id": request_id},
                         agent_id=agent_id[:128], session_id=(session_id or None) and session_id[:128], route=route[:200],
                         status=int(status)))
