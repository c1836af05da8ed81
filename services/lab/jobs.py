"""Lab job kinds: ``lab.train`` and ``lab.backtest`` (run by ``cluster.jobs`` on Ray workers).

Each job carries the id of its catalog row (``Training`` / ``Backtest``) and fills it in; bad
input discovered on the worker (a fold that cannot be trained, a vanished matrix) becomes a
``JobFailed`` with the field it concerns, so the API shows a user-facing reason.
"""

from __future__ import annotations

from cluster.artifacts import ArtifactStore
from cluster.jobs import JobContext, JobFailed

JOB_KINDS = {
    "lab.train": "services.lab.jobs:train_job",
    "lab.backtest": "services.lab.jobs:backtest_job",
}


def _store(ctx: JobContext) -> ArtifactStore:
    return ArtifactStore(ctx.settings.resolved_storage_url)


def train_job(ctx: JobContext, params: dict) -> dict:
    from services.lab import common, training  # lazy: the job manager imports job kinds at start
    ctx.progress(0.05, "loading matrix", force=True)
    try:
        return training.run_training(ctx.catalog, _store(ctx), params["training_id"], progress=ctx.progress)
    except common.LabInputError as exc:
        raise JobFailed(str(exc), code="INVALID_PARAMETER", details={"field": exc.field, "reason": exc.reason}) from None
    except LookupError as exc:
        raise JobFailed(str(exc), code="NOT_FOUND") from None


def backtest_job(ctx: JobContext, params: dict) -> dict:
    from services.lab import backtests, common  # lazy: the job manager imports job kinds at start
    backtest_id = params["backtest_id"]
    ctx.progress(0.02, "walk-forward training", force=True)
    try:
        return backtests.run_backtest_job(ctx.catalog, _store(ctx), backtest_id, progress=ctx.progress)
    except common.LabInputError as exc:
        backtests.fail_backtest(ctx.catalog, backtest_id, str(exc))
        raise JobFailed(str(exc), code="INVALID_PARAMETER", details={"field": exc.field, "reason": exc.reason}) from None
    except LookupError as exc:
        backtests.fail_backtest(ctx.catalog, backtest_id, str(exc))
        raise JobFailed(str(exc), code="NOT_FOUND") from None
    except BaseException as exc:
        backtests.fail_backtest(ctx.catalog, backtest_id, f"{type(exc).__name__}: {exc}")
        raise

