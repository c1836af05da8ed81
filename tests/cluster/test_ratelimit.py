"""Token-bucket arithmetic (the shared actor wraps exactly this)."""

from __future__ import annotations

from cluster.ratelimit import Bucket, RateLimiterCore, check_buckets


def test_bucket_refills_at_its_rate_and_caps_at_capacity():
    bucket = Bucket(capacity=60, refill_per_s=1.0, tokens=0.0, stamp=100.0)
    bucket.refill(130.0)
    assert bucket.tokens == 30.0
    bucket.refill(1000.0)
    assert bucket.tokens == 60.0


def test_minute_and_hour_buckets_both_bind():
    minute = Bucket(3, 3 / 60, 3, 0.0)
    hour = Bucket(5, 5 / 3600, 5, 0.0)
    results = [check_buckets([minute, hour], now=0.0, wall=1000.0) for _ in range(4)]
    assert [r["allowed"] for r in results] == [True, True, True, False]
    assert results[2]["remaining"] == 0
    assert results[3]["retry_after"] == 20  # one token of a 3/min bucket takes 20 s
    # A minute later the minute bucket is full again but the hour bucket has 2 left.
    later = [check_buckets([minute, hour], now=60.0, wall=1060.0) for _ in range(3)]
    assert [r["allowed"] for r in later] == [True, True, False]
    assert later[2]["limit"] == 5  # the hour bucket is now the tight one


def test_limits_are_per_key_and_unlimited_tiers_pass():
    core = RateLimiterCore({"free": {"per_minute": 2, "per_hour": 100}, "enterprise": {"per_minute": None, "per_hour": None}})
    assert [core.hit("a", "free")["allowed"] for _ in range(3)] == [True, True, False]
    assert core.hit("b", "free")["allowed"] is True
    assert all(core.hit("c", "enterprise")["allowed"] for _ in range(1000))
    assert core.hit("c", "enterprise")["limit"] is None


def test_leases_never_exceed_the_shared_budget_across_replicas():
    """Two replicas leasing from one table: together they admit exactly the minute budget."""
    import asyncio

    from cluster.ratelimit import TokenLeases, lease_size

    limits = {"basic": {"per_minute": 300, "per_hour": 10000}, "free": {"per_minute": 30, "per_hour": 1000}}
    core = RateLimiterCore(limits)
    calls = {"n": 0}

    async def fetch(key, tier, want):
        calls["n"] += 1
        return core.lease(key, tier, want)

    replicas = [TokenLeases(fetch, limits), TokenLeases(fetch, limits)]

    async def burst():
        verdicts = []
        for i in range(400):
            verdicts.append(await replicas[i % 2].hit("user:1", "basic"))
        return verdicts

    verdicts = asyncio.run(burst())
    assert sum(v["allowed"] for v in verdicts) == 300
    assert lease_size(limits, "basic") == 6 and calls["n"] < 400  # most requests never leave the replica
    assert all(v["remaining"] >= 0 for v in verdicts)
    refused = [v for v in verdicts if not v["allowed"]]
    assert refused and all(v["retry_after"] >= 1 for v in refused)
    # A free-tier caller leases one token at a time: counting stays exact.
    assert lease_size(limits, "free") == 1
