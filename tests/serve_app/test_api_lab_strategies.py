"""POST /backtest with a built-in strategy or the user's own signal (issue 16): the model's
ticker and matrix bars, the same engine, metrics, gate, leaderboard row, CSV export and
series; a signal that does not line up with the bars is a 400 naming the row."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.serve_app.test_api_lab import _backtest, _create, _csv
from tests.serve_app.test_api_platform import V1, assert_error
from tests.serve_app.test_api_sweeps import _wait_sweep


@pytest.mark.postgresql_only  # the engine and its strategies are the subject, not the catalog back end
def test_strategy_and_signal_backtests_through_the_api(api):
    user = "lab_research"
    h = api.headers(user)
    mid = _create(api, user, "swingsigma_default", {"ticker": "MSFT"})["model_id"]
    m = api.http.post(f"{V1}/build_matrix", json={"model_id": mid, "start_date": "2022-01-01",
                                                   "end_date": "2023-12-31"}, headers=h)
    assert m.status_code == 200, m.text
    sha = m.json()["matrix_sha"]

    # a built-in strategy: no training needed
    bt = _backtest(api, user, {"model_id": mid, "matrix_sha": sha, "config": {"long_only": True},
                               "strategy": {"name": "zscore", "params": {"window": 10, "entry": 1.0, "exit": 0.0}}})
    assert bt["status"] == "completed" and bt["config"]["strategy"]["params"] == {"window": 10, "entry": 1.0, "exit": 0.0}
    metrics = bt["metrics"]
    assert metrics["trades"] > 0 and "open_trade" in metrics and isinstance(bt["gate"]["pass"], bool)
    rows = _csv(api, user, bt["backtest_id"])
    closed = [r for r in rows if r[1] == "SELL"]
    assert len(closed) == metrics["trades"]  # long-only: one SELL per closed trade
    board = api.http.get(f"{V1}/leaderboard", params={"model_id": mid}, headers=h).json()
    row = next(r for r in board["items"] if r["backtest_id"] == bt["backtest_id"])
    assert row["config"]["strategy"]["name"] == "zscore" and row["metrics"]["trades"] == metrics["trades"]

    # a sweep of the strategy's parameters (chunked, on Ray Tune), holding limits included:
    # each row equals the single backtest of its parameters
    grid = {"window": [10, 20], "entry": [1.0, 2.0], "exit": [0.0, 0.5], "max_hold": [0, 3]}
    resp = api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "matrix_sha": sha, "tag": "zs_research",
                                                       "chunk_size": 6,  # 3 chunks: Ray Tune trials
                                                       "sweep": {"long_only": True,
                                                                 "strategy": {"name": "zscore", "grid": grid}}}, headers=h)
    assert resp.status_code == 202, resp.text
    assert resp.json()["total_configs"] == 16
    done = _wait_sweep(api, user, resp.json()["sweep_id"])
    assert done["status"] == "completed" and done["done_configs"] == 16, done
    api.wait_job(done["job_id"], user)
    job = api.http.get(f"{V1}/jobs/{done['job_id']}/result", headers=h).json()["data"]["result"]
    assert job["done_configs"] == 16 and job["chunks"] == job["chunks_run"] == 3
    items = api.http.get(f"{V1}/leaderboard", params={"tag": "zs_research"}, headers=h).json()["items"]
    assert len(items) == 16 and {tuple(i["config"]["strategy"]["params"].values()) for i in items} == {
        (w, e, x, m) for w in grid["window"] for e in grid["entry"] for x in grid["exit"] for m in grid["max_hold"]}
    same = next(i for i in items if i["config"]["strategy"]["params"] == {"window": 10, "entry": 1.0, "exit": 0.0,
                                                                           "max_hold": 0})
    # the grid table and the heatmap have the strategy's parameters as axes
    sid = resp.json()["sweep_id"]
    table = api.http.get(f"{V1}/backtest_sweep/{sid}/grid", headers=h).json()
    assert {"window", "entry", "exit", "max_hold"} <= set(table["axes"]) and len(table["columns"]["window"]) == 16
    by_index = {i["config_index"]: i["config"]["strategy"]["params"] for i in items}
    for k, index in enumerate(table["columns"]["config_index"]):
        assert {p: table["columns"][p][k] for p in grid} == by_index[index]
    for params in ({}, {"x": "window", "y": "max_hold"}):  # by default two parameters that vary
        png = api.http.get(f"{V1}/backtest_sweep/{sid}/chart/heatmap.png", params=params, headers=h)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png", png.text
    svg = api.http.get(f"{V1}/backtest_sweep/{sid}/chart/heatmap.svg", headers=h).text
    assert "by window and entry" in svg  # the title names the axes chosen: the first two parameters
    assert_error(api.http.get(f"{V1}/backtest_sweep/{sid}/chart/heatmap.png", params={"x": "lookback"}, headers=h),
                 400, "INVALID_PARAMETER", field="x")
    for key in ("sharpe", "cum_ret", "max_drawdown", "trades", "win_rate", "turnover", "final_equity"):
        assert same["metrics"][key] == pytest.approx(metrics[key], rel=1e-9, abs=1e-12), key
    # a single backtest with a holding limit equals its sweep row
    limited = _backtest(api, user, {"model_id": mid, "matrix_sha": sha, "config": {"long_only": True},
                                    "strategy": {"name": "zscore", "params": {"window": 10, "entry": 1.0, "exit": 0.0,
                                                                              "max_hold": 3}}})
    assert limited["config"]["strategy"]["params"]["max_hold"] == 3
    row = next(i for i in items if i["config"]["strategy"]["params"] == {"window": 10, "entry": 1.0, "exit": 0.0,
                                                                          "max_hold": 3})
    assert limited["metrics"]["final_equity"] != metrics["final_equity"]  # the limit binds
    for key in ("sharpe", "cum_ret", "max_drawdown", "trades", "win_rate", "turnover", "final_equity"):
        assert row["metrics"][key] == pytest.approx(limited["metrics"][key], rel=1e-9, abs=1e-12), key
    assert_error(api.http.post(f"{V1}/backtest", json={"model_id": mid, "matrix_sha": sha, "strategy": {
        "name": "zscore", "params": {"max_hold": -1}}}, headers=h), 400, "INVALID_PARAMETER",
        field="strategy.params.max_hold")
    assert_error(api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": {
        "strategy": {"name": "zscore", "grid": {"max_hold": [2.5]}}}}, headers=h), 400, "INVALID_PARAMETER",
        field="sweep.strategy.grid.max_hold")
    assert_error(api.http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": {
        "strategy": {"name": "zscore", "grid": {"window": [0]}}}}, headers=h), 400, "INVALID_PARAMETER",
        field="sweep.strategy.grid.window")

    # the user's own entry/exit booleans on the matrix's dates: fills at the next bars' opens
    series = api.http.get(f"{V1}/backtest/{bt['backtest_id']}/series", headers=h).json()
    stamps = pd.to_datetime(series["bars"]["timestamp"], utc=True)
    dates = [d.tz_convert("America/New_York").date().isoformat() for d in stamps[:40]]
    entries = [i == 10 for i in range(40)]
    exits = [i == 20 for i in range(40)]
    sig = _backtest(api, user, {"model_id": mid, "matrix_sha": sha,
                                "signal": {"dates": dates, "entries": entries, "exits": exits}})
    rows = _csv(api, user, sig["backtest_id"])
    assert [r[1] for r in rows] == ["BUY", "SELL"]
    assert [pd.Timestamp(r[0]) for r in rows] == [stamps[11], stamps[21]]
    assert sig["metrics"]["trades"] == 1 and sig["metrics"]["open_trade"] is None
    assert sig["config"]["signal"]["dates"] == dates  # the backtest keeps the whole signal
    board = api.http.get(f"{V1}/leaderboard", params={"model_id": mid}, headers=h).json()
    row = next(r for r in board["items"] if r["backtest_id"] == sig["backtest_id"])
    assert row["config"]["signal"] == {"kind": "entries/exits", "rows": 40, "first": dates[0], "last": dates[-1]}

    # bad input: 400 naming the field (and the row for a date that is not a bar)
    post = lambda body: api.http.post(f"{V1}/backtest", json={"model_id": mid, "matrix_sha": sha, **body}, headers=h)  # noqa: E731
    assert_error(post({"strategy": {"name": "zscore", "params": {"window": 1}}}), 400, "INVALID_PARAMETER",
                 field="strategy.params.window")
    assert_error(post({"strategy": {"name": "astrology"}}), 400, "INVALID_PARAMETER", field="strategy.name")
    assert_error(post({"signal": {"dates": ["2022-06-05"], "scores": [0.7]}}), 400, "INVALID_PARAMETER",
                 field="signal.dates")
    assert_error(post({"signal": {"dates": [dates[0]], "scores": [1.7]}}), 400, "INVALID_PARAMETER",
                 field="signal.scores[0]")
