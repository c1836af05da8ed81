"""Live signals end to end on the live Serve app: a trained model scores its newest bar; the
signal's rules are checked against independent references (exchange_calendars for the next
session, a pandas Wilder ATR for the bracket, the stored weights for the score); idempotence,
listing, cancel, the pack health figure and the signal.generated webhook."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from tests.serve_app.test_api_platform import V1, assert_error


def _wilder_atr(frame: pd.DataFrame, window: int = 14) -> float:
    high, low, close = frame["high"], frame["low"], frame["close"]
    tr = pd.concat([high - low, (high - close.shift()).abs(), (low - close.shift()).abs()], axis=1).max(axis=1)
    tr.iloc[0] = high.iloc[0] - low.iloc[0]
    atr = tr.iloc[:window].mean()
    for value in tr.iloc[window:]:
        atr = (atr * (window - 1) + value) / window
    return float(atr)


def test_signals_from_a_trained_model(api):
    import exchange_calendars as xcals

    from services.lab import signals as sig
    from compute.marketdata import make_provider

    provider = make_provider(api.settings.market_data, seed=api.settings.market_data_seed)

    user, h = "sig_ann", api.headers("sig_ann")
    resp = api.http.post(f"{V1}/models", json={"template_id": "swingsigma_default", "config": {"ticker": "MSFT"}}, headers=h)
    assert resp.status_code == 201, resp.text
    mid = resp.json()["model_id"]
    # not trained yet: a 400 naming the model, not a 500
    assert_error(api.http.post(f"{V1}/signals/generate", json={"model_id": mid}, headers=h), 400, "INVALID_PARAMETER",
                 field="model_id")
    assert_error(api.http.post(f"{V1}/signals/generate", json={"model_id": mid}, headers=api.headers("sig_eve")), 404,
                 "NOT_FOUND")
    m = api.http.post(f"{V1}/build_matrix", json={"model_id": mid, "start_date": "2021-01-04", "end_date": "2023-12-29"},
                      headers=h).json()
    train = api.http.post(f"{V1}/train", json={"model_id": mid, "matrix_sha": m["matrix_sha"],
                                               # a confident (uncalibrated, lightly regularised) model makes calls
                                               "config": {"epochs": 60, "batch_size": 16, "learning_rate": 0.05,
                                                          "calibration": "none", "l2": 0.0}}, headers=h)
    assert train.status_code == 202, train.text
    assert api.wait_job(train.json()["job_id"], user, timeout=180)["status"] == "completed"
    hook = api.http.post(f"{V1}/webhooks", json={"url": "http://127.0.0.1:9/signals", "events": ["signal.generated"],
                                                 "secret": "signal-secret-1"}, headers=h)
    assert hook.status_code == 201, hook.text
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    assert_error(api.http.post(f"{V1}/signals/generate", json={"model_id": mid, "as_of": future}, headers=h), 400,
                 "INVALID_PARAMETER", field="as_of")

    # the first session of a scan on which the model makes a call
    made = None
    for day in pd.bdate_range("2024-03-01", periods=8):
        resp = api.http.post(f"{V1}/signals/generate", json={"model_id": mid, "as_of": day.date().isoformat()}, headers=h)
        assert resp.status_code in (200, 201), resp.text
        if resp.json()["signal"] is not None:
            assert resp.status_code == 201 and resp.json()["created"]
            made = made or resp.json()
    assert made is not None
    s, decision = made["signal"], made["decision"]

    # direction and confidence from the score
    assert s["confidence"] == pytest.approx(max(s["score"], 1 - s["score"])) and s["confidence"] >= sig.CONFIDENCE_MIN
    assert s["action"] == ("BUY" if s["score"] >= decision["entry_threshold"] else "SELL")
    # the score is the stored weights' on the features the signal records
    from cluster.artifacts import ArtifactStore
    from cluster.catalog import Training
    from services.lab.training import load_weights

    with api.catalog.session() as ses:
        training = ses.get(Training, s["training_id"])
    weights = load_weights(ArtifactStore(api.settings.resolved_storage_url), training)
    features = pd.DataFrame([s["details"]["features"]])[list(weights.feature_names)]
    assert weights.score(features)[0] == pytest.approx(s["score"], abs=1e-12)
    # entry at the next NYSE session's open (exchange_calendars), bracket on an independent ATR
    bar = pd.Timestamp(s["timestamp"])
    nyse = xcals.get_calendar("XNYS")
    next_session = nyse.next_session(bar.tz_convert("America/New_York").date())
    assert pd.Timestamp(s["entry_at"]) == nyse.session_open(next_session)
    assert pd.Timestamp(s["expires_at"]) - pd.Timestamp(s["entry_at"]) == pd.Timedelta(minutes=120)
    end = bar.tz_convert("America/New_York").date()
    start = end - dt.timedelta(days=sig.LOOKBACK_DAYS["daily"])
    bars = provider.daily_bars("MSFT", start - dt.timedelta(days=3 * sig.LOOKBACK_DAYS["daily"]), end)
    atr = _wilder_atr(bars[bars.index <= bar])
    assert s["details"]["atr"] == pytest.approx(atr, rel=1e-9)
    side = 1 if s["action"] == "BUY" else -1
    price, used = s["price"], max(atr, 0.0005 * s["price"])
    assert s["stop"] == pytest.approx(price - side * 1.2 * used) and s["target"] == pytest.approx(price + side * 2.0 * used)
    assert s["quantity"] == min(math.floor(1000.0 / (1.2 * used)), math.floor(100_000.0 / price))
    assert s["expected_return"] == pytest.approx(s["confidence"] * 2.0 * used / price - (1 - s["confidence"]) * 1.2 * used / price)
    assert price == pytest.approx(float(bars[bars.index <= bar]["close"].iloc[-1]))

    # the same bar again: the stored signal, not a second one
    again = api.http.post(f"{V1}/signals/generate", json={"model_id": mid, "as_of": end.isoformat()}, headers=h)
    assert again.status_code == 200 and again.json()["signal"]["signal_id"] == s["signal_id"]
    assert not again.json()["created"]

    # an entry threshold the score does not reach: no signal, and the reason
    admin = api.headers("sig_admin", role="admin")
    patched = api.http.patch(f"{V1}/admin/models/{mid}", params={"user": user},
                             json={"config": {"thresholds": {"entry": 0.999, "exit": 0.5}}}, headers=admin)
    assert patched.status_code == 200, patched.text
    nxt = (pd.Timestamp(end) + pd.offsets.BDay(1)).date().isoformat()
    declined = api.http.post(f"{V1}/signals/generate", json={"model_id": mid, "as_of": nxt}, headers=h)
    assert declined.status_code == 200 and declined.json()["signal"] is None
    reason = declined.json()["decision"]
    assert reason["entry_threshold"] == 0.999 and 0.001 < reason["score"] < 0.999 and "threshold" in reason["reason"]

    # listed, filtered, private; past signals are settled on 1-minute bars (filled), cancel needs active
    page = api.http.get(f"{V1}/signals", params={"model_id": mid, "limit": 100}, headers=h).json()
    assert page["total"] >= 1 and s["signal_id"] in [i["signal_id"] for i in page["items"]]
    assert all(i["status"] == "filled" for i in page["items"])
    for item in page["items"]:
        side = 1 if item["details"]["direction"] == "long" else -1
        entry = item["details"]["entry_price"]
        assert item["exit_reason"] in ("stop", "target", "time")
        assert item["realized_return"] == pytest.approx(side * (item["exit_price"] / entry - 1))
        if item["exit_reason"] == "stop":
            assert side * (item["exit_price"] - item["stop"]) <= 1e-9
        if item["exit_reason"] == "target":
            assert side * (item["exit_price"] - item["target"]) >= -1e-9
        assert pd.Timestamp(item["entry_at"]) <= pd.Timestamp(item["exit_at"]) < pd.Timestamp(item["expires_at"])
    assert api.http.get(f"{V1}/signals", params={"status": "active", "end": "2024-12-31T00:00:00Z"},
                        headers=h).json()["total"] == 0
    assert api.http.get(f"{V1}/signals", headers=api.headers("sig_eve")).json()["total"] == 0
    assert_error(api.http.get(f"{V1}/signals", params={"status": "open"}, headers=h), 400, "INVALID_PARAMETER", field="status")
    assert api.http.get(f"{V1}/signals/{s['signal_id']}", headers=h).json()["action"] == s["action"]
    assert_error(api.http.get(f"{V1}/signals/{s['signal_id']}", headers=api.headers("sig_eve")), 404, "NOT_FOUND")
    assert_error(api.http.post(f"{V1}/signals/{s['signal_id']}/cancel", headers=h), 409, "CONFLICT")

    # a signal for today's bar is active until its time stop: counted by the pack's health
    today = api.http.post(f"{V1}/signals/generate", json={"model_id": mid}, headers=h).json()
    health = api.http.get(f"{V1}/healthz", params={"pack_id": "swingsigma"}, headers=h).json()["pack"]
    active = today["signal"] is not None and today["signal"]["status"] == "active"
    assert health["active_signals"] == (1 if active else 0)
    if active:
        cancelled = api.http.post(f"{V1}/signals/{today['signal']['signal_id']}/cancel", headers=h)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    # the live record ranks the model: figures recomputed from the listed signals
    board = api.http.get(f"{V1}/signals/leaderboard", params={"pack": "swingsigma", "risk_profile": "Balanced",
                                                               "start": "2024-01-01", "end": "2024-12-31"},
                         headers=h).json()["items"]
    [row] = [r for r in board if r["model_id"] == mid]
    returns = np.array([i["realized_return"] for i in page["items"]])
    assert row["metrics"]["total_signals"] == page["total"] and row["metrics"]["filled"] == len(returns)
    assert row["metrics"]["success_rate"] == pytest.approx((returns > 0).mean())
    assert row["metrics"]["avg_return"] == pytest.approx(returns.mean())
    if len(returns) >= 2:
        assert row["metrics"]["sharpe_live"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(252))
    assert api.http.get(f"{V1}/signals/leaderboard", params={"pack": "swingsigma"},
                        headers=api.headers("sig_eve")).json()["items"] == []
    assert_error(api.http.get(f"{V1}/signals/leaderboard", params={"pack": "nopack"}, headers=h), 400,
                 "INVALID_PARAMETER", field="pack")
    assert_error(api.http.get(f"{V1}/signals/leaderboard", params={"start": "2024-02-01", "end": "2024-01-01"},
                              headers=h), 400, "INVALID_PARAMETER", field="end")

    # every new signal was announced to the subscribed webhook
    deliveries = api.http.get(f"{V1}/webhooks/{hook.json()['webhook_id']}/deliveries", headers=h).json()["items"]
    announced = {d["payload"]["data"]["signal_id"] for d in deliveries if d["event"] == "signal.generated"}
    assert s["signal_id"] in announced


def test_options_signal_picks_the_035_delta_contract(api):
    # zerosigma: a call for up, a put for down; the nearest expiry's contract nearest |delta| 0.35
    # (ties to the lower IV) among those with open interest >= 100, sized to the risk budget
    from compute.marketdata import make_provider

    user, h = "sig_zed", api.headers("sig_zed")
    mid = api.http.post(f"{V1}/models", json={"template_id": "zerosigma_default", "config": {"ticker": "SPY"}},
                        headers=h).json()["model_id"]
    m = api.http.post(f"{V1}/build_matrix", json={"model_id": mid, "start_date": "2024-01-02", "end_date": "2024-03-28"},
                      headers=h).json()
    train = api.http.post(f"{V1}/train", json={"model_id": mid, "matrix_sha": m["matrix_sha"],
                                               "config": {"epochs": 40, "batch_size": 16, "learning_rate": 0.05,
                                                          "calibration": "none", "l2": 0.0}}, headers=h)
    assert api.wait_job(train.json()["job_id"], user, timeout=180)["status"] == "completed"
    made = None
    for day in pd.bdate_range("2024-04-01", periods=30):
        body = api.http.post(f"{V1}/signals/generate", json={"model_id": mid, "as_of": day.date().isoformat()},
                             headers=h).json()
        if body["signal"] is not None:
            made = body["signal"]
            break
    assert made is not None
    option = made["details"]["option"]
    assert made["action"] == "BUY" and option["type"] == ("call" if made["details"]["direction"] == "long" else "put")
    provider = make_provider(api.settings.market_data, seed=api.settings.market_data_seed)
    chain = provider.option_chain("SPY", as_of=pd.Timestamp(made["timestamp"]))
    chain = chain[chain["right"].str.lower().str.startswith(option["type"][0]) & (chain["open_interest"] >= 100)]
    chain = chain[pd.to_datetime(chain["expiry"]) == pd.to_datetime(chain["expiry"]).min()]
    distance = (chain["delta"].abs() - 0.35).abs()
    best = chain[distance <= distance.min() + 1e-12].sort_values("iv").iloc[0]
    assert option["symbol"] == best["symbol"] and option["strike"] == best["strike"]
    assert option["contracts"] == int(1000.0 // (option["premium"] * 100.0)) and made["quantity"] == option["contracts"]
