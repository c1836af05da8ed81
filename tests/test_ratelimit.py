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
