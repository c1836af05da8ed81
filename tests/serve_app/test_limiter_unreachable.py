"""The API does not wait on a shared rate limiter that cannot answer (its node lost, Ray
restarting it elsewhere): a request is let through after ``LEASE_TIMEOUT_S`` instead of
hanging with the limiter's retried call (issue 17: the API keeps answering)."""

from __future__ import annotations

import asyncio
import time


def test_a_silent_limiter_lets_requests_through_after_the_timeout(ray_session):
    import ray

    from cluster.config import Settings
    from serve_app import state

    @ray.remote(num_cpus=0)
    class SilentLimiter:  # answers after a minute, as a limiter being restarted on another node does
        async def lease(self, key, tier, want):
            await asyncio.sleep(60)
            return {}

    silent = SilentLimiter.remote()
    limiter = state.ActorLimiter(silent, Settings().tier_limits())
    started = time.monotonic()
    verdict = asyncio.run(limiter.hit("user:1", "free"))
    waited = time.monotonic() - started
    assert verdict["allowed"] and verdict["limit"] is None
    assert state.LEASE_TIMEOUT_S <= waited < state.LEASE_TIMEOUT_S + 10
    ray.kill(silent)
