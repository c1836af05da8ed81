"""A sweep chunk's one transaction (``store_chunk``): rows through PostgreSQL's COPY (an insert
on SQLite) stored exactly as an INSERT stores them, the sweep's best kept equal to the
leaderboard's own ranking in SQL, a retried chunk or a clashing row writes nothing."""

from __future__ import annotations

import random

from sqlalchemy import func, select


def _sweep(catalog):
    from cluster.catalog import Sweep
    from serve_app.users import create_user
    from services.lab.models import create_model
    from services.lab.sweeps import SweepMeta

    user = create_user(catalog, "chunk_chen", "a-long-enough-password-1", tier="pro")
    model = create_model(catalog, user.id, "swingsigma_default", config={"ticker": "AAPL"})
    with catalog.session() as s:
        row = Sweep(user_id=user.id, model_pk=model.id, risk_profile="Balanced", tag="t", grid={"spec": {}},
                    total_configs=200, done_configs=0, status="running")
        s.add(row)
        s.flush()
        sweep_id = row.id
    return SweepMeta(sweep_id=sweep_id, user_id=user.id, model_pk=model.id, model_id=model.model_id,
                     pack_id=model.pack_id, tag="t", risk_profile="Balanced", n_trials=200, splits=5, embargo=None,
                     settings_json="{}")


def _rows(meta, start, n, rng):
    from cluster.catalog.models import new_id, utcnow

    rows = []
    for j in range(n):
        sharpe = None if rng.random() < 0.1 else round(rng.uniform(-1, 3), 6)
        score = None if rng.random() < 0.1 else round(rng.uniform(-1, 3), 6)
        rows.append({"id": new_id("res"), "user_id": meta.user_id, "model_pk": meta.model_pk, "model_id": meta.model_id,
                     "pack_id": meta.pack_id, "backtest_id": None, "sweep_id": meta.sweep_id, "config_index": start + j,
                     "tag": meta.tag, "risk_profile": meta.risk_profile,
                     "config": {"threshold": 0.5 + j / 1000, "allowed_hours": [9, 10], "name": "z \"quoted\" \\ tab\t"},
                     "metrics": {"sharpe": sharpe, "cum_ret": 0.1, "trades": 12, "nested": {"a": [1, None]}},
                     "gate_pass": rng.random() < 0.3, "gate_reasons": ["max_drawdown"] if rng.random() < 0.5 else [],
                     "score": score, "sharpe": sharpe, "deflated_sharpe": 0.5, "cum_ret": 0.1, "max_drawdown": -0.2,
                     "win_rate": 0.5, "trades": 12, "created_at": utcnow()})
    return rows


def test_chunks_store_their_rows_and_keep_the_best_as_sql_ranks_it(catalog):
    from cluster.catalog import LeaderboardEntry, Sweep, SweepChunk
    from services.lab.leaderboard import best_entry
    from services.lab.sweeps import store_chunk

    meta = _sweep(catalog)
    rng = random.Random(3)
    written = []
    for chunk in range(4):
        rows = _rows(meta, 50 * chunk, 50, rng)
        written += rows
        assert store_chunk(catalog, meta, chunk, rows, 12.5)
        with catalog.session() as s:
            sweep = s.get(Sweep, meta.sweep_id)
            assert sweep.done_configs == 50 * (chunk + 1)
            assert sweep.best == best_entry(s, meta.sweep_id)  # SQL's ORDER BY over every stored row
    # a retried chunk writes nothing; a chunk clashing with a stored row writes nothing at all
    assert not store_chunk(catalog, meta, 1, _rows(meta, 50, 50, rng), 1.0)
    clash = _rows(meta, 200, 10, rng)
    clash[-1]["config_index"] = 3
    assert not store_chunk(catalog, meta, 4, clash, 1.0)
    with catalog.session() as s:
        assert s.get(SweepChunk, (meta.sweep_id, 4)) is None
        assert s.scalar(select(func.count()).select_from(LeaderboardEntry)
                        .where(LeaderboardEntry.sweep_id == meta.sweep_id)) == 200
        assert s.get(Sweep, meta.sweep_id).done_configs == 200
        stored = {r.id: r for r in s.scalars(select(LeaderboardEntry).where(LeaderboardEntry.sweep_id == meta.sweep_id))}
    # every value as it went in: JSON (quotes, backslashes, tabs, nulls), floats, time stamps
    for row in written:
        got = stored[row["id"]]
        for column, value in row.items():
            assert getattr(got, column) == value, (column, getattr(got, column), value)


def test_concurrent_writers_of_one_sweep_never_deadlock(catalog):
    """Trials on several nodes store chunks of one sweep at once: every chunk lands once and the
    progress and best add up (a FOR UPDATE on the sweep row deadlocked against the rows' foreign
    key locks of a concurrent writer; seen with 2 writers in benchmarks/scale.py)."""
    from concurrent.futures import ThreadPoolExecutor

    from cluster.catalog import Sweep
    from services.lab.leaderboard import best_entry
    from services.lab.sweeps import store_chunk

    meta = _sweep(catalog)
    chunks = [_rows(meta, 20 * c, 20, random.Random(c)) for c in range(10)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        stored = list(pool.map(lambda c: store_chunk(catalog, meta, c, chunks[c], 1.0), range(10)))
    assert stored == [True] * 10
    with catalog.session() as s:
        sweep = s.get(Sweep, meta.sweep_id)
        assert sweep.done_configs == 200
        assert sweep.best == best_entry(s, meta.sweep_id)


def test_a_superseded_driver_leaves_the_resumed_sweep_alone(catalog):
    """A driver cancelled, then resumed by another job while it still wound down: its final
    pass writes nothing (the resumed run's status stays), the current driver's does."""
    from cluster.catalog import Sweep
    from services.lab.sweeps import finalize_sweep

    meta = _sweep(catalog)
    with catalog.session() as s:
        s.get(Sweep, meta.sweep_id).job_id = "job_resumed"
    late = finalize_sweep(catalog, meta.sweep_id, 252.0, "cancelled", job_id="job_cancelled")
    assert late["superseded"] and late["status"] == "running"
    with catalog.session() as s:
        row = s.get(Sweep, meta.sweep_id)
        assert (row.status, row.finished_at) == ("running", None)
    done = finalize_sweep(catalog, meta.sweep_id, 252.0, "completed", job_id="job_resumed")
    assert not done.get("superseded") and done["status"] == "completed"
    with catalog.session() as s:
        assert s.get(Sweep, meta.sweep_id).status == "completed"
