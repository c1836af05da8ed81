"""``sigma batch run [--date YYYY-MM-DD]``: the daily batch now, on a local Ray or ``--address``."""

from __future__ import annotations

import argparse
import json


def cmd_batch_run(args) -> int:
    from services.risk.batch import run_daily_batch
    from cluster.catalog import get_catalog, upgrade_schema
    from cluster.config import Settings
    from cluster.runtime import ensure_ray

    settings = Settings()
    settings.ensure_home()
    upgrade_schema(get_catalog(settings))
    ensure_ray(settings, address=args.address, include_dashboard=False)

    def progress(fraction: float, message: str) -> None:
        print(f"  {fraction:6.1%}  {message}", flush=True)

    summary = run_daily_batch(settings, args.date, trigger="manual", progress=progress)
    print(json.dumps(summary, indent=2))
    return 0 if summary["status"] == "completed" else 1


def add_batch_commands(subparsers) -> None:
    """Add ``batch run`` to the ``sigma`` CLI's subparsers."""
    batch_p = subparsers.add_parser("batch", help="the daily batch (prices, Greeks, factors, scenarios, snapshots)")
    batch_sub = batch_p.add_subparsers(dest="batch_command", required=True)
    run_p = batch_sub.add_parser("run", help="run the daily batch now over every portfolio")
    run_p.add_argument("--date", default=None, help="session YYYY-MM-DD (default: the latest closed session)")
    run_p.add_argument("--address", default=None, help="join an existing Ray cluster instead of starting one")
    run_p.set_defaults(func=cmd_batch_run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sigma")
    add_batch_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"sigma: {exc}", flush=True)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
