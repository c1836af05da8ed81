"""``sigma sweep run``: one large sweep as a batch job on the cluster this process joins.

What a KubeRay ``RayJob`` runs (deploy/kuberay/rayjob-sweep.yaml): the sweep is recorded in the
shared catalog exactly as ``POST /backtest_sweep`` records it (same validation, quota and job
row), and this process is its Tune driver, so its trials spread over the RayJob's own
autoscaling workers. The service sees the sweep, its progress and its leaderboard as usual;
``POST /backtest_sweep/{id}/resume`` continues it if this job dies.
"""

from __future__ import annotations

import json


def cmd_sweep_run(args) -> int:
    from sqlalchemy import select

    from cluster.catalog import User
    from cluster.config import Settings
    from cluster.jobs import create_job, execute_job
    from cluster.runtime import ensure_ray
    from cluster.catalog import prepare_catalog
    from services.lab import sweeps

    settings = Settings()
    catalog = prepare_catalog(settings)
    with catalog.session() as s:
        user = s.execute(select(User.id, User.tier).where(User.username == args.user)).first()
    if user is None:
        raise ValueError(f"--user: no user {args.user!r}")
    grid = json.loads(args.grid) if args.grid else None
    try:
        row, warnings = sweeps.create_sweep(catalog, user.id, user.tier, model_id=args.model_id, sweep=grid,
                                            risk_profile=args.risk_profile, tag=args.tag, chunk_size=args.chunk_size)
    except (LookupError, sweeps.SweepQuotaExceeded) as exc:  # InputError is already a ValueError
        raise ValueError(str(exc).strip("'\"")) from None
    job = create_job(catalog, user_id=user.id, kind="lab.sweep", params={"sweep_id": row.id},
                     queue_group="lab.sweep", queue_limit=None)
    sweeps.attach_job(catalog, row.id, job.id)
    for warning in warnings:
        print(f"warning: {warning}", flush=True)
    print(f"sweep {row.id}: {row.total_configs} configurations (job {job.id})", flush=True)
    ensure_ray(settings, address=args.address, include_dashboard=False)
    status = execute_job(job.id, settings)
    with catalog.session() as s:
        from cluster.catalog import Job

        done = s.get(Job, job.id)
        print(json.dumps({"sweep_id": row.id, "job_id": job.id, "status": status, "result": done.result,
                          "error": done.error}, indent=2, default=str))
    return 0 if status == "completed" else 1


def add_sweep_commands(subparsers) -> None:
    """Add ``sweep run`` to the ``sigma`` CLI's subparsers."""
    sweep_p = subparsers.add_parser("sweep", help="run a sweep as a batch job (a KubeRay RayJob's entrypoint)")
    sweep_sub = sweep_p.add_subparsers(dest="sweep_command", required=True)
    run_p = sweep_sub.add_parser("run", help="record a sweep for USER and drive it here until it finishes")
    run_p.add_argument("--user", required=True, help="the username that owns the sweep (and its quota)")
    run_p.add_argument("--model-id", required=True)
    run_p.add_argument("--grid", default=None, help='the sweep grid as JSON, e.g. \'{"thresholds": [0.5, 0.6]}\'')
    run_p.add_argument("--risk-profile", default=None)
    run_p.add_argument("--tag", default=None)
    run_p.add_argument("--chunk-size", type=int, default=None)
    run_p.add_argument("--address", default=None, help="join this Ray cluster (a RayJob: auto)")
    run_p.set_defaults(func=cmd_sweep_run)
