"""AI job kinds (run by ``cluster.jobs`` workers): ``/ai/execute?mode=async`` and workflow runs."""

from __future__ import annotations

from cluster.artifacts import ArtifactStore
from cluster.jobs import JobContext, job_failures
from cluster.market import market_provider

JOB_KINDS = {
    "ai.execute": "services.ai.jobs:execute_job",
    "ai.workflow": "services.ai.jobs:workflow_job",
}


def execute_job(ctx: JobContext, params: dict) -> dict:
    """An intent run as ``POST /ai/execute?mode=sync`` runs it (the same result)."""
    from services.ai import execute

    ctx.progress(0.1, f"running {params.get('intent')}", force=True)
    with job_failures():
        return execute.run(ctx.catalog, market_provider(ctx.settings), ctx.user_id, params["intent"], params["parameters"],
                           params.get("plan"))


def workflow_job(ctx: JobContext, params: dict) -> dict:
    from services.ai import workflows

    return workflows.execute_run(ctx.catalog, ArtifactStore(ctx.settings.resolved_storage_url), market_provider(ctx.settings),
                                 ctx.settings, params["run_id"], progress=ctx.progress)
