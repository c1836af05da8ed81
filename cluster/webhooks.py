"""Webhooks: registration, signed deliveries with retries, and the delivery log.

- ``register`` checks the URL (http or https; addresses that are private, loopback,
  link-local, multicast, reserved or unspecified are refused unless
  ``settings.allow_private_webhooks``) and the events (``EVENTS``).
- ``enqueue(catalog, user_id, event, data)`` writes one ``WebhookDelivery`` (status
  ``pending``) per active webhook of the user subscribed to the event and wakes the
  dispatcher. Areas call it after their result is committed (``backtest.completed``,
  ``sweep.completed``, ``signal.generated``).
- The dispatcher, a detached Ray actor per catalog (``WebhookDispatcher``, started lazily by
  the webhook routes and by ``enqueue``), claims due deliveries, POSTs them and records the
  outcome. A failed attempt (non-2xx, timeout, refused connection) is retried after
  ``BACKOFF_BASE_S * 2**(attempts - 1)`` seconds (capped at ``BACKOFF_MAX_S``) up to
  ``MAX_ATTEMPTS`` attempts, then marked ``failed``. Deliveries live in the catalog, so a
  restarted dispatcher picks up where the old one stopped.

Signing: the body is the JSON payload ``{"event", "timestamp", "delivery_id", "data"}``; each
attempt sends ``X-Sigma-Timestamp: <unix seconds>`` and
``X-Sigma-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>``.
The timestamp is inside the signed material, so a captured request cannot be replayed
later: receivers reject signatures older than a few minutes (``verify_signature``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from typing import Any, Iterable, Optional
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update

from cluster import metrics
from cluster.catalog import Catalog, Webhook, WebhookDelivery, owned_row
from cluster.catalog.models import utcnow
from cluster.config import Settings
from cluster.errors import InputError
from cluster.runtime import ON_HEAD_NODE

log = logging.getLogger("sigma.webhooks")

EVENTS = ("backtest.completed", "sweep.completed", "signal.generated", "report.ready", "alert.triggered")
SIGNATURE_HEADER = "X-Sigma-Signature"
TIMESTAMP_HEADER = "X-Sigma-Timestamp"
EVENT_HEADER = "X-Sigma-Event"
DELIVERY_HEADER = "X-Sigma-Delivery"
MAX_ATTEMPTS = 6
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 300.0
REQUEST_TIMEOUT_S = 10.0
LEASE_S = 60.0
POLL_S = 2.0
MAX_WEBHOOKS_PER_USER = 20
DISPATCHER_NAME = "sigma_webhook_dispatcher"


class WebhookError(InputError):
    """Bad webhook input."""


# ----------------------------------------------------------------- signing

def sign(secret: str, body: bytes, timestamp: int | str) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, "<timestamp>." + body)."""
    material = str(int(timestamp)).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), material, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, timestamp: str | int | None, header: str | None,
                     tolerance_s: float = 300, now: float | None = None) -> bool:
    """For receivers: True when ``header`` is the signature of this raw ``body`` and
    ``timestamp`` (the ``X-Sigma-Timestamp`` header) and the timestamp is within
    ``tolerance_s`` seconds of ``now`` (replay protection). Constant-time comparison."""
    if not header or timestamp is None:
        return False
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        return False
    now = time.time() if now is None else now
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, ts), header.strip())


def payload_bytes(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


# ----------------------------------------------------------------- URL policy

def _address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified or not ip.is_global)


def _split(url: Any) -> tuple[str, Any, str, int]:
    """``(url, parts, host, port)`` of a well-formed webhook URL, else ``WebhookError``."""
    if not isinstance(url, str) or not url.strip():
        raise WebhookError("url", "must be an http(s) URL")
    url = url.strip()
    if len(url) > 2048:
        raise WebhookError("url", "at most 2048 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookError("url", "must use http or https")
    host = parts.hostname
    if not host:
        raise WebhookError("url", "has no host")
    if parts.username or parts.password:
        raise WebhookError("url", "must not carry credentials")
    try:
        port = parts.port
    except ValueError:
        raise WebhookError("url", "has an invalid port") from None
    return url, parts, host, port or (443 if parts.scheme == "https" else 80)


def _addresses(host: str, port: int) -> list[str]:
    """The host's addresses: the literal itself, or ONE name look-up (``WebhookError`` when
    the name does not resolve)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise WebhookError("url", f"host {host!r} does not resolve") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


def _check_addresses(host: str, addresses: list[str]) -> None:
    for address in addresses:
        if not _address_allowed(address):
            raise WebhookError("url", f"{host} resolves to {address}, a private, loopback or link-local address; "
                               "webhooks must reach a public address")


def check_url(url: Any, allow_private: bool, *, resolve: bool = True) -> str:
    """The URL if it may receive webhooks, else ``WebhookError("url", reason)``.

    Host names are resolved and every address must be public (unless ``allow_private``);
    a name that does not resolve is refused.
    """
    url, _parts, host, port = _split(url)
    if allow_private:
        return url
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not resolve:
            return url
        if host.lower() == "localhost" or host.lower().endswith(".localhost"):
            raise WebhookError("url", "loopback addresses are not allowed") from None
    _check_addresses(host, _addresses(host, port))
    return url


def pinned_target(url: Any, allow_private: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Check the URL (``check_url``'s rules) and pin the address it checked.

    Resolves the host once, checks every address, and returns ``(request_url, headers,
    extensions)`` for the send: the URL with the host replaced by the first checked address,
    the original ``Host`` header, and for https the original name as the TLS server name
    (``sni_hostname``: SNI and certificate checks use the name, not the address). The
    connection goes to the address that passed the check: nothing is looked up again between
    the SSRF check and the connection, so a name re-pointed in between (DNS rebinding) cannot
    steer the request to a private address.
    """
    url, parts, host, port = _split(url)
    if not allow_private and (host.lower() == "localhost" or host.lower().endswith(".localhost")):
        raise WebhookError("url", "loopback addresses are not allowed")
    addresses = _addresses(host, port)
    if not allow_private:
        _check_addresses(host, addresses)
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    request_url = parts._replace(netloc=netloc).geturl()
    host_header = parts.netloc.rpartition("@")[2]
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return request_url, {"Host": host_header}, extensions


def check_events(events: Any) -> list[str]:
    if not isinstance(events, list) or not events:
        raise WebhookError("events", f"must be a non-empty list drawn from {list(EVENTS)}")
    for e in events:
        if e not in EVENTS:
            raise WebhookError("events", f"unknown event {e!r}; expected one of {list(EVENTS)}")
    return list(dict.fromkeys(events))


def check_secret(secret: Any) -> str:
    if not isinstance(secret, str) or not 8 <= len(secret) <= 256:
        raise WebhookError("secret", "must be a string of 8 to 256 characters")
    return secret


# ----------------------------------------------------------------- service

def webhook_view(row: Webhook) -> dict:
    """The webhook as the API shows it: never the secret."""
    return {"webhook_id": row.id, "url": row.url, "events": list(row.events or []), "active": row.active,
            "created_at": row.created_at.isoformat() if row.created_at else None}


def delivery_view(row: WebhookDelivery) -> dict:
    return {
        "delivery_id": row.id, "webhook_id": row.webhook_id, "event": row.event, "status": row.status,
        "attempts": row.attempts, "last_status_code": row.last_status_code, "last_error": row.last_error,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at and row.status == "pending" else None,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
        "payload": row.payload,
    }


def register(catalog: Catalog, settings: Settings, user_id: int, url: Any, events: Any, secret: Any) -> Webhook:
    events = check_events(events)
    secret = check_secret(secret)
    url = check_url(url, settings.allow_private_webhooks)
    with catalog.session() as s:
        count = len(s.scalars(select(Webhook.id).where(Webhook.user_id == user_id)).all())
        if count >= MAX_WEBHOOKS_PER_USER:
            raise WebhookError("url", f"at most {MAX_WEBHOOKS_PER_USER} webhooks per user")
        row = Webhook(user_id=user_id, url=url, events=events, secret=secret, active=True)
        s.add(row)
        s.flush()
        return row


def list_webhooks(catalog: Catalog, user_id: int) -> list[Webhook]:
    with catalog.session() as s:
        return list(s.scalars(select(Webhook).where(Webhook.user_id == user_id).order_by(Webhook.created_at)).all())


def get_webhook(catalog: Catalog, user_id: int, webhook_id: str) -> Webhook:
    with catalog.session() as s:
        return owned_row(s, Webhook, webhook_id, user_id, "webhook")


def delete_webhook(catalog: Catalog, user_id: int, webhook_id: str) -> None:
    """Remove the webhook and its delivery log (pending deliveries are dropped)."""
    with catalog.session() as s:
        row = owned_row(s, Webhook, webhook_id, user_id, "webhook")
        s.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
        s.delete(row)


def deliveries(catalog: Catalog, user_id: int, webhook_id: str, *, status: Optional[str] = None,
               limit: int = 50, offset: int = 0) -> tuple[list[WebhookDelivery], int]:
    get_webhook(catalog, user_id, webhook_id)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    with catalog.session() as s:
        total = len(s.scalars(query.with_only_columns(WebhookDelivery.id)).all())
        rows = s.scalars(query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
                         .limit(limit).offset(offset)).all()
        return list(rows), total


def enqueue(catalog: Catalog, user_id: int, event: str, data: dict, *, settings: Optional[Settings] = None,
            wake: bool = True) -> list[str]:
    """Queue ``event`` for every active webhook of the user subscribed to it; returns the
    delivery ids. The payload is fixed here (same body on every attempt)."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    now = utcnow()
    ids = []
    with catalog.session() as s:
        hooks = s.scalars(select(Webhook).where(Webhook.user_id == user_id, Webhook.active.is_(True))).all()
        for hook in hooks:
            if event not in (hook.events or []):
                continue
            row = WebhookDelivery(webhook_id=hook.id, event=event, status="pending", attempts=0, next_attempt_at=now)
            s.add(row)
            s.flush()
            row.payload = {"event": event, "timestamp": now.isoformat().replace("+00:00", "Z"),
                           "delivery_id": row.id, "data": data}
            ids.append(row.id)
    if ids and wake:
        wake_dispatcher(catalog, settings)
    return ids


def backoff_s(attempts: int) -> float:
    """Delay before the next attempt after ``attempts`` failed ones: 1, 2, 4, ... s, capped."""
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1))


def claim_due(catalog: Catalog, limit: int = 20) -> list[tuple[str, str, str, dict, str]]:
    """Lease due deliveries (so no second dispatcher sends them meanwhile); returns
    (delivery id, url, secret, payload, event) tuples."""
    now = utcnow()
    lease = now + dt.timedelta(seconds=LEASE_S)
    out = []
    with catalog.session() as s:
        rows = s.execute(
            select(WebhookDelivery.id, Webhook.url, Webhook.secret, WebhookDelivery.payload, WebhookDelivery.event)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at).limit(limit)).all()
        for row in rows:
            res = s.execute(update(WebhookDelivery)
                            .where(WebhookDelivery.id == row[0], WebhookDelivery.status == "pending",
                                   WebhookDelivery.next_attempt_at <= now)
                            .values(next_attempt_at=lease))
            if res.rowcount == 1:
                out.append(tuple(row))
    return out


def record_attempt(catalog: Catalog, delivery_id: str, *, ok: bool, status_code: Optional[int],
                   error: Optional[str]) -> str:
    """Write an attempt's outcome; returns the delivery's new status."""
    now = utcnow()
    with catalog.session() as s:
        row = s.get(WebhookDelivery, delivery_id)
        if row is None:
            return "missing"
        row.attempts = (row.attempts or 0) + 1
        row.last_status_code = status_code
        row.last_error = None if ok else (error or "")[:1000]
        if ok:
            row.status, row.delivered_at, row.next_attempt_at = "delivered", now, None
        elif row.attempts >= MAX_ATTEMPTS:
            row.status, row.next_attempt_at = "failed", None
        else:
            row.next_attempt_at = now + dt.timedelta(seconds=backoff_s(row.attempts))
        return row.status


async def deliver_once(client, url: str, secret: str, payload: dict, event: str, allow_private: bool) -> tuple[bool, Optional[int], Optional[str]]:
    """One signed POST; (ok, status code, error)."""
    try:
        # Re-checked at send time (a name may have been re-pointed at a private address), and
        # the connection goes to the very address checked: no second look-up in between.
        target, host_header, extensions = await asyncio.to_thread(pinned_target, url, allow_private)
    except WebhookError as exc:
        return False, None, f"refused: {exc.reason}"
    body = payload_bytes(payload)
    ts = int(time.time())
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, body, ts),
               EVENT_HEADER: event, DELIVERY_HEADER: str(payload.get("delivery_id", "")),
               "User-Agent": "Sigma-Webhooks/1", **host_header}
    try:
        resp = await client.post(target, content=body, headers=headers, timeout=REQUEST_TIMEOUT_S, extensions=extensions)
    except Exception as exc:  # noqa: BLE001 - every failure is an attempt to log and retry
        return False, None, f"{type(exc).__name__}: {exc}"
    if 200 <= resp.status_code < 300:
        return True, resp.status_code, None
    return False, resp.status_code, f"HTTP {resp.status_code}: {resp.text[:200]}"


async def dispatch_due(catalog: Catalog, client, allow_private: bool) -> int:
    """Send every due delivery once (concurrently); returns how many were attempted."""
    claimed = await asyncio.to_thread(claim_due, catalog)
    if not claimed:
        return 0

    async def one(item):
        delivery_id, url, secret, payload, event = item
        ok, code, error = await deliver_once(client, url, secret, payload, event, allow_private)
        metrics.count_webhook_delivery(ok)
        await asyncio.to_thread(record_attempt, catalog, delivery_id, ok=ok, status_code=code, error=error)

    await asyncio.gather(*(one(item) for item in claimed))
    return len(claimed)


# ----------------------------------------------------------------- the dispatcher actor

def _dispatcher_class():
    import ray

    @ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
    class WebhookDispatcher:
        """Polls the catalog for due deliveries (every ``POLL_S`` or when woken) and sends them."""

        def __init__(self, settings_json: str):
            import httpx

            from cluster.catalog import get_catalog

            self.settings = Settings.model_validate_json(settings_json)
            self.catalog = get_catalog(self.settings)
            self.client = httpx.AsyncClient(follow_redirects=False)
            self.event = asyncio.Event()
            self.sent = 0
            self.task = None

        async def _loop(self):
            while True:
                try:
                    while await dispatch_due(self.catalog, self.client, self.settings.allow_private_webhooks):
                        self.sent += 1
                except Exception:  # noqa: BLE001 - a bad round must not stop the dispatcher
                    log.exception("webhook dispatch round failed")
                try:
                    await asyncio.wait_for(self.event.wait(), timeout=POLL_S)
                except asyncio.TimeoutError:
                    pass
                self.event.clear()

        async def wake(self) -> bool:
            if self.task is None:
                self.task = asyncio.get_running_loop().create_task(self._loop())
            self.event.set()
            return True

        async def stats(self) -> dict:
            return {"rounds_with_work": self.sent, "running": self.task is not None and not self.task.done()}

    return WebhookDispatcher


_dispatcher_cls = None


def dispatcher_name(database_url: str) -> str:
    return f"{DISPATCHER_NAME}_{hashlib.sha256(database_url.encode()).hexdigest()[:10]}"


def get_dispatcher(catalog: Catalog, settings: Optional[Settings] = None):
    """The catalog's dispatcher actor (created on first use, detached)."""
    global _dispatcher_cls
    import ray

    if _dispatcher_cls is None:
        _dispatcher_cls = _dispatcher_class()
    name = dispatcher_name(catalog.url)
    try:
        return ray.get_actor(name, namespace="sigma")
    except ValueError:
        pass
    if settings is None:
        settings = Settings(database_url=catalog.url)
    return _dispatcher_cls.options(name=name, namespace="sigma", get_if_exists=True,
                                   lifetime="detached", **ON_HEAD_NODE).remote(settings.worker_json())


def wake_dispatcher(catalog: Catalog, settings: Optional[Settings] = None) -> bool:
    """Start (if needed) and wake the dispatcher; False when Ray is not running here (the
    deliveries stay pending until a dispatcher runs)."""
    try:
        import ray

        if not ray.is_initialized():
            return False
        get_dispatcher(catalog, settings).wake.remote()
        return True
    except Exception:  # noqa: BLE001 - queued deliveries are durable; waking is best effort
        log.exception("could not wake the webhook dispatcher")
        return False


def pending_count(catalog: Catalog, webhook_ids: Iterable[str]) -> int:
    with catalog.session() as s:
        return len(s.scalars(select(WebhookDelivery.id).where(WebhookDelivery.webhook_id.in_(list(webhook_ids)),
                                                             WebhookDelivery.status == "pending")).all())
