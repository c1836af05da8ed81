"""Lab job kinds: ``lab.train`` and ``lab.backtest`` (run by ``cluster.jobs`` on Ray workers).

Each job carries the id of its catalog row (``Training`` / ``Backtest``) and fills it in; bad
input discovered on the worker (a fold that cannot be trained, a vanished matrix) becomes a
``JobFailed`` with the field it concerns, so the API shows a user-facing reason.
"""

from __future__ import annotations

from cluster.artifacts import ArtifactStore
from cluster.jobs import JobContext, JobFailed, job_failures

JOB_KINDS = {
    "lab.train": "services.lab.jobs:train_job",
    "lab.backtest": "services.lab.jobs:backtest_job",
}


def warm_up(settings=None) -> None:
    """Load the trainer's and the backtest's numba kernels in this worker (the job manager's
    warm-up): the first walk-forward inputs after a start train five folds at once rather than
    after seconds of cache loads. A tiny synthetic matrix; logistic and MLP trainers both."""
    import datetime as dt

    import numpy as np

    from compute.backtest import BacktestConfig, run_backtest
    from compute.features import build_matrix_from_provider
    from compute.marketdata.synthetic import SyntheticProvider
    from compute.train import TrainConfig, feature_columns, train_from_matrix

    provider = SyntheticProvider(seed=0)
    end = provider.now().date()
    frame, _ = build_matrix_from_provider(provider, "swingsigma", ["SPY"], end - dt.timedelta(days=200), end,
                                          ["close", "volume", "RSI", "MACD"])
    scores = None
    for config in (TrainConfig(epochs=1), TrainConfig(model="mlp", hidden=(4,), epochs=1)):
        scores = train_from_matrix(frame, config).score(frame[feature_columns(frame)])
    close = frame["close"].to_numpy(np.float64)
    run_backtest(close, close, np.asarray(scores, dtype=np.float64), BacktestConfig())


def _store(ctx: JobContext) -> ArtifactStore:
    return ArtifactStore(ctx.settings.resolved_storage_url)


def train_job(ctx: JobContext, params: dict) -> dict:
    from services.lab import training  # lazy: the job manager imports job kinds at start
    ctx.progress(0.05, "loading matrix", force=True)
    with job_failures():
        return training.run_training(ctx.catalog, _store(ctx), params["training_id"], progress=ctx.progress,
                                     allowed_modules=ctx.settings.model_modules)


def backtest_job(ctx: JobContext, params: dict) -> dict:
    from services.lab import backtests, common  # lazy: the job manager imports job kinds at start
    backtest_id = params["backtest_id"]
    ctx.progress(0.02, "walk-forward training", force=True)
    try:
        return backtests.run_backtest_job(ctx.catalog, _store(ctx), backtest_id, progress=ctx.progress,
                                            allowed_modules=ctx.settings.model_modules)
    except common.LabInputError as exc:
        backtests.fail_backtest(ctx.catalog, backtest_id, str(exc))
        raise JobFailed(str(exc), code="INVALID_PARAMETER", details={"field": exc.field, "reason": exc.reason}) from None
    except LookupError as exc:
        backtests.fail_backtest(ctx.catalog, backtest_id, str(exc))
        raise JobFailed(str(exc), code="NOT_FOUND") from None
    except BaseException as exc:
        backtests.fail_backtest(ctx.catalog, backtest_id, f"{type(exc).__name__}: {exc}")
        raise

