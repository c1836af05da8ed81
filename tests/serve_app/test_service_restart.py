"""The whole service dies mid-work (SIGKILL of `sigma serve` and every Ray process it started,
as in a power cut) while a sweep and a training run: after a restart on the same home, both
jobs finish by themselves, with every sweep configuration stored exactly once."""

from __future__ import annotations

import time

from sqlalchemy import select

from cluster.catalog import Job, LeaderboardEntry, SweepChunk, get_catalog
from cluster.config import Settings

from serve_app.live import LiveSigma

MODEL = "MSFT_equity_5d_daily"
GRID = {"thresholds": [round(0.5 + 0.005 * i, 3) for i in range(24)], "exit_thresholds": [0.45, 0.5],
        "fees_bps": [1, 5, 10]}  # 144 configurations, one per chunk: chunks are stored ~10 a second,
# so the sweep is still storing when the training (submitted after its first chunk) starts


def _wait(fn, what, timeout=240, poll=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = fn()
        if out:
            return out
        time.sleep(poll)
    raise AssertionError(f"{what} not reached in {timeout} s")


def test_service_killed_mid_sweep_and_mid_training_finishes_both_after_restart(tmp_path):
    home = tmp_path / "home"
    first = LiveSigma(home=home, extra_env={"SIGMA_NUM_CPUS": "2", "SIGMA_INGRESS_NUM_CPUS": "0.1"})
    with first as sigma:
        h = sigma.headers
        built = sigma.http.post("/build_matrix", json={"model_id": MODEL, "start_date": "2019-01-01",
                                                       "end_date": "2024-12-31"}, headers=h)
        assert built.status_code == 200, built.text
        sweep = sigma.http.post("/backtest_sweep", json={"model_id": MODEL, "sweep": GRID, "tag": "power-cut",
                                                         "chunk_size": 1}, headers=h)
        assert sweep.status_code == 202, sweep.text
        sweep_id, total = sweep.json()["sweep_id"], sweep.json()["total_configs"]
        assert total == 144
        _wait(lambda: sigma.http.get(f"/backtest_sweep/{sweep_id}", headers=h).json()["done_configs"] >= 1,
              "a stored chunk", poll=0.05)
        train = sigma.http.post("/train", json={"model_id": MODEL, "config": {
            "model": "mlp", "hidden": [96, 96], "epochs": 60, "batch_size": 64}}, headers=h)
        assert train.status_code == 202, train.text
        train_job = train.json()["job_id"]
        _wait(lambda: sigma.http.get(f"/jobs/{train_job}", headers=h).json()["data"]["status"] == "running",
              "the training running", poll=0.02)
        sigma.kill()

    catalog = get_catalog(Settings(home=home))
    with catalog.session() as s:
        stored_before = len(s.scalars(select(SweepChunk.chunk_index).where(SweepChunk.sweep_id == sweep_id)).all())
        job_states = dict(s.execute(select(Job.id, Job.status)).all())
    assert 1 <= stored_before < total, stored_before
    assert job_states[train_job] == "running"  # nobody got to write anything else

    second = LiveSigma(home=home, password=first.password,
                       extra_env={"SIGMA_NUM_CPUS": "2", "SIGMA_INGRESS_NUM_CPUS": "0.1"})
    with second as sigma:
        h = sigma.headers
        done = _wait(lambda: (lambda v: v if v["status"] in ("completed", "failed", "cancelled") else None)(
            sigma.http.get(f"/backtest_sweep/{sweep_id}", headers=h).json()), "the sweep final")
        assert done["status"] == "completed" and done["done_configs"] == total, done
        trained = _wait(lambda: (lambda v: v if v["status"] in ("completed", "failed", "cancelled") else None)(
            sigma.http.get(f"/jobs/{train_job}", headers=h).json()["data"]), "the training final", timeout=400)
        assert trained["status"] == "completed", trained
        board = sigma.http.get("/leaderboard", params={"sweep_id": sweep_id, "limit": 1}, headers=h).json()
        assert board["total"] == total
    with catalog.session() as s:
        rows = s.scalars(select(LeaderboardEntry.config_index).where(LeaderboardEntry.sweep_id == sweep_id)).all()
        chunks = s.scalars(select(SweepChunk.chunk_index).where(SweepChunk.sweep_id == sweep_id)).all()
        attempts = dict(s.execute(select(Job.id, Job.attempts)).all())
    assert sorted(rows) == list(range(total))  # every configuration exactly once
    assert sorted(chunks) == list(range(total))
    assert attempts[train_job] == 2 and attempts[done["job_id"]] == 2
    catalog.dispose()
    print(f"restart to healthy: {second.healthy_s:.1f} s, to login: {second.login_s:.1f} s")
