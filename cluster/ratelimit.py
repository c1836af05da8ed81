"""Token buckets per user and tier, shared by every Serve replica through one named actor."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass

import ray

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


def check_buckets(buckets: list[Bucket], now: float, wall: float) -> dict:
    """Take one token from every bucket, or none if any is empty.

    Returns the headers' numbers: the tightest bucket's limit and remaining tokens, when it is
    full again (epoch seconds), and ``retry_after`` seconds when refused.
    """
    for bucket in buckets:
        bucket.refill(now)
    allowed = all(b.tokens >= 1.0 for b in buckets)
    if allowed:
        for bucket in buckets:
            bucket.tokens -= 1.0
    tightest = min(buckets, key=lambda b: b.tokens)
    retry_after = 0.0 if allowed else max(b.seconds_until(1.0) for b in buckets)
    reset_in = tightest.seconds_until(tightest.capacity)
    return {
        "allowed": allowed,
        "limit": int(tightest.capacity),
        "remaining": max(0, int(math.floor(tightest.tokens))),
        "reset": int(math.ceil(wall + reset_in)),
        "retry_after": int(math.ceil(retry_after)) if not allowed else 0,
    }


class RateLimiterCore:
    """The bucket table; the actor below wraps it so all replicas share one table."""

    def __init__(self, tier_limits: dict[str, dict[str, int | None]]):
        self.tier_limits = tier_limits
        self.buckets: dict[str, list[Bucket]] = {}

    def hit(self, key: str, tier: str) -> dict:
        limits = self.tier_limits.get(tier) or self.tier_limits["free"]
        per_minute, per_hour = limits.get("per_minute"), limits.get("per_hour")
        if per_minute is None and per_hour is None:
            return {"allowed": True, "limit": None, "remaining": None, "reset": None, "retry_after": 0}
        now, wall = time.monotonic(), time.time()
        buckets = self.buckets.get(f"{tier}:{key}")
        if buckets is None:
            buckets = []
            if per_minute is not None:
                buckets.append(Bucket(float(per_minute), per_minute / 60.0, float(per_minute), now))
            if per_hour is not None:
                buckets.append(Bucket(float(per_hour), per_hour / 3600.0, float(per_hour), now))
            self.buckets[f"{tier}:{key}"] = buckets
        return check_buckets(buckets, now, wall)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class RateLimiter:
    def __init__(self, tier_limits: dict):
        self.core = RateLimiterCore(tier_limits)

    def hit(self, key: str, tier: str) -> dict:
        return self.core.hit(key, tier)


def limiter_name(tier_limits: dict) -> str:
    digest = hashlib.sha256(json.dumps(tier_limits, sort_keys=True).encode()).hexdigest()[:10]
    return f"{LIMITER_NAME}_{digest}"


def get_rate_limiter(tier_limits: dict):
    return RateLimiter.options(name=limiter_name(tier_limits), namespace="sigma", get_if_exists=True, lifetime="detached").remote(
        tier_limits
    )
