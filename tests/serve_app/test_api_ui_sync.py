"""UI sync (spec 10) over HTTP on the live app: publish, stream (SSE), replay, per-user sessions,
bad input listing the valid names, and streams that end when the token does."""

from __future__ import annotations

import threading
import time

import httpx
import orjson
import pytest

from serve_app.security import create_token
from tests.serve_app.test_api_platform import V1, assert_error

NAV = {"target": "positions_tab", "params": {"filter": "short_options", "sort": "gamma_risk_desc"},
       "ai_context": {"reason": "showing_expiration_risk"}}


class Stream:
    """An SSE client in a thread: collects (id, event, data) frames until closed."""

    def __init__(self, api, headers: dict, session: str | None = None, last_event_id: int | None = None):
        self.frames: list[tuple] = []
        self.closed = threading.Event()
        self.opened = threading.Event()
        h = dict(headers)
        if session:
            h["X-Session-ID"] = session
        if last_event_id is not None:
            h["Last-Event-ID"] = str(last_event_id)
        self._client = httpx.Client(base_url=api.base_url, timeout=httpx.Timeout(30, read=30))
        self._thread = threading.Thread(target=self._run, args=(h,), daemon=True)
        self._thread.start()
        assert self.opened.wait(30), "stream did not open"

    def _run(self, headers):
        frame: dict = {}
        try:
            with self._client.stream("GET", f"{V1}/ui/events", headers=headers) as resp:
                self.status = resp.status_code
                self.content_type = resp.headers.get("content-type", "")
                self.opened.set()
                for line in resp.iter_lines():
                    if line == "":
                        if "event" in frame:
                            self.frames.append((frame.get("id"), frame["event"], orjson.loads(frame.get("data", "null"))))
                        frame = {}
                    elif not line.startswith(":"):
                        key, _, value = line.partition(":")
                        frame[key] = value.lstrip(" ")
        except httpx.HTTPError:
            pass
        finally:
            self.opened.set()
            self.closed.set()

    def wait_for(self, predicate, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for f in self.frames:
                if predicate(f):
                    return f
            time.sleep(0.02)
        raise AssertionError(f"no matching frame in {timeout} s; got {self.frames}")

    def close(self):
        self._client.close()


def test_publish_stream_and_replay_after_last_event_id(api):
    h = api.headers("ui_alice")
    s = {**h, "X-Session-ID": "desk-1"}
    first = api.http.post(f"{V1}/ui/navigate", json=NAV, headers=s)
    assert first.status_code == 200, first.text
    ev = first.json()["data"]
    assert ev["session_id"] == "desk-1" and ev["type"] == "navigate"
    assert ev["event"]["page"] == "portfolio" and ev["event"]["filter"] == "short_options"
    assert ev["event"]["sort"] == {"field": "gamma_risk", "order": "desc"}

    live = Stream(api, h, "desk-1")
    try:
        assert live.status == 200 and live.content_type.startswith("text/event-stream")
        live.wait_for(lambda f: f[1] == "ready")
        assert not [f for f in live.frames if f[1] == "navigate"], "a fresh stream starts after the latest event"
        sent = time.monotonic()
        hl = api.http.post(f"{V1}/ui/highlight", headers=s, json={"elements": [
            {"id": "gamma_metric", "style": "warning", "pulse": True}, {"id": "alerts_panel", "style": "critical"}]})
        assert hl.status_code == 200, hl.text
        got = live.wait_for(lambda f: f[1] == "highlight", timeout=2.0)
        assert time.monotonic() - sent < 2.0
        assert int(got[0]) == hl.json()["data"]["event_id"]
        assert got[2]["elements"][0] == {"id": "gamma_metric", "style": "warning", "reason": None, "pulse": True}
        flt = api.http.post(f"{V1}/ui/apply-filter", headers=s, json={
            "view": "positions", "filter": {"preset": "expiring_today", "sort": {"field": "gamma_risk", "order": "desc"}},
            "highlight_reason": "92% of portfolio gamma"})
        assert flt.status_code == 200, flt.text
        live.wait_for(lambda f: f[1] == "filter" and f[2]["preset"] == "expiring_today")
    finally:
        live.close()

    # a reconnect with Last-Event-ID gets everything after it, in order, and nothing before
    replay = Stream(api, h, "desk-1", last_event_id=ev["event_id"])
    try:
        replay.wait_for(lambda f: f[1] == "filter")
        kinds = [f[1] for f in replay.frames if f[1] != "ready"]
        ids = [int(f[0]) for f in replay.frames if f[1] != "ready"]
        assert kinds == ["highlight", "filter"] and ids == sorted(ids) and ids[0] > ev["event_id"]
    finally:
        replay.close()


def test_sessions_are_per_user_and_per_session(api):
    alice, bob = api.headers("ui_alice"), api.headers("ui_bob")
    mine = api.http.post(f"{V1}/ui/navigate", json={"target": "risk"}, headers={**alice, "X-Session-ID": "shared"})
    other_session = api.http.post(f"{V1}/ui/navigate", json={"target": "lab"}, headers={**alice, "X-Session-ID": "other"})
    theirs = api.http.post(f"{V1}/ui/navigate", json={"target": "reports"}, headers={**bob, "X-Session-ID": "shared"})
    assert mine.status_code == other_session.status_code == theirs.status_code == 200
    start = min(mine.json()["data"]["event_id"], theirs.json()["data"]["event_id"]) - 1
    a = Stream(api, alice, "shared", last_event_id=start)
    b = Stream(api, bob, "shared", last_event_id=start)
    try:
        a.wait_for(lambda f: f[1] == "navigate")
        b.wait_for(lambda f: f[1] == "navigate")
        time.sleep(0.3)
        assert [f[2]["page"] for f in a.frames if f[1] == "navigate"] == ["risk"]
        assert [f[2]["page"] for f in b.frames if f[1] == "navigate"] == ["reports"]
    finally:
        a.close()
        b.close()
    # another user's position id is an unknown element to this one
    pos = api.http.post(f"{V1}/positions", json={"ticker": "AAPL", "quantity": 10, "price": 100}, headers=bob)
    assert pos.status_code == 201, pos.text
    pid = pos.json()["data"]["id"]
    assert api.http.post(f"{V1}/ui/highlight", json={"elements": [{"id": pid}]}, headers=bob).status_code == 200
    assert_error(api.http.post(f"{V1}/ui/highlight", json={"elements": [{"id": pid}]}, headers=alice),
                 400, "INVALID_PARAMETER", "elements")


def test_unknown_names_are_400_listing_the_valid_ones(api):
    h = api.headers("ui_alice")
    body = assert_error(api.http.post(f"{V1}/ui/navigate", json={"target": "casino"}, headers=h), 400, "INVALID_PARAMETER", "target")
    assert "risk_tab" in body["error"]["details"]["valid"] and "portfolio" in body["error"]["details"]["valid"]
    body = assert_error(api.http.post(f"{V1}/ui/highlight", json={"elements": [{"id": "nope_metric"}]}, headers=h),
                        400, "INVALID_PARAMETER", "elements")
    assert "gamma_metric" in body["error"]["details"]["valid"]
    body = assert_error(api.http.post(f"{V1}/ui/highlight", json={"elements": [{"id": "gamma_metric", "style": "neon"}]},
                                      headers=h), 400, "INVALID_PARAMETER", "elements[0].style")
    assert body["error"]["details"]["valid"] == ["critical", "danger", "warning", "info", "success"]
    body = assert_error(api.http.post(f"{V1}/ui/apply-filter", json={"filter": {"preset": "cheap_stuff"}}, headers=h),
                        400, "INVALID_PARAMETER", "filter.preset")
    assert "expiring_today" in body["error"]["details"]["valid"] and "short_options" in body["error"]["details"]["valid"]
    body = assert_error(api.http.post(f"{V1}/ui/apply-filter", json={"filter": {"preset": "all", "sort": {"field": "luck"}}},
                                      headers=h), 400, "INVALID_PARAMETER", "filter.sort.field")
    assert "gamma_risk" in body["error"]["details"]["valid"]
    assert_error(api.http.post(f"{V1}/ui/apply-filter", json={"view": "kitchen", "filter": {"preset": "all"}}, headers=h),
                 400, "INVALID_PARAMETER", "view")
    assert_error(api.http.post(f"{V1}/ui/navigate", json={"target": "risk"}, headers={**h, "X-Session-ID": "a b/c"}),
                 400, "INVALID_PARAMETER", "X-Session-ID")
    # tag presets name the caller's tags
    assert api.http.post(f"{V1}/tags", json={"name": "<script>hedges</script>"}, headers=h).status_code in (201, 409)
    ok = api.http.post(f"{V1}/ui/apply-filter", json={"filter": {"preset": "tag:<script>hedges</script>"}}, headers=h)
    assert ok.status_code == 200, ok.text
    body = assert_error(api.http.post(f"{V1}/ui/apply-filter", json={"filter": {"preset": "tag:nothing"}}, headers=h),
                        400, "INVALID_PARAMETER", "filter.preset")
    assert "tag:<script>hedges</script>" in body["error"]["details"]["valid"]
    # no token: 401 on every route, the stream included
    for method, path in (("post", "/ui/navigate"), ("post", "/ui/highlight"), ("post", "/ui/apply-filter"), ("get", "/ui/events")):
        assert getattr(api.http, method)(f"{V1}{path}").status_code == 401


def test_stream_ends_when_the_token_expires(api):
    api.headers("ui_alice")
    from sqlalchemy import select

    from cluster.catalog import User

    with api.catalog.session() as s:
        user = s.scalar(select(User).where(User.username == "ui_alice"))
        uid, ver = user.id, user.token_version or 0
    token, _ = create_token(api.settings.resolved_jwt_secret(), user_id=uid, username="ui_alice", role="user",
                            tier="pro", ttl_s=2, version=ver)
    started = time.monotonic()
    stream = Stream(api, {"Authorization": f"Bearer {token}"})
    try:
        assert stream.closed.wait(10), "the stream outlived its token"
        assert stream.frames[-1][1] == "logout" and stream.frames[-1][2]["reason"] == "token expired"
        assert time.monotonic() - started < 6
    finally:
        stream.close()


def test_an_event_written_by_another_replica_reaches_the_stream(api):
    """Another ingress replica is another process writing the same catalog: this test process
    plays it, and the live app's open stream gets the event by its catalog poll."""
    from sqlalchemy import select

    from cluster.catalog import User
    from services import ui_sync

    h = api.headers("ui_alice")
    with api.catalog.session() as s:
        uid = s.scalar(select(User.id).where(User.username == "ui_alice"))
    live = Stream(api, h, "replica-test")
    try:
        live.wait_for(lambda f: f[1] == "ready")
        sent = time.monotonic()
        event_id = ui_sync.publish(api.catalog, uid, "replica-test", "highlight",
                                   {"type": "highlight", "elements": [{"id": "var_panel", "style": "info", "reason": None,
                                                                       "pulse": False}]})
        got = live.wait_for(lambda f: f[1] == "highlight", timeout=2.0)
        assert int(got[0]) == event_id and time.monotonic() - sent < 2.0
    finally:
        live.close()


def test_dashboard_auth_cookie_csrf_and_pass_through(api):
    """The dashboard's edges over plain HTTP: no cookie, a wrong password, a missing CSRF token,
    a route outside the pass-through, and the API ignoring the dashboard's cookie."""
    api.headers("ui_carol")
    with httpx.Client(base_url=api.base_url, timeout=60) as web:
        resp = web.get("/app/portfolio", follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"] == "/app/login"
        assert web.get("/app/events").status_code == 401
        bad = web.post("/app/login", data={"username": "ui_carol", "password": "nope"}, follow_redirects=False)
        assert bad.status_code == 401 and "Invalid username or password" in bad.text and "sigma_session" not in bad.headers.get("set-cookie", "")
        ok = web.post("/app/login", data={"username": "ui_carol", "password": "correct-horse-battery"}, follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"] == "/app/portfolio"
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/app" in cookie
        token = web.cookies.get("sigma_session")
        page = web.get("/app/risk")
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
        assert token not in page.text  # the token never reaches the page
        # a change without the page's CSRF token is refused, with it accepted
        assert web.post("/app/action/new_session", data={"name": "x"}).status_code == 403
        csrf = page.text.split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0]
        made = web.post("/app/action/new_session", data={"name": "<i>mine</i>"}, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 200 and "&lt;i&gt;mine&lt;/i&gt;" in made.text and "<i>mine</i>" not in made.text
        # only the prefixes the pages use pass through; admin routes do not
        assert web.get("/app/api/admin/users").status_code == 404
        assert web.get("/app/api/modeling/sessions/nope").status_code == 404
        # the API under /api/v1 takes the header only: the cookie alone is not a login there
        assert httpx.get(f"{api.base_url}{V1}/portfolio", cookies={"sigma_session": token}).status_code == 401
