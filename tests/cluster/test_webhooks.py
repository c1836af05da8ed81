"""Webhooks: URL policy and signatures as units; registration, signed deliveries to a real
receiver on 127.0.0.1 (which verifies every signature), retries with backoff after
failures, the delivery log, deletion and isolation on the live Serve app."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from cluster import webhooks
from tests.serve_app.test_api_platform import V1, assert_error

SECRET = "s3cret-hook-key"


# ----------------------------------------------------------------- units

def test_signature_round_trip_and_replay_window():
    body = b'{"event":"sweep.completed","data":{"x":1}}'
    ts = 1_700_000_000
    header = webhooks.sign(SECRET, body, ts)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    # independent HMAC: hex of HMAC-SHA256(secret, "<ts>." + body)
    import hashlib
    import hmac

    assert header == "sha256=" + hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhooks.verify_signature(SECRET, body, str(ts), header, now=ts + 10)
    assert not webhooks.verify_signature(SECRET, body, str(ts), header, now=ts + 301)  # replayed too late
    assert not webhooks.verify_signature(SECRET, body + b" ", str(ts), header, now=ts)  # body tampered
    assert not webhooks.verify_signature(SECRET, body, str(ts + 1), header, now=ts)  # timestamp swapped
    assert not webhooks.verify_signature("other-secret", body, str(ts), header, now=ts)
    assert not webhooks.verify_signature(SECRET, body, None, header) and not webhooks.verify_signature(SECRET, body, "x", header)


@pytest.mark.parametrize("url", ["http://127.0.0.1/h", "http://localhost:8080/h", "https://10.1.2.3/h", "http://192.168.0.5/",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/h", "http://0.0.0.0/",
                                 "http://172.16.0.1/", "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/", "http://224.0.0.1/"])
def test_private_addresses_refused_unless_allowed(url):
    with pytest.raises(webhooks.WebhookError) as err:
        webhooks.check_url(url, allow_private=False)
    assert err.value.field == "url"
    assert webhooks.check_url(url, allow_private=True) == url


@pytest.mark.parametrize("url, reason", [("ftp://example.com/h", "http"), ("javascript:alert(1)", "http"), ("http:///nohost", "host"),
                                         ("https://user:pw@93.184.216.34/h", "credentials"), ("", "http")])
def test_bad_urls(url, reason):
    with pytest.raises(webhooks.WebhookError) as err:
        webhooks.check_url(url, allow_private=True)
    assert reason in err.value.reason


def test_public_address_and_backoff():
    assert webhooks.check_url("https://93.184.216.34/hook", allow_private=False) == "https://93.184.216.34/hook"
    assert [webhooks.backoff_s(a) for a in range(1, 7)] == [1, 2, 4, 8, 16, 32]
    assert webhooks.backoff_s(20) == webhooks.BACKOFF_MAX_S


# ----------------------------------------------------------------- a real receiver

class Receiver:
    """HTTP server on 127.0.0.1 that verifies each request's signature; the first
    ``fail_first`` requests get a 503 (to exercise retries)."""

    def __init__(self, fail_first: int = 0):
        self.received: list[dict] = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = webhooks.verify_signature(SECRET, body, self.headers.get("X-Sigma-Timestamp"),
                                               self.headers.get("X-Sigma-Signature"))
                outer.received.append({"verified": ok, "body": json.loads(body), "event": self.headers.get("X-Sigma-Event"),
                                       "delivery": self.headers.get("X-Sigma-Delivery"), "at": time.time(),
                                       "host": self.headers.get("Host")})
                status = 503 if len(outer.received) <= outer.fail_first else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= n, self.received
        return self.received

    def close(self):
        self.server.shutdown()


# ----------------------------------------------------------------- the address checked is the address used

HOSTS = "/etc/hosts"


def _set_hosts_line(name: str, address: str | None) -> None:
    """Point ``name`` at ``address`` in /etc/hosts (None: remove it). Written in place (the
    file may be a bind mount), other lines untouched."""
    with open(HOSTS) as handle:
        lines = [line for line in handle.read().splitlines() if not line.split()[1:2] == [name]]
    if address is not None:
        lines.append(f"{address} {name}")
    with open(HOSTS, "w") as handle:
        handle.write("\n".join(lines) + "\n")


@pytest.fixture
def hosts_name():
    """A host name that resolves to loopback through /etc/hosts (we run as root), removed after."""
    import os
    import socket

    if not os.access(HOSTS, os.W_OK):
        pytest.skip("/etc/hosts is not writable")
    name = f"sigma-hook-{os.getpid()}.test"
    _set_hosts_line(name, "127.0.0.1")
    try:
        assert socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)[0][4][0] == "127.0.0.1"
        yield name
    finally:
        _set_hosts_line(name, None)


def test_a_name_resolving_to_loopback_is_refused(hosts_name):
    url = f"http://{hosts_name}:8080/hook"
    for check in (webhooks.check_url, webhooks.pinned_target):
        with pytest.raises(webhooks.WebhookError) as err:
            check(url, allow_private=False)
        assert err.value.field == "url" and "127.0.0.1" in err.value.reason
    target, headers, extensions = webhooks.pinned_target(url, allow_private=True)
    assert (target, headers, extensions) == ("http://127.0.0.1:8080/hook", {"Host": f"{hosts_name}:8080"}, {})
    target, headers, extensions = webhooks.pinned_target(f"https://{hosts_name}/a?b=1", allow_private=True)
    assert (target, headers, extensions) == ("https://127.0.0.1/a?b=1", {"Host": hosts_name}, {"sni_hostname": hosts_name})


def test_the_sender_connects_to_the_address_it_checked(hosts_name, monkeypatch):
    """DNS rebinding: the name is re-pointed (127.0.0.1 -> 127.0.0.2, where nothing listens)
    right after the check's look-up. The delivery still reaches the address that was checked,
    with the name as Host, and the name is looked up exactly once."""
    import asyncio
    import socket

    import httpx

    receiver = Receiver()
    port = receiver.server.server_address[1]
    url = f"http://{hosts_name}:{port}/hook"
    real = socket.getaddrinfo
    lookups = []

    def rebinding_getaddrinfo(host, *args, **kwargs):
        answer = real(host, *args, **kwargs)
        if host == hosts_name:
            lookups.append(answer[0][4][0])
            _set_hosts_line(hosts_name, "127.0.0.2")  # re-pointed between the check and the send
        return answer

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)

    async def send():
        async with httpx.AsyncClient() as client:
            return await webhooks.deliver_once(client, url, SECRET, {"event": "signal.generated", "data": {}},
                                               "signal.generated", allow_private=True)

    try:
        ok, status, error = asyncio.run(send())
        assert (ok, status, error) == (True, 200, None)
        assert lookups == ["127.0.0.1"]  # one look-up: the check's
        [got] = receiver.wait(1)
        assert got["verified"] and got["host"] == f"{hosts_name}:{port}"
        # the reference: a client that looks the name up again now goes to 127.0.0.2 and fails
        assert real(hosts_name, port, proto=socket.IPPROTO_TCP)[0][4][0] == "127.0.0.2"
        with pytest.raises(httpx.ConnectError):
            httpx.post(url, content=b"{}", timeout=5)
        assert len(receiver.received) == 1
    finally:
        receiver.close()


def _user_id(api, username):
    from cluster.catalog import User

    with api.catalog.session() as s:
        return s.scalar(select(User.id).where(User.username == username))


@pytest.mark.postgresql_only  # deliveries, signatures and retries are the subject, not the catalog's back end
def test_register_deliver_signed_retry_log_delete(api):
    user = "hook_hana"
    h = api.headers(user)
    receiver = Receiver(fail_first=2)
    try:
        assert_error(api.http.post(f"{V1}/webhooks", json={"url": "ftp://x.example/h", "events": ["sweep.completed"], "secret": SECRET},
                                   headers=h), 400, "INVALID_PARAMETER", field="url")
        assert_error(api.http.post(f"{V1}/webhooks", json={"url": receiver.url, "events": ["model.deleted"], "secret": SECRET},
                                   headers=h), 400, "INVALID_PARAMETER", field="events")
        assert_error(api.http.post(f"{V1}/webhooks", json={"url": receiver.url, "events": ["sweep.completed"], "secret": "short"},
                                   headers=h), 400, "INVALID_PARAMETER", field="secret")
        assert_error(api.http.post(f"{V1}/webhooks", json={"url": receiver.url, "events": ["sweep.completed"], "secret": SECRET}),
                     401, "UNAUTHORIZED")
        created = api.http.post(f"{V1}/webhooks", json={"url": receiver.url, "secret": SECRET,
                                                        "events": ["backtest.completed", "sweep.completed", "signal.generated"]},
                                headers=h)
        assert created.status_code == 201, created.text
        hook = created.json()
        assert "secret" not in hook and hook["webhook_id"].startswith("wh_") and hook["active"] is True
        only_sweeps = api.http.post(f"{V1}/webhooks", json={"url": receiver.url, "events": ["sweep.completed"], "secret": SECRET},
                                    headers=h).json()
        listing = api.http.get(f"{V1}/webhooks", headers=h).json()
        assert listing["total"] == 2 and SECRET not in json.dumps(listing)
        assert api.http.get(f"{V1}/webhooks", headers=api.headers("hook_ivan")).json()["total"] == 0

        # an event only the first webhook subscribes to: one delivery, failing twice (503) then delivered
        ids = webhooks.enqueue(api.catalog, _user_id(api, user), "signal.generated",
                               {"signal_id": "sig_1", "model_id": "AAPL_equity_5d_daily", "action": "BUY"}, settings=api.settings)
        assert len(ids) == 1
        got = receiver.wait(3, timeout=60)
        assert all(r["verified"] for r in got)  # every attempt signed with a fresh timestamp
        assert [r["delivery"] for r in got] == [ids[0]] * 3 and {r["event"] for r in got} == {"signal.generated"}
        assert got[0]["body"] == {"event": "signal.generated", "timestamp": got[0]["body"]["timestamp"], "delivery_id": ids[0],
                                  "data": {"signal_id": "sig_1", "model_id": "AAPL_equity_5d_daily", "action": "BUY"}}
        gaps = [b["at"] - a["at"] for a, b in zip(got, got[1:])]
        assert gaps[0] >= 0.9 and gaps[1] >= 1.9  # exponential backoff: 1 s, then 2 s
        deadline = time.monotonic() + 20
        while True:
            log = api.http.get(f"{V1}/webhooks/{hook['webhook_id']}/deliveries", headers=h).json()
            if log["items"] and log["items"][0]["status"] == "delivered" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        item = log["items"][0]
        assert log["total"] == 1 and item["status"] == "delivered" and item["attempts"] == 3 and item["last_status_code"] == 200
        assert item["delivered_at"] and item["payload"]["data"]["signal_id"] == "sig_1"
        assert api.http.get(f"{V1}/webhooks/{only_sweeps['webhook_id']}/deliveries", headers=h).json()["total"] == 0

        # sweep.completed goes to both webhooks
        webhooks.enqueue(api.catalog, _user_id(api, user), "sweep.completed", {"sweep_id": "sweep_x", "status": "success"},
                         settings=api.settings)
        got = receiver.wait(5)
        assert all(r["verified"] for r in got[3:]) and {r["event"] for r in got[3:]} == {"sweep.completed"}
        assert len({r["delivery"] for r in got[3:]}) == 2

        assert_error(api.http.get(f"{V1}/webhooks/{hook['webhook_id']}/deliveries", headers=api.headers("hook_ivan")), 404, "NOT_FOUND")
        assert_error(api.http.delete(f"{V1}/webhooks/{hook['webhook_id']}", headers=api.headers("hook_ivan")), 404, "NOT_FOUND")
        gone = api.http.delete(f"{V1}/webhooks/{hook['webhook_id']}", headers=h)
        assert gone.status_code == 200 and gone.json()["deleted"] is True
        assert_error(api.http.get(f"{V1}/webhooks/{hook['webhook_id']}/deliveries", headers=h), 404, "NOT_FOUND")
        assert api.http.get(f"{V1}/webhooks", headers=h).json()["total"] == 1
        # a deleted webhook gets nothing more
        assert len(webhooks.enqueue(api.catalog, _user_id(api, user), "signal.generated", {"x": 1}, settings=api.settings)) == 0
    finally:
        receiver.close()


def test_unreachable_receiver_fails_after_max_attempts(api, monkeypatch):
    """The dispatcher gives up after MAX_ATTEMPTS; exercised in-process with a short backoff."""
    import asyncio

    import httpx

    from cluster.catalog import WebhookDelivery

    user = "hook_jo"
    api.headers(user)
    uid = _user_id(api, user)
    row = webhooks.register(api.catalog, api.settings, uid, "http://127.0.0.1:9/closed", ["signal.generated"], SECRET)
    [delivery_id] = webhooks.enqueue(api.catalog, uid, "signal.generated", {"n": 1}, wake=False)
    monkeypatch.setattr(webhooks, "BACKOFF_BASE_S", 0.0)

    async def run():
        async with httpx.AsyncClient() as client:
            for _ in range(webhooks.MAX_ATTEMPTS + 2):
                await webhooks.dispatch_due(api.catalog, client, allow_private=True)

    # the detached dispatcher may race us for the same rows; leases keep each attempt single
    asyncio.run(run())
    deadline = time.monotonic() + 30
    while True:
        with api.catalog.session() as s:
            d = s.get(WebhookDelivery, delivery_id)
        if d.status == "failed" or time.monotonic() > deadline:
            break
        asyncio.run(run())
        time.sleep(0.2)
    assert d.status == "failed" and d.attempts == webhooks.MAX_ATTEMPTS and d.last_error
    webhooks.delete_webhook(api.catalog, uid, row.id)
