"""Portfolio job kinds (run by ``cluster.jobs`` workers)."""

from __future__ import annotations

from cluster.market import market_provider
from cluster.jobs import JobContext, job_failures
from services.portfolio import service, views

JOB_KINDS = {"portfolio.greeks": "services.portfolio.jobs:greeks_job"}


def greeks_job(ctx: JobContext, params: dict) -> dict:
    """Greeks of hypothetical positions (spec 6.3, async): the same figures as the sync route."""
    with job_failures():
        specs = service.parse_hypothetical(params.get("positions"))
    ctx.progress(0.1, f"pricing {len(specs)} position(s)", force=True)
    with service.recording_pricing() as pricing:  # the sync route's meta.market_data, in the result
        frame = service.price_position_specs(market_provider(ctx.settings), specs)
    ctx.check_cancelled()
    return {**views.hypothetical_greeks(frame), "market_data": dict(pricing) or None}
