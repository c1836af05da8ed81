"""Token buckets per user and tier, shared by every Serve replica through one named actor."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass

import ray

from cluster.runtime import ON_HEAD_NODE

LIMITER_NAME = "sigma_rate_limiter"


@dataclass
class Bucket:
    capacity: float
    refill_per_s: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill_per_s)
        self.stamp = now

    def seconds_until(self, tokens: float) -> float:
        missing = tokens - self.tokens
        return 0.0 if missing <= 0 else missing / self.refill_per_s


def take_tokens(buckets: list[Bucket], want: int, now: float, wall: float) -> dict:
    """Take up to ``want`` tokens from every bucket at once (as many as the emptiest allows).

    Returns ``granted`` and the headers' numbers: the tightest bucket's limit and what it has
    left after the grant, when it is full again (epoch seconds), and ``retry_after`` seconds
    when nothing could be granted.
    """
    for bucket in buckets:
        bucket.refill(now)
    granted = max(0, min(want, min(int(math.floor(b.tokens)) for b in buckets)))
    for bucket in buckets:
        bucket.tokens -= granted
    tightest = min(buckets, key=lambda b: b.tokens)
    retry_after = 0.0 if granted else max(b.seconds_until(1.0) for b in buckets)
    return {
        "granted": granted,
        "limit": int(tightest.capacity),
        "remaining": max(0, int(math.floor(tightest.tokens))),
        "reset": int(math.ceil(wall + tightest.seconds_until(tightest.capacity))),
        "retry_after": int(math.ceil(retry_after)) if not granted else 0,
    }


def check_buckets(buckets: list[Bucket], now: float, wall: float) -> dict:
    """One request: ``take_tokens`` of one, as a verdict with ``allowed``."""
    verdict = take_tokens(buckets, 1, now, wall)
    verdict["allowed"] = verdict.pop("granted") == 1
    return verdict


UNLIMITED = {"allowed": True, "granted": None, "limit": None, "remaining": None, "reset": None, "retry_after": 0}


class RateLimiterCore:
    """The bucket table; the actor below wraps it so all replicas share one table."""

    def __init__(self, tier_limits: dict[str, dict[str, int | None]]):
        self.tier_limits = tier_limits
        self.buckets: dict[str, list[Bucket]] = {}

    def _buckets(self, key: str, tier: str) -> list[Bucket] | None:
        limits = self.tier_limits.get(tier) or self.tier_limits["free"]
        per_minute, per_hour = limits.get("per_minute"), limits.get("per_hour")
        if per_minute is None and per_hour is None:
            return None
        buckets = self.buckets.get(f"{tier}:{key}")
        if buckets is None:
            now = time.monotonic()
            buckets = []
            if per_minute is not None:
                buckets.append(Bucket(float(per_minute), per_minute / 60.0, float(per_minute), now))
            if per_hour is not None:
                buckets.append(Bucket(float(per_hour), per_hour / 3600.0, float(per_hour), now))
            self.buckets[f"{tier}:{key}"] = buckets
        return buckets

    def lease(self, key: str, tier: str, want: int = 1) -> dict:
        buckets = self._buckets(key, tier)
        if buckets is None:
            return dict(UNLIMITED)
        return take_tokens(buckets, max(1, int(want)), time.monotonic(), time.time())

    def hit(self, key: str, tier: str) -> dict:
        buckets = self._buckets(key, tier)
        if buckets is None:
            return dict(UNLIMITED)
        return check_buckets(buckets, time.monotonic(), time.time())


def lease_size(tier_limits: dict, tier: str) -> int:
    """Tokens a replica leases at once: about 2 % of the minute budget, 1 to 20.

    Small tiers lease one token per request (exact counting); large ones save an actor round
    trip on most requests. Leased tokens are already taken from the shared buckets, so all
    replicas together never exceed a limit.
    """
    per_minute = (tier_limits.get(tier) or tier_limits["free"]).get("per_minute")
    if per_minute is None:
        return 20
    return max(1, min(20, int(per_minute) // 50))


@dataclass
class Lease:
    tokens: int
    verdict: dict
    expires: float


class TokenLeases:
    """A replica's side of the shared limiter: spends leased tokens locally, asks for more.

    ``fetch(key, tier, want)`` is the shared limiter's ``lease`` (an actor call in Serve). A
    lease lives ``ttl_s`` seconds; tokens unused by then are dropped, which can only make the
    limit stricter, never looser. ``X-RateLimit-Remaining`` counts the shared buckets plus this
    replica's unspent lease.
    """

    def __init__(self, fetch, tier_limits: dict, ttl_s: float = 2.0):
        self.fetch = fetch
        self.tier_limits = tier_limits
        self.ttl_s = ttl_s
        self.leases: dict[str, Lease] = {}

    async def hit(self, key: str, tier: str) -> dict:
        now = time.monotonic()
        slot = f"{tier}:{key}"
        lease = self.leases.get(slot)
        if lease is not None and now < lease.expires:
            if lease.verdict["limit"] is None:
                return dict(UNLIMITED)
            if lease.tokens > 0:
                lease.tokens -= 1
                return {**lease.verdict, "allowed": True, "remaining": lease.verdict["remaining"] + lease.tokens}
        verdict = await self.fetch(key, tier, lease_size(self.tier_limits, tier))
        if verdict["limit"] is None:
            self.leases[slot] = Lease(0, verdict, now + self.ttl_s)
            return dict(UNLIMITED)
        granted = verdict["granted"]
        if not granted:
            self.leases.pop(slot, None)
            return {**verdict, "allowed": False}
        self.leases[slot] = Lease(granted - 1, verdict, now + self.ttl_s)
        return {**verdict, "allowed": True, "remaining": verdict["remaining"] + granted - 1}


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class RateLimiter:
    def __init__(self, tier_limits: dict):
        self.core = RateLimiterCore(tier_limits)

    def lease(self, key: str, tier: str, want: int = 1) -> dict:
        return self.core.lease(key, tier, want)


def limiter_name(tier_limits: dict) -> str:
    digest = hashlib.sha256(json.dumps(tier_limits, sort_keys=True).encode()).hexdigest()[:10]
    return f"{LIMITER_NAME}_{digest}"


def get_rate_limiter(tier_limits: dict):
    return RateLimiter.options(name=limiter_name(tier_limits), namespace="sigma", get_if_exists=True,
                               lifetime="detached", **ON_HEAD_NODE).remote(tier_limits)
