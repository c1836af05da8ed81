"""Sweeps end to end on the live Serve app: the spec's 36-configuration sweep through Ray Tune,
results checked against single walk-forward backtests and a recomputed deflated Sharpe; the
leaderboard (ranking, filters, sort_by, CSV); a killed driver keeps finished chunks and its
job starts again by itself, computing only the rest; cancel, and resume of a cancelled sweep."""

from __future__ import annotations

import csv
import io
import math
import os
import signal
import time

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.serve_app.test_api_platform import V1, assert_error

SPEC_SWEEP = {"thresholds": [0.5, 0.6, 0.7, 0.8], "allowed_hours": [[9, 10, 11], [12, 13, 14], [9, 10, 11, 12, 13, 14, 15]],
              "top_pct": [5, 10, 15]}


def _model(api, user, ticker, start="2019-01-01", end="2023-12-31"):
    h = api.headers(user)
    resp = api.http.post(f"{V1}/models", json={"template_id": "swingsigma_default", "config": {"ticker": ticker}}, headers=h)
    assert resp.status_code == 201, resp.text
    mid = resp.json()["model_id"]
    m = api.http.post(f"{V1}/build_matrix", json={"model_id": mid, "start_date": start, "end_date": end}, headers=h)
    assert m.status_code == 200, m.text
    return mid, m.json()["matrix_sha"]


def _wait_sweep(api, user, sweep_id, until=("completed", "failed", "cancelled"), timeout=180, poll=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = api.http.get(f"{V1}/backtest_sweep/{sweep_id}", headers=api.headers(user))
        assert got.status_code == 200, got.text
        body = got.json()
        if body["status"] in until:
            return body
        time.sleep(poll)
    raise AssertionError(f"sweep {sweep_id} did not reach {until}")


def _user_id(api, username):
    from cluster.catalog import User

    with api.catalog.session() as s:
        return s.scalar(select(User.id).where(User.username == username))


def test_spec_sweep_matches_single_backtests_and_ranks(api):
    user = "sweep_ann"
    h = api.headers(user)
    mid, sha = _model(api, user, "AAPL")
    assert_error(api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": {"top_pct": [60]}}, headers=h),
                 400, "INVALID_PARAMETER", field="sweep.top_pct")
    assert_error(api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": {"thresholds": [0.6], "lever": [2]}},
                               headers=h), 400, "INVALID_PARAMETER", field="sweep.lever")
    assert_error(api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": {"allowed_hours": [[9]]}}, headers=h),
                 400, "INVALID_PARAMETER", field="sweep")
    assert_error(api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": {"thresholds": [0.6], "splits": [3, 4]}},
                               headers=h), 400, "INVALID_PARAMETER", field="sweep.splits")
    assert_error(api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": SPEC_SWEEP, "risk_profile": "Wild"},
                               headers=h), 400, "INVALID_PARAMETER", field="risk_profile")
    assert_error(api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": SPEC_SWEEP}, headers=api.headers("sweep_eve")),
                 404, "NOT_FOUND")

    resp = api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "risk_profile": "Balanced", "sweep": SPEC_SWEEP,
                                                       "tag": "sweep_2024Q1"}, headers=h)
    assert resp.status_code == 202, resp.text
    started = resp.json()
    assert started["total_configs"] == 36 and started["tag"] == "sweep_2024Q1" and started["progress"] == 0
    assert started["status"] in ("running", "queued") and started["sweep_id"].startswith("sweep_")
    assert any("[12, 13, 14]" in w for w in started["warnings"])  # daily bars carry hour 9
    done = _wait_sweep(api, user, started["sweep_id"])
    assert done["status"] == "completed", (done["error"], done)
    assert done["done_configs"] == 36 and done["progress"] == 1.0 and done["best"]["config"]
    assert_error(api.http.get(f"{V1}/backtest_sweep/{started['sweep_id']}", headers=api.headers("sweep_eve")), 404, "NOT_FOUND")
    api.wait_job(done["job_id"], user)  # the job records its result just after the sweep turns final
    job = api.http.get(f"{V1}/jobs/{done['job_id']}/result", headers=h).json()["data"]["result"]
    assert job["chunks_skipped"] == 0 and job["done_configs"] == 36
    assert job["max_concurrent_trials"] == 1  # one node here

    board = api.http.get(f"{V1}/leaderboard", params={"tag": "sweep_2024Q1", "limit": 100}, headers=h).json()
    items = board["items"]
    assert board["total"] == 36 and [i["rank"] for i in items] == list(range(1, 37))
    assert done["best"]["result_id"] == items[0]["result_id"]
    # ranked: gate passes first, then the post-gate ranking score (descending)
    keys = [(i["gate"]["pass"], -math.inf if i["score"] is None else i["score"]) for i in items]
    assert keys == sorted(keys, key=lambda k: (not k[0], -k[1]))
    for item in items:
        assert set(item["metrics"]) >= {"sharpe", "cum_ret", "max_drawdown", "win_rate", "trades", "deflated_sharpe"}
        assert item["model_id"] == mid and item["pack_id"] == "swingsigma" and item["sweep_id"] == started["sweep_id"]
    # configurations that cannot trade on daily bars have no trades
    assert all(i["metrics"]["trades"] == 0 for i in items if i["config"]["allowed_hours"] == [12, 13, 14])
    assert {(i["config"]["threshold"], i["config"]["top_pct"], tuple(i["config"]["allowed_hours"])) for i in items} == {
        (t, p / 100, tuple(hs)) for t in SPEC_SWEEP["thresholds"] for p in SPEC_SWEEP["top_pct"] for hs in SPEC_SWEEP["allowed_hours"]}

    # independent check: each configuration equals the single walk-forward backtest of it
    from cluster.artifacts import ArtifactStore
    from services.lab import backtests
    from services.lab.inputs import model_inputs
    inputs = model_inputs(api.catalog, ArtifactStore(api.settings.resolved_storage_url), _user_id(api, user), mid, sha,
                                  risk_profile="Balanced")
    traded = [i for i in items if i["metrics"]["trades"]]
    assert len(traded) >= 6
    for item in traded[:3] + traded[-2:]:
        single = backtests.walk_forward_from_inputs(inputs, item["config"]).metrics
        for key in ("sharpe", "cum_return", "max_drawdown", "trades", "win_rate", "turnover"):
            assert item["metrics"][key] == pytest.approx(single[key], rel=1e-9, abs=1e-12), key

    # the deflated Sharpe accounts for all 36 configurations tried
    from compute import stats

    sharpe = np.array([np.nan if i["metrics"]["sharpe"] is None else i["metrics"]["sharpe"] for i in items])
    finite = np.isfinite(sharpe)
    variance = float(np.var(sharpe[finite], ddof=1))
    best = next(i for i in items if i["metrics"]["sharpe"] is not None)
    m = best["metrics"]
    expected = stats.deflated_sharpe_ratio(m["sharpe"], 36, m["n_bars"], m["skew"], m["kurtosis"], variance,
                                           periods_per_year=inputs.periods_per_year)
    assert m["deflated_sharpe"] == pytest.approx(expected, rel=1e-9)
    psr0 = stats.probabilistic_sharpe_ratio(m["sharpe"], 0.0, m["n_bars"], m["skew"], m["kurtosis"], inputs.periods_per_year)
    assert m["deflated_sharpe"] < psr0  # deflating for 36 trials can only lower it

    by_sortino = api.http.get(f"{V1}/leaderboard", params={"tag": "sweep_2024Q1", "sort_by": "sortino", "limit": 5,
                                                            "offset": 2}, headers=h).json()
    vals = [i["metrics"]["sortino"] for i in by_sortino["items"]]
    assert [i["rank"] for i in by_sortino["items"]] == [3, 4, 5, 6, 7]
    assert vals == sorted(vals, reverse=True)
    asc = api.http.get(f"{V1}/leaderboard", params={"tag": "sweep_2024Q1", "sort_by": "max_drawdown", "order": "asc"},
                       headers=h).json()["items"]
    dd = [i["metrics"]["max_drawdown"] for i in asc if i["metrics"]["max_drawdown"] is not None]
    assert dd == sorted(dd)
    passing = api.http.get(f"{V1}/leaderboard", params={"tag": "sweep_2024Q1", "pass_gate": "true"}, headers=h).json()
    assert passing["total"] == sum(i["gate"]["pass"] for i in items)
    assert all(i["gate"]["pass"] for i in passing["items"])
    assert all(not i["gate"]["pass"] and i["gate"]["reasons"] for i in
               api.http.get(f"{V1}/leaderboard", params={"tag": "sweep_2024Q1", "pass_gate": "false"}, headers=h).json()["items"])
    assert api.http.get(f"{V1}/leaderboard", params={"tag": "sweep_2024Q1"}, headers=api.headers("sweep_eve")).json()["total"] == 0
    assert_error(api.http.get(f"{V1}/leaderboard", params={"sort_by": "luck"}, headers=h), 400, "INVALID_PARAMETER", field="sort_by")

    csv_resp = api.http.get(f"{V1}/export/leaderboard", params={"tag": "sweep_2024Q1", "format": "csv"}, headers=h)
    assert csv_resp.status_code == 200 and csv_resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_resp.text)))
    assert len(rows) == 36 and [r["result_id"] for r in rows] == [i["result_id"] for i in items]
    assert float(rows[0]["sharpe"]) == pytest.approx(items[0]["metrics"]["sharpe"])
    assert_error(api.http.get(f"{V1}/export/leaderboard", params={"tag": "sweep_2024Q1", "format": "xlsx"}, headers=h),
                 400, "INVALID_PARAMETER", field="format")

    # no grid: the pack's default grid (swingsigma: 5 thresholds x 2 top_pct)
    from compute.packs import get_pack

    resp = api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "tag": "defaults"}, headers=h)
    assert resp.status_code == 202, resp.text
    assert resp.json()["total_configs"] == 10
    state = api.http.get(f"{V1}/backtest_sweep/{resp.json()['sweep_id']}", headers=h).json()
    defaults = get_pack("swingsigma").sweep
    assert state["grid"]["thresholds"] == list(defaults.thresholds) and state["grid"]["top_pct"] == list(defaults.top_pct)
    # (stopped at once, unless it already finished: the grid is small)
    assert api.http.post(f"{V1}/backtest_sweep/{state['sweep_id']}/cancel", headers=h).status_code in (200, 409)
    assert _wait_sweep(api, user, state["sweep_id"])["status"] in ("cancelled", "completed")


def test_options_pack_sweep_ranks_priced_0dte_pnl(api):
    # A zerosigma (0DTE) sweep executes every configuration with contracts priced along the
    # path, exactly as POST /backtest does for the pack, and ranks that P&L (fold Sharpe spread
    # included), not the underlying's.
    user = "sweep_zed"
    h = api.headers(user)
    resp = api.http.post(f"{V1}/models", json={"template_id": "zerosigma_default", "config": {"ticker": "SPY"}}, headers=h)
    assert resp.status_code == 201, resp.text
    mid = resp.json()["model_id"]
    m = api.http.post(f"{V1}/build_matrix", json={"model_id": mid, "start_date": "2024-01-02", "end_date": "2024-03-28"},
                      headers=h)
    assert m.status_code == 200, m.text
    grid = {"thresholds": [0.5, 0.52, 0.55], "allowed_hours": [[10, 11, 12, 13, 14, 15], [13, 14, 15]], "splits": 4}
    resp = api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": grid, "tag": "zed"}, headers=h)
    assert resp.status_code == 202, resp.text
    done = _wait_sweep(api, user, resp.json()["sweep_id"])
    assert done["status"] == "completed", (done["error"], done)
    items = api.http.get(f"{V1}/leaderboard", params={"tag": "zed"}, headers=h).json()["items"]
    assert len(items) == 6 and all(i["pack_id"] == "zerosigma" for i in items)
    traded = [i for i in items if i["metrics"]["trades"]]
    assert len(traded) >= 2
    from cluster.artifacts import ArtifactStore
    from services.lab import backtests
    from services.lab.inputs import model_inputs
    inputs = model_inputs(api.catalog, ArtifactStore(api.settings.resolved_storage_url), _user_id(api, user), mid,
                                  n_splits=4, risk_profile=items[0]["risk_profile"])
    assert inputs.is_options
    for item in traded[:2]:
        single = backtests.walk_forward_from_inputs(inputs, item["config"]).metrics
        assert single["sharpe"] != pytest.approx(single["underlying_sharpe"])  # options P&L differs
        for key in ("sharpe", "cum_return", "max_drawdown", "trades", "win_rate", "es_95", "fold_sharpe_std"):
            assert item["metrics"][key] == pytest.approx(single[key], rel=1e-9, abs=1e-12), key


# PostgreSQL here; the whole-service power cut (tests/serve_app/test_service_restart.py) covers
# resuming on SQLite
@pytest.mark.postgresql_only
def test_killed_driver_keeps_chunks_and_the_job_resumes_by_itself(api):
    from cluster.catalog import Job, LeaderboardEntry, Sweep, SweepChunk

    user = "sweep_kim"
    h = api.headers(user)
    mid, _ = _model(api, user, "MSFT", start="2020-01-01")
    grid = {"thresholds": [round(0.5 + 0.005 * i, 3) for i in range(40)], "exit_thresholds": [0.45, 0.5],
            "fees_bps": [1, 5, 10]}
    resp = api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": grid, "tag": "kill", "chunk_size": 6},
                         headers=h)
    assert resp.status_code == 202, resp.text
    sweep_id, total = resp.json()["sweep_id"], resp.json()["total_configs"]
    assert total == 240  # 40 entries x 2 exits x 3 fee levels (every exit <= its entry)
    deadline = time.monotonic() + 120
    while True:
        view = api.http.get(f"{V1}/backtest_sweep/{sweep_id}", headers=h).json()
        if view["done_configs"] >= 12:
            break
        assert view["status"] in ("queued", "running") and time.monotonic() < deadline, view
        time.sleep(0.05)
    with api.catalog.session() as s:
        pid = s.get(Sweep, sweep_id).grid["runs"][-1]["driver_pid"]
    with api.catalog.session() as s:
        job_id = s.get(Sweep, sweep_id).job_id
    os.kill(pid, signal.SIGKILL)  # the Tune driver's worker dies (its trials go with it)
    deadline = time.monotonic() + 60
    while True:  # the manager sees the death and queues the job again (it waits 2 s to restart it)
        with api.catalog.session() as s:
            job = s.get(Job, job_id)
            status, message = job.status, job.message
            kept = {c.chunk_index: c.created_at for c in s.scalars(select(SweepChunk).where(SweepChunk.sweep_id == sweep_id))}
            kept_rows = dict(s.execute(select(LeaderboardEntry.config_index, LeaderboardEntry.id)
                                       .where(LeaderboardEntry.sweep_id == sweep_id)).all())
        if status == "queued":
            break
        assert status == "running" and time.monotonic() < deadline, (status, message)
        time.sleep(0.05)
    assert "starting again (run 2 of 3)" in message, message
    assert kept and len(kept) < 40
    assert sorted(kept_rows) == sorted(i for c in kept for i in range(6 * c, 6 * c + 6))

    # nobody resumes it: the job starts again by itself and computes only the missing chunks
    done = _wait_sweep(api, user, sweep_id)
    assert done["status"] == "completed" and done["done_configs"] == total, (done["error"], done)
    assert done["job_id"] == job_id
    # the killed driver's trial placement groups did not outlive it (Ray keeps a dead task's)
    from ray.util.placement_group import placement_group_table

    from tuning.sweep import trial_group_prefix

    deadline = time.monotonic() + 30
    while True:
        held = [info["name"] for info in placement_group_table().values()
                if info["name"].startswith(trial_group_prefix(sweep_id)) and info["state"] != "REMOVED"]
        if not held or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert held == []
    api.wait_job(job_id, user)  # the job records its result just after the sweep turns final
    result = api.http.get(f"{V1}/jobs/{job_id}/result", headers=h).json()["data"]["result"]
    # a trial of the dead driver may still have stored a chunk after the snapshot above
    assert result["chunks_skipped"] >= len(kept) and result["chunks_run"] == 40 - result["chunks_skipped"]
    with api.catalog.session() as s:
        assert s.get(Job, job_id).attempts == 2
        chunks = {c.chunk_index: c.created_at for c in s.scalars(select(SweepChunk).where(SweepChunk.sweep_id == sweep_id))}
        rows = dict(s.execute(select(LeaderboardEntry.config_index, LeaderboardEntry.id)
                              .where(LeaderboardEntry.sweep_id == sweep_id)).all())
        n_rows = s.scalar(select(func.count()).select_from(LeaderboardEntry).where(LeaderboardEntry.sweep_id == sweep_id))
    assert sorted(chunks) == list(range(40)) and all(chunks[c] == kept[c] for c in kept)  # not recomputed
    assert sorted(rows) == list(range(total)) and n_rows == total  # every configuration exactly once
    assert all(rows[i] == kept_rows[i] for i in kept_rows)
    assert_error(api.http.post(f"{V1}/backtest_sweep/{sweep_id}/resume", headers=h), 409, "CONFLICT", field="sweep_id")

    # cancel: a running sweep stops, what finished stays on the leaderboard
    big = {**grid, "fees_bps": [1, 2, 5, 10]}
    resp = api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": big, "tag": "cancel", "chunk_size": 4},
                         headers=h)
    sweep2 = resp.json()["sweep_id"]
    _wait_sweep(api, user, sweep2, until=("running",), poll=0.05)
    cancelled = api.http.post(f"{V1}/backtest_sweep/{sweep2}/cancel", headers=h)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    with api.catalog.session() as s:
        job_id = s.get(Sweep, sweep2).job_id
    api.wait_job(job_id, user)
    time.sleep(1.0)
    final = _wait_sweep(api, user, sweep2)
    assert final["status"] == "cancelled" and final["done_configs"] < final["total_configs"]
    board = api.http.get(f"{V1}/leaderboard", params={"sweep_id": sweep2}, headers=h).json()
    assert board["total"] == final["done_configs"]
    with api.catalog.session() as s:
        assert s.get(Job, job_id).status == "cancelled"
    # a cancelled sweep resumes by hand: only what is missing runs
    resumed = api.http.post(f"{V1}/backtest_sweep/{sweep2}/resume", headers=h)
    assert resumed.status_code == 202, resumed.text
    done2 = _wait_sweep(api, user, sweep2)
    assert done2["status"] == "completed" and done2["done_configs"] == done2["total_configs"], done2
    with api.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(LeaderboardEntry)
                        .where(LeaderboardEntry.sweep_id == sweep2)) == done2["total_configs"]


def test_trial_concurrency_respects_the_tier():
    # one trial per node at most, never more than the tier's concurrent backtests (docs/spec/reference.md)
    from cluster.config import Settings
    from tuning.sweep import trial_concurrency

    limits = Settings().tier_limits()
    per_tier = {tier: limits[tier]["concurrent_backtests"] for tier in ("free", "basic", "pro", "enterprise")}
    assert per_tier == {"free": 1, "basic": 5, "pro": 20, "enterprise": None}
    assert [trial_concurrency(per_tier[t], 8) for t in ("free", "basic", "pro", "enterprise")] == [1, 5, 8, 8]
    assert [trial_concurrency(per_tier[t], 32) for t in ("free", "basic", "pro", "enterprise")] == [1, 5, 20, 32]
    assert trial_concurrency(per_tier["pro"], 0) == 1


def test_trial_resources_are_custom_resources_that_pick_the_nodes(ray_session, monkeypatch):
    # SIGMA_TRIAL_RESOURCES: custom resources only, positive amounts; trials count the alive
    # nodes that offer them (this session's one node offers none, so a sweep asking for one
    # would fail at once with NO_TRIAL_NODES instead of waiting for ever)
    import pydantic

    from cluster.config import Settings
    from tuning.sweep import trial_nodes

    monkeypatch.setenv("SIGMA_TRIAL_RESOURCES", '{"sigma_trials": 1}')
    assert Settings().trial_resources == {"sigma_trials": 1.0}
    for bad, word in (('{"CPU": 1}', "not a custom resource"), ('{"sigma_trials": 0}', "positive"),
                      ('["sigma_trials"]', "trial_resources")):
        monkeypatch.setenv("SIGMA_TRIAL_RESOURCES", bad)
        with pytest.raises(pydantic.ValidationError, match=word):
            Settings()
    assert trial_nodes({}) == 1
    assert trial_nodes({"sigma_trials": 1}) == 0
    assert trial_nodes({"CPU": 0.5}) == 1  # what the node has decides, not the name


def test_a_dead_drivers_trial_groups_are_released(ray_session):
    """Ray keeps the placement groups a task made when that task's worker dies (a sweep's
    driver on a lost node): ``driver_lost`` (the job manager's hook) removes that sweep's, and
    no other sweep's."""
    import os

    import ray
    from ray.util.placement_group import placement_group_table, remove_placement_group

    from tuning.sweep import _trial_groups_class, driver_lost, release_stranded_trial_groups, trial_group_prefix

    @ray.remote(num_cpus=0, max_retries=0)
    def dying_driver(sweep_id):
        groups = _trial_groups_class()([{"CPU": 0.01}], trial_group_prefix(sweep_id))
        ray.get([groups.to_placement_group().ready() for _ in range(2)])  # two groups, two names
        os._exit(1)

    def live(sweep_id):
        return sorted(info["name"] for info in placement_group_table().values()
                      if info["name"].startswith(trial_group_prefix(sweep_id)) and info["state"] != "REMOVED")

    other = _trial_groups_class()([{"CPU": 0.01}], trial_group_prefix("sw_running")).to_placement_group()
    ray.get(other.ready())
    try:
        with pytest.raises(ray.exceptions.RayError):
            ray.get(dying_driver.remote("sw_lost"))
        left = live("sw_lost")
        assert len(left) == 2 and left[0] != left[1]  # Ray kept both, each under its own name
        driver_lost({"sweep_id": "sw_lost"})
        assert live("sw_lost") == []
        assert len(live("sw_running")) == 1  # another sweep's groups are left alone
        assert release_stranded_trial_groups("sw_lost") == 0
    finally:
        remove_placement_group(other)


def test_single_chunk_on_the_warm_runner_equals_many_chunks_on_tune(api):
    """A one-chunk sweep runs on the warm ChunkRunner, a many-chunk one on Ray Tune: the same
    grid gives the same rows either way (every configuration evaluated exactly once)."""
    from cluster.catalog import LeaderboardEntry

    user = "sweep_wes"
    h = api.headers(user)
    mid, _ = _model(api, user, "JPM", start="2020-01-01")
    grid = {"thresholds": [0.5, 0.55, 0.6, 0.65], "exit_thresholds": [0.45, 0.5], "fees_bps": [1, 5]}
    runs = {}
    for tag, chunk_size in (("warm", None), ("tune", 4)):
        body = {"model_id": mid, "sweep": grid, "tag": tag, **({"chunk_size": chunk_size} if chunk_size else {})}
        resp = api.http.post(f"{V1}/backtest_sweep", json=body, headers=h)
        assert resp.status_code == 202, resp.text
        done = _wait_sweep(api, user, resp.json()["sweep_id"])
        assert done["status"] == "completed" and done["done_configs"] == done["total_configs"] == 16, done
        api.wait_job(done["job_id"], user)  # the job records its result just after the sweep turns final
        result = api.http.get(f"{V1}/jobs/{done['job_id']}/result", headers=h).json()["data"]["result"]
        runs[tag] = (done["sweep_id"], result)
    warm, tune = runs["warm"][1], runs["tune"][1]
    assert warm["chunks"] == 1 and "warm_runner_s" in warm["timings"] and "tune_s" not in warm["timings"]
    assert tune["chunks"] == 4 and "tune_s" in tune["timings"] and "warm_runner_s" not in tune["timings"]
    with api.catalog.session() as s:
        rows = {tag: {r.config_index: r for r in s.scalars(select(LeaderboardEntry)
                                                              .where(LeaderboardEntry.sweep_id == sweep_id))}
                for tag, (sweep_id, _) in runs.items()}
    assert sorted(rows["warm"]) == sorted(rows["tune"]) == list(range(16))
    for i, row in rows["warm"].items():
        other = rows["tune"][i]
        assert row.config == other.config and row.gate_pass == other.gate_pass
        for key in ("sharpe", "cum_ret", "max_drawdown", "trades", "deflated_sharpe"):
            a, b = getattr(row, key), getattr(other, key)
            assert (a is None and b is None) or a == pytest.approx(b, rel=1e-12, abs=1e-15), (i, key)
