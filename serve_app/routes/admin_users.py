"""Admin: list, create, deactivate and delete users (there is no self sign-up), and the audit
of those actions. Deactivating or deleting a user revokes their tokens at once on every
replica (``serve_app.deps.current_user`` checks the user's ``token_version`` per request)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from cluster.catalog import User
from serve_app.deps import AdminDep, OffsetQuery, StateDep
from serve_app.envelope import envelope
from serve_app.errors import ApiError, service_errors
from serve_app.schemas.common import Envelope, error_responses
from serve_app.schemas.users import AuditList, NewUser, UserPatch, UserView
from serve_app.users import audit_events, create_user, delete_user, set_user_active, user_view

router = APIRouter(prefix="/admin/users", tags=["admin"])

#: A user id in the path: bounded, so a huge number is a 400 rather than a database overflow.
UserId = Path(ge=1, le=2**31 - 1, description="the user's id (GET /admin/users)")


@router.get("", summary="All users (admin only)", response_model=Envelope[list[UserView]],
            responses=error_responses(401, 403, 429))
def list_users(request: Request, _: AdminDep, state: StateDep):
    with state.catalog.session() as s:
        users = s.scalars(select(User).order_by(User.id)).all()
        return envelope(request, [user_view(u) for u in users])


@router.post("", status_code=201, summary="Create a user (admin only)", response_model=Envelope[UserView],
             responses=error_responses(400, 401, 403, 409, 429))
def add_user(body: NewUser, request: Request, _: AdminDep, state: StateDep):
    with state.catalog.session() as s:
        if s.scalar(select(User.id).where(User.username == body.username)) is not None:
            raise ApiError(409, "CONFLICT", f"user {body.username!r} already exists", field="username")
    user = create_user(state.catalog, body.username, body.password, role=body.role, tier=body.tier)
    return envelope(request, user_view(user), status_code=201)


@router.get("/audit", summary="Audit of admin actions on users, newest first (admin only)",
            response_model=Envelope[AuditList], responses=error_responses(400, 401, 403, 429))
def list_audit(request: Request, _: AdminDep, state: StateDep, offset: OffsetQuery = 0,
               limit: int = Query(100, ge=1, le=1000),
               user_id: int | None = Query(None, ge=1, le=2**31 - 1, description="only actions on this user")):
    events, total = audit_events(state.catalog, user_id=user_id, limit=limit, offset=offset, kind="admin")
    return envelope(request, {"events": events, "total": total})


@router.patch("/{user_id}", summary="Deactivate (revoking every token at once) or reactivate a user (admin only)",
              response_model=Envelope[UserView], responses=error_responses(400, 401, 403, 404, 429))
def patch_user(request: Request, body: UserPatch, admin: AdminDep, state: StateDep, user_id: int = UserId):
    with service_errors():
        view = set_user_active(state.catalog, admin.id, admin.username, user_id, body.is_active)
    return envelope(request, view)


@router.delete("/{user_id}", status_code=204, response_class=Response,
               summary="Delete a user and everything they own; their tokens stop working at once (admin only)",
               responses=error_responses(400, 401, 403, 404, 429))
def remove_user(admin: AdminDep, state: StateDep, user_id: int = UserId):
    with service_errors():
        delete_user(state.catalog, admin.id, admin.username, user_id)
    return Response(status_code=204)
