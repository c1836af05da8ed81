"""What a replica holds for its whole life: settings, catalog, store, actor handles."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cluster.artifacts import ArtifactStore
from cluster.catalog import Catalog, get_catalog
from cluster.config import Settings
from serve_app.warmup import Activity


class LocalLimiter:
    """In-process limiter for apps run without Ray (unit tests of routers)."""

    def __init__(self, tier_limits: dict):
        from cluster.ratelimit import RateLimiterCore

        self.core = RateLimiterCore(tier_limits)

    async def hit(self, key: str, tier: str) -> dict:
        return self.core.hit(key, tier)


#: How long a request waits for the shared rate limiter before it is let through.
LEASE_TIMEOUT_S = 3.0


class ActorLimiter:
    """The shared limiter actor behind this replica's token leases."""

    def __init__(self, handle, tier_limits: dict):
        from cluster.ratelimit import TokenLeases

        self.handle = handle
        self.leases = TokenLeases(self._lease, tier_limits)

    async def _lease(self, key: str, tier: str, want: int) -> dict:
        import asyncio

        try:
            # a limiter on a node that was lost answers nothing until Ray has restarted it
            # elsewhere (tens of seconds: its calls retry for ever): requests do not wait for it
            return await asyncio.wait_for(self.handle.lease.remote(key, tier, want), timeout=LEASE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - the limiter actor restarting must not take the API down
            logging.getLogger("sigma.api").warning("rate limiter unavailable; letting the request through")
            from cluster.ratelimit import UNLIMITED

            return dict(UNLIMITED)

    async def hit(self, key: str, tier: str) -> dict:
        return await self.leases.hit(key, tier)


@dataclass
class AppState:
    settings: Settings
    limiter: Any
    job_manager: Any = None
    #: Ray Serve's proxy already adds X-Request-ID (honouring the one we adopt); without Serve we add it.
    sets_request_id_header: bool = True
    extras: dict = field(default_factory=dict)
    #: the requests in flight and the first answer (serve_app/middleware.py), which the
    #: replica's background warm-up waits for (serve_app/warmup.py)
    activity: Activity = field(default_factory=Activity)

    @cached_property
    def catalog(self) -> Catalog:
        return get_catalog(self.settings)

    @cached_property
    def jwt_secret(self) -> str:
        return self.settings.resolved_jwt_secret()

    @cached_property
    def store(self) -> ArtifactStore:
        return ArtifactStore(self.settings.resolved_storage_url)
