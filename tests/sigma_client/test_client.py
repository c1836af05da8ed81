"""The Python client against the live Serve app: login, model, matrix, backtest, a 10,000-
configuration sweep with a progress bar, the leaderboard (and its CSV), jobs, webhooks, and
errors carrying code, field and request id."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from sigma_client import Client, Page, SigmaAPIError
from tests.conftest import TEST_PASSWORD


def test_client_walkthrough(api, capsys):
    api.user("client_cleo")
    c = Client(api.base_url)
    with pytest.raises(SigmaAPIError) as err:
        c.models()
    assert err.value.status == 401 and err.value.code == "UNAUTHORIZED" and err.value.request_id
    with pytest.raises(SigmaAPIError):
        c.login("client_cleo", "wrong-password")
    c.login("client_cleo", TEST_PASSWORD)
    assert c.token

    model = c.create_model("swingsigma_default", config={"ticker": "NVDA"})
    mid = model.model_id
    assert mid == "NVDA_equity_5d_daily" and c.model(mid)["pack_id"] == "swingsigma"
    assert isinstance(c.models(), Page) and [m["model_id"] for m in c.models()] == [mid]
    matrix = c.build_matrix(mid, "2019-01-01", "2023-12-31")
    assert len(matrix["matrix_sha"]) == 64

    bt = c.backtest(mid, {"kind": "thresholds", "value": 0.55}, wait=True)
    assert bt.status == "completed" and "sharpe" in bt.metrics
    assert c.export_backtest(bt.backtest_id).startswith("timestamp,action,price")

    with pytest.raises(SigmaAPIError) as err:
        c.sweep(mid, {"thresholds": [0.6], "top_pct": [75]})
    assert err.value.status == 400 and err.value.code == "INVALID_PARAMETER" and err.value.field == "sweep.top_pct"
    with pytest.raises(SigmaAPIError) as err:
        c.get_sweep("sweep_nope")
    assert err.value.code == "NOT_FOUND"
    # live signals need a trained model: a 400 naming the model, and none listed yet
    with pytest.raises(SigmaAPIError) as err:
        c.generate_signal(mid)
    assert err.value.status == 400 and err.value.field == "model_id"
    assert c.signals(model_id=mid).total == 0

    grid = {"thresholds": [round(0.5 + 0.002 * i, 4) for i in range(100)],
            "exit_thresholds": [round(0.40 + 0.01 * i, 2) for i in range(10)],
            "fees_bps": [0, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20]}
    started = c.sweep(mid, grid, tag="client_10k", risk_profile="Aggressive")
    assert started.total_configs == 10_000
    done = c.wait_sweep(started.sweep_id, progress=True, timeout=600)
    assert done.status == "completed" and done.done_configs == 10_000
    assert "client_10k" in capsys.readouterr().err  # the tqdm bar was drawn
    job = c.wait_job(done.job_id)
    assert job.status == "completed" and c.job_result(done.job_id).result["done_configs"] == 10_000

    top = c.leaderboard(tag="client_10k", limit=10)
    assert top.total == 10_000 and [i["rank"] for i in top] == list(range(1, 11))
    assert top["items"][0]["result_id"] == done.best["result_id"]
    frame = top.to_frame()
    assert len(frame) == 10 and "metrics.sharpe" in frame.columns and "config.fees_bps" in frame.columns
    by_calmar = c.leaderboard(tag="client_10k", sort_by="calmar", limit=50)
    calmar = [i["metrics"]["calmar"] for i in by_calmar if i["metrics"]["calmar"] is not None]
    assert calmar == sorted(calmar, reverse=True)
    csv_text = c.export_leaderboard(tag="client_10k", pass_gate=False)
    table = pd.read_csv(io.StringIO(csv_text))
    assert len(table) == 10_000 - c.leaderboard(tag="client_10k", pass_gate=True, limit=1).total
    assert set(table["fees_bps"]) <= set(grid["fees_bps"])
    assert any(s["sweep_id"] == started.sweep_id for s in c.sweeps())

    hook = c.create_webhook("http://127.0.0.1:9/hook", ["sweep.completed"], "client-secret-1")
    assert "secret" not in hook and [h.webhook_id for h in c.webhooks()] == [hook.webhook_id]
    assert c.webhook_deliveries(hook.webhook_id).total == 0
    assert c.delete_webhook(hook.webhook_id).deleted is True
    with pytest.raises(SigmaAPIError) as err:
        c.create_webhook("gopher://x", ["sweep.completed"], "client-secret-1")
    assert err.value.field == "url"
    c.close()
