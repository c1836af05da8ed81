"""Scale-out figures (issue 17): leaderboard writes per second on PostgreSQL under 1-8
concurrent chunk writers, through the real ``store_chunk`` transaction (chunk marker, one
``LeaderboardEntry`` per configuration, the sweep's progress and best), each writer its own
process, as Tune trials on different nodes are.

    .venv/bin/python benchmarks/scale.py            # SIGMA_TEST_PG overrides the database URL

JSON lines (benchmarks/_common.emit). The peer in the same run: the same rows by a plain SQLAlchemy
multi-row INSERT, one writer (``leaderboard_plain_insert_peer``). The fixed cost per chunk (one transaction) and the cost per
row are fitted from two chunk sizes, for docs/scaling.md's model.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import cpu_model, emit  # noqa: E402

PG = os.environ.get("SIGMA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _rows(meta, start: int, n: int) -> list[dict]:
    from cluster.catalog.models import new_id, utcnow

    now = utcnow()
    metrics = {"sharpe": 1.1, "cum_ret": 0.2, "max_drawdown": -0.1, "win_rate": 0.55, "trades": 40}
    return [{"id": new_id("res"), "user_id": meta.user_id, "model_pk": meta.model_pk, "model_id": meta.model_id,
             "pack_id": meta.pack_id, "backtest_id": None, "sweep_id": meta.sweep_id, "config_index": start + j,
             "tag": None, "risk_profile": meta.risk_profile, "config": {"threshold": 0.5 + j * 1e-6},
             "metrics": metrics, "gate_pass": True, "gate_reasons": [], "score": 1.0 + j * 1e-6, "sharpe": 1.1,
             "deflated_sharpe": 0.9, "cum_ret": 0.2, "max_drawdown": -0.1, "win_rate": 0.55, "trades": 40,
             "created_at": now} for j in range(n)]


def _writer(url: str, meta, chunks: list[int], chunk_size: int, start_at: float, out) -> None:
    from cluster.catalog import Catalog
    from services.lab.sweeps import store_chunk

    catalog = Catalog(url)
    batches = [(c, _rows(meta, c * chunk_size, chunk_size)) for c in chunks]
    while time.time() < start_at:
        time.sleep(0.005)
    t0 = time.perf_counter()
    for c, rows in batches:
        assert store_chunk(catalog, meta, c, rows, 1.0)
    out.put(time.perf_counter() - t0)
    catalog.dispose()


def _setup(url: str, total: int):
    from cluster.catalog import Catalog, Sweep, upgrade_schema
    from services.lab.models import create_model
    from services.lab.sweeps import SweepMeta
    from serve_app.users import create_user

    catalog = Catalog(url)
    upgrade_schema(catalog)
    user = create_user(catalog, f"bench_{secrets.token_hex(3)}", "bench-password-1", tier="pro")
    model = create_model(catalog, user.id, "swingsigma_default", config={"ticker": "AAPL"})
    with catalog.session() as s:
        row = Sweep(user_id=user.id, model_pk=model.id, risk_profile="Balanced", tag=None, grid={"spec": {}},
                    total_configs=total, done_configs=0, status="running")
        s.add(row)
        s.flush()
        sweep_id = row.id
    meta = SweepMeta(sweep_id=sweep_id, user_id=user.id, model_pk=model.id, model_id=model.model_id,
                     pack_id=model.pack_id, tag=None, risk_profile="Balanced", n_trials=total, splits=5, embargo=None,
                     settings_json="{}")
    return catalog, meta


def run(url: str, writers: int, chunks_per_writer: int, chunk_size: int) -> dict:
    from sqlalchemy import func, select

    from cluster.catalog import LeaderboardEntry

    total = writers * chunks_per_writer * chunk_size
    catalog, meta = _setup(url, total)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 3.0 + writers  # every writer has built its rows and connected
    procs = [ctx.Process(target=_writer, args=(url, meta, list(range(w, writers * chunks_per_writer, writers)),
                                                chunk_size, start_at, out)) for w in range(writers)]
    for p in procs:
        p.start()
    seconds = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    with catalog.session() as s:
        stored = s.scalar(select(func.count()).select_from(LeaderboardEntry).where(LeaderboardEntry.sweep_id == meta.sweep_id))
    catalog.dispose()
    assert stored == total, (stored, total)
    wall = max(seconds)
    return {"rows": total, "seconds": wall, "rows_per_s": total / wall, "chunks_per_s": writers * chunks_per_writer / wall}


def _insert_peer(url: str, rows_n: int, chunk_size: int) -> float:
    """The peer in the same run: the same rows by a plain SQLAlchemy multi-row INSERT (what
    ``store_chunk`` did before COPY), one transaction per chunk, no progress or best; rows/s."""
    from sqlalchemy import insert

    from cluster.catalog import LeaderboardEntry

    catalog, meta = _setup(url, rows_n)
    batches = [_rows(meta, c * chunk_size, chunk_size) for c in range(rows_n // chunk_size)]
    t0 = time.perf_counter()
    for rows in batches:
        with catalog.session() as s:
            s.execute(insert(LeaderboardEntry), rows)
    seconds = time.perf_counter() - t0
    catalog.dispose()
    return rows_n / seconds


def main() -> None:
    import psycopg

    schema = f"sigma_bench_{secrets.token_hex(4)}"
    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{PG}?options=-csearch_path%3D{schema}"
    try:
        cpu = cpu_model()
        for chunk_size in (10_000, 1000):
            peer = _insert_peer(url, 4 * chunk_size, chunk_size)
            emit("scale", "leaderboard_plain_insert_peer", round(peer), "rows/s", 4 * chunk_size, writers=1,
                 chunk_size=chunk_size, cpu=cpu, cores=os.cpu_count())
        for chunk_size in (10_000, 1000, 100):
            for writers in (1, 2, 4, 8):
                r = run(url, writers, chunks_per_writer=max(2, (4 if chunk_size >= 10_000 else 16) // writers),
                        chunk_size=chunk_size)
                emit("scale", "leaderboard_writes_postgresql", round(r["rows_per_s"]), "rows/s", r["rows"],
                     writers=writers, chunk_size=chunk_size, chunks_per_s=round(r["chunks_per_s"], 1),
                     seconds=round(r["seconds"], 3), cpu=cpu, cores=os.cpu_count())
    finally:
        with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres", autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    main()
