"""Starting jobs from routes: a catalog row first (nothing is lost), then the manager runs it."""

from __future__ import annotations

from cluster.catalog import Job
from cluster.jobs import create_job
from serve_app.deps import Caller
from serve_app.errors import ApiError
from serve_app.state import AppState


async def start_job(
    state: AppState,
    caller: Caller,
    kind: str,
    params: dict,
    *,
    estimated_duration_ms: int | None = None,
    queue_group: str = "default",
    queue_limit: int | None = None,
) -> tuple[Job, int]:
    """Create and submit a job; returns it with its queue position (0 = starting now)."""
    if state.job_manager is None:
        raise ApiError(503, "UNAVAILABLE", "job workers are not running on this server")
    job = create_job(
        state.catalog,
        user_id=caller.id,
        kind=kind,
        params=params,
        estimated_duration_ms=estimated_duration_ms,
        queue_group=queue_group,
        queue_limit=queue_limit,
    )
    position = await state.job_manager.submit.remote(job.id, caller.id, queue_group, queue_limit)
    return job, position
