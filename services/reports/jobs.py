"""Report job kinds: ``reports.generate`` (run by ``cluster.jobs`` workers)."""

from __future__ import annotations

from cluster.artifacts import ArtifactStore
from cluster.jobs import JobContext, job_failures

JOB_KINDS = {"reports.generate": "services.reports.jobs:generate_job"}


def generate_job(ctx: JobContext, params: dict) -> dict:
    from cluster.market import market_provider
    from services.lab.events import emit_event
    from services.reports import service

    ctx.progress(0.02, "gathering figures", force=True)
    with job_failures():
        return service.run_report_job(
            ctx.catalog, ArtifactStore(ctx.settings.resolved_storage_url), market_provider(ctx.settings),
            params["report_id"], progress=ctx.progress,
            emit=lambda user_id, event, data: emit_event(ctx.catalog, user_id, event, data))


def warm_up(settings=None) -> None:
    """Load matplotlib, reportlab and the report sections in the warm worker and lay out a risk
    report of a small synthetic book (``services.warmup.warm_report``): pricing and risk kernels
    loaded, each chart kind drawn, the PDF engine's fonts read. The first report after a start
    then only gathers its own figures (measured: 6-15 s for the first ``risk_summary`` on a cold
    worker, most of it imports, kernel loads and first draws)."""
    from compute.marketdata.synthetic import SyntheticProvider
    from services.reports import lab, service  # noqa: F401
    from services.warmup import warm_report

    warm_report(SyntheticProvider(seed=0))
