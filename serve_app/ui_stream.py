"""The Server-Sent Events stream of a user's UI session (``GET /api/v1/ui/events`` and the
dashboard's ``/app/events``): catalog polling, so an event published on any replica reaches a
stream on any other, and ``Last-Event-ID`` replays the missed ones.

The stream ends when the token expires, is revoked (the user deactivated or its version moved),
or the dashboard logs it out (a ``logout`` row carrying the token's fingerprint).
"""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator

import orjson
from fastapi import Request
from fastapi.responses import StreamingResponse

from services import ui_sync
from serve_app.state import AppState

#: How often a stream looks for new events (the SSE latency budget is 200 ms p95).
POLL_S = 0.05
#: How often it re-checks the token against the catalog, and sends a keep-alive comment.
CHECK_S = 5.0
HEARTBEAT_S = 15.0


#: Streams of this process waiting for their session's next event: a publish through this
#: replica wakes them at once; events published through another replica arrive by the poll.
_waiters: dict[tuple[int, str], set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}


def notify(user_id: int, session: str) -> None:
    """Wake this process's streams of the session (and, for ``*``, all of the user's)."""
    for (uid, sess), waiters in list(_waiters.items()):
        if uid == user_id and (session in ("*", sess)):
            for loop, event in list(waiters):
                loop.call_soon_threadsafe(event.set)


def _frame(event_id: int | None, kind: str, data: dict) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


def start_after(request: Request, catalog, user_id: int, session: str) -> int:
    """The id to stream after: ``Last-Event-ID`` (a reconnect), else the ``after`` query
    parameter (a page that kept the last id it saw), else now (only new events)."""
    for raw in (request.headers.get("last-event-id"), request.query_params.get("after")):
        if raw is not None and raw.strip().isdigit() and len(raw.strip()) < 19:
            return int(raw.strip())
    return ui_sync.latest_id(catalog, user_id, session)


async def event_stream(request: Request, state: AppState, user_id: int, session: str, after: int, token: str,
                       claims: dict) -> AsyncIterator[bytes]:
    fingerprint = ui_sync.token_fingerprint(token)
    expires = float(claims.get("exp", 0))
    version = int(claims.get("ver", 0))
    wake = asyncio.Event()
    waiter = (asyncio.get_running_loop(), wake)
    _waiters.setdefault((user_id, session), set()).add(waiter)
    try:
        yield b"retry: 1000\n" + _frame(None, "ready", {"session_id": session, "after": after})
        async for chunk in _events(request, state, user_id, session, after, fingerprint, expires, version, wake):
            yield chunk
    finally:
        waiters = _waiters.get((user_id, session))
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                _waiters.pop((user_id, session), None)


async def _events(request, state, user_id, session, after, fingerprint, expires, version, wake):
    from serve_app.deps import _load_caller

    last_check = last_beat = time.monotonic()
    while True:
        wake.clear()
        if await request.is_disconnected():
            return
        events = await asyncio.to_thread(ui_sync.events_after, state.catalog, user_id, session, after)
        for ev in events:
            after = ev["id"]
            if ev["kind"] == "logout":
                if ev["token_fp"] == fingerprint:
                    yield _frame(ev["id"], "logout", {"reason": "logged out"})
                    return
                continue
            yield _frame(ev["id"], ev["kind"], {**ev["payload"], "event_id": ev["id"], "at": ev["at"]})
        now = time.monotonic()
        if time.time() >= expires:
            yield _frame(None, "logout", {"reason": "token expired"})
            return
        if now - last_check >= CHECK_S:
            last_check = now
            if await asyncio.to_thread(_load_caller, state, user_id, version) is None:
                yield _frame(None, "logout", {"reason": "token revoked"})
                return
        if now - last_beat >= HEARTBEAT_S:
            last_beat = now
            yield b": keep-alive\n\n"
        try:
            await asyncio.wait_for(wake.wait(), POLL_S)
        except asyncio.TimeoutError:
            pass


def sse_response(stream: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"})
