"""Admin deactivation and deletion of users (issue 18, item 4) through the live API, SQLite and
PostgreSQL: the user's tokens stop working on the very next request (no cache window), each
action leaves an audit row, and the rules of every route hold (admin only, 404, 400 naming
the field)."""

from __future__ import annotations

from tests.conftest import TEST_PASSWORD
from tests.serve_app.test_api_platform import V1, assert_error


def _login(api, username: str):
    return api.http.post(f"{V1}/auth/token", json={"username": username, "password": TEST_PASSWORD})


def _victim(api, username: str) -> tuple[int, dict]:
    from serve_app.users import create_user

    user = create_user(api.catalog, username, TEST_PASSWORD, tier="pro", update=True)
    resp = _login(api, username)
    assert resp.status_code == 200, resp.text
    headers = {"Authorization": f"Bearer {resp.json()['access_token']}"}
    assert api.http.get(f"{V1}/auth/me", headers=headers).status_code == 200
    return user.id, headers


def test_deactivation_revokes_tokens_at_once_and_is_audited(api):
    admin = api.headers("audit_admin", role="admin")
    uid, victim = _victim(api, "revoke_me")
    # a second token of the same user, e.g. another device
    other = {"Authorization": f"Bearer {_login(api, 'revoke_me').json()['access_token']}"}
    assert api.http.get(f"{V1}/portfolio", headers=victim).status_code == 200

    resp = api.http.patch(f"{V1}/admin/users/{uid}", json={"is_active": False}, headers=admin)
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["is_active"] is False and resp.json()["data"]["username"] == "revoke_me"
    # the very next request, no waiting: both tokens are dead on every route
    for headers in (victim, other):
        assert_error(api.http.get(f"{V1}/auth/me", headers=headers), 401, "UNAUTHORIZED")
        assert_error(api.http.get(f"{V1}/portfolio", headers=headers), 401, "UNAUTHORIZED")
        assert_error(api.http.post(f"{V1}/auth/refresh", headers=headers), 401, "UNAUTHORIZED")
    assert_error(_login(api, "revoke_me"), 401, "UNAUTHORIZED")

    again = api.http.patch(f"{V1}/admin/users/{uid}", json={"is_active": True}, headers=admin)
    assert again.status_code == 200 and again.json()["data"]["is_active"] is True
    assert_error(api.http.get(f"{V1}/auth/me", headers=victim), 401, "UNAUTHORIZED")  # old tokens stay revoked
    fresh = {"Authorization": f"Bearer {_login(api, 'revoke_me').json()['access_token']}"}
    assert api.http.get(f"{V1}/auth/me", headers=fresh).json()["username"] == "revoke_me"

    audit = api.http.get(f"{V1}/admin/users/audit", params={"user_id": uid}, headers=admin)
    assert audit.status_code == 200, audit.text
    events = audit.json()["data"]["events"]
    assert [e["action"] for e in events] == ["user.reactivated", "user.deactivated"]
    assert all(e["actor"] == "audit_admin" and e["target"] == "revoke_me" and e["target_user_id"] == uid for e in events)
    assert events[1]["details"] == {"tokens_revoked": True}
    # deactivating twice changes nothing and writes no second row
    api.http.patch(f"{V1}/admin/users/{uid}", json={"is_active": False}, headers=admin)
    api.http.patch(f"{V1}/admin/users/{uid}", json={"is_active": False}, headers=admin)
    again = api.http.get(f"{V1}/admin/users/audit", params={"user_id": uid}, headers=admin).json()["data"]
    assert again["total"] == 3 and again["events"][0]["action"] == "user.deactivated"


def test_delete_removes_the_user_and_their_book_and_is_audited(api):
    admin = api.headers("audit_admin", role="admin")
    uid, victim = _victim(api, "delete_me")
    created = api.http.post(f"{V1}/positions", json={"ticker": "AAPL", "quantity": 5, "price": 100}, headers=victim)
    assert created.status_code == 201, created.text
    assert api.http.delete(f"{V1}/admin/users/{uid}", headers=admin).status_code == 204
    assert_error(api.http.get(f"{V1}/auth/me", headers=victim), 401, "UNAUTHORIZED")
    assert_error(_login(api, "delete_me"), 401, "UNAUTHORIZED")
    names = [u["username"] for u in api.http.get(f"{V1}/admin/users", headers=admin).json()["data"]]
    assert "delete_me" not in names
    from sqlalchemy import func, select

    from cluster.catalog import Position

    with api.catalog.session() as s:  # the cascade took their positions with them
        assert s.scalar(select(func.count()).select_from(Position).where(Position.user_id == uid)) == 0
    events = api.http.get(f"{V1}/admin/users/audit", params={"user_id": uid}, headers=admin).json()["data"]["events"]
    assert [(e["action"], e["target"], e["details"]) for e in events] == [("user.deleted", "delete_me", {"role": "user", "tier": "pro"})]
    assert_error(api.http.delete(f"{V1}/admin/users/{uid}", headers=admin), 404, "NOT_FOUND")


def test_admin_user_routes_refuse_bad_requests(api):
    admin = api.headers("audit_admin", role="admin")
    me = api.http.get(f"{V1}/admin/users", headers=admin).json()["data"]
    admin_id = next(u["id"] for u in me if u["username"] == "audit_admin")
    uid, victim = _victim(api, "not_an_admin")
    assert_error(api.http.patch(f"{V1}/admin/users/{admin_id}", json={"is_active": False}, headers=admin),
                 400, "INVALID_PARAMETER", field="user_id")
    assert_error(api.http.delete(f"{V1}/admin/users/{admin_id}", headers=admin), 400, "INVALID_PARAMETER", field="user_id")
    assert_error(api.http.patch(f"{V1}/admin/users/{uid}", json={"is_active": "no"}, headers=admin),
                 400, "INVALID_PARAMETER", field="is_active")
    assert_error(api.http.patch(f"{V1}/admin/users/999999", json={"is_active": False}, headers=admin), 404, "NOT_FOUND")
    assert_error(api.http.patch(f"{V1}/admin/users/0", json={"is_active": False}, headers=admin), 400, "INVALID_PARAMETER", field="user_id")
    assert_error(api.http.patch(f"{V1}/admin/users/{admin_id}", json={"is_active": False}, headers=victim), 403, "FORBIDDEN")
    assert_error(api.http.delete(f"{V1}/admin/users/{admin_id}", headers=victim), 403, "FORBIDDEN")
    assert_error(api.http.get(f"{V1}/admin/users/audit", headers=victim), 403, "FORBIDDEN")
    assert_error(api.http.get(f"{V1}/admin/users/audit"), 401, "UNAUTHORIZED")
    assert api.http.get(f"{V1}/auth/me", headers=victim).status_code == 200  # nothing happened to anyone
