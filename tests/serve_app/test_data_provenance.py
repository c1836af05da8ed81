"""Where data comes from (issue 16, item 7): bars, and every priced figure (portfolio views,
positions, Greeks, factors, VaR, scenarios, attribution), say their ``source`` (synthetic,
files, polygon) and ``as_of`` (the pricing instant): bars in their data, like quotes and
chains; priced figures in ``meta.market_data`` (``meta.source`` already says batch or live),
including figures served from the daily batch. The app runs without Ray (``local_app``)."""

from __future__ import annotations

import datetime as dt
import secrets

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

V1 = "/api/v1"


def _client(tmp_path, **extra):
    from cluster.catalog import get_catalog, upgrade_schema
    from cluster.config import Settings
    from serve_app.app import local_app
    from serve_app.users import seed_demo_users

    password = "pw-" + secrets.token_hex(6)
    settings = Settings(home=tmp_path, jwt_secret=secrets.token_urlsafe(32), demo_password=password,
                        admin_password=password, rate_limits='{"pro": {"per_minute": 1000000, "per_hour": 10000000}}',
                        **extra)
    catalog = get_catalog(settings)
    upgrade_schema(catalog)
    seed_demo_users(catalog, settings)
    client = TestClient(local_app(settings))
    return client, catalog, settings, password


def _login(client, user, password):
    token = client.post(f"{V1}/auth/token", json={"username": user, "password": password}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from serve_app import demo_portfolio

    client, catalog, settings, password = _client(tmp_path_factory.mktemp("provenance"))
    demo_portfolio.seed(catalog, settings)
    with client:
        yield client, catalog, settings, _login(client, "demo_hedgefundstyle", password)


def _instant(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _ok(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()


def _stamp(body, source="synthetic"):
    stamp = body["meta"]["market_data"]
    assert set(stamp) == {"source", "as_of"} and stamp["source"] == source
    assert _instant(stamp["as_of"]) <= dt.datetime.now(dt.timezone.utc)
    return stamp


PRICED_GETS = [
    "/portfolio", "/portfolio/summary", "/portfolio/exposures", "/portfolio/performance", "/positions",
    "/positions/grouped", "/risk/greeks", "/risk/factors", "/risk/factors/positions", "/risk/overview",
    "/risk/var", "/risk/metrics", "/attribution/positions",
]


@pytest.mark.parametrize("path", PRICED_GETS)
def test_every_priced_view_says_its_source_and_pricing_instant(app, path):
    client, _, _, h = app
    body = _ok(client.get(f"{V1}{path}", headers=h))
    stamp = _stamp(body)
    if path.startswith("/risk/") and path != "/risk/greeks":
        assert body["meta"]["source"] == "live"   # computed now, not the batch's


def test_scenarios_and_hypothetical_greeks_say_it_too(app):
    client, _, _, h = app
    body = _ok(client.post(f"{V1}/risk/scenarios", json={"scenario_ids": ["market_down_10"]}, headers=h))
    _stamp(body)
    expiry = (dt.date.today() + dt.timedelta(days=60)).isoformat()
    body = _ok(client.post(f"{V1}/risk/greeks/calculate", json={"positions": [
        {"ticker": "AAPL", "type": "LC", "quantity": 2, "strike": 200, "expiration": expiry}]}, headers=h))
    _stamp(body)


def test_a_reconstructed_timeline_says_it(app):
    client, _, _, h = app
    body = _ok(client.get(f"{V1}/portfolio/timeline", params={"start": "2024-03-04", "end": "2024-03-06"}, headers=h))
    assert [p["source"] for p in body["data"]["points"]] == ["reconstructed"] * 3
    assert body["meta"]["market_data"] == {"source": "synthetic", "as_of": "2024-03-06T21:00:00Z"}


def test_a_book_priced_at_a_date_says_that_sessions_close(app):
    client, _, _, h = app
    body = _ok(client.get(f"{V1}/attribution/positions", params={"date": "2024-03-05"}, headers=h))
    # the day and the day before are both priced: the figure's instant is the day's close
    assert body["meta"]["market_data"] == {"source": "synthetic", "as_of": "2024-03-05T21:00:00Z"}


def test_answers_that_price_nothing_carry_no_stamp(app):
    client, _, _, h = app
    for path in ("/risk/factors/definitions", "/risk/scenarios/templates", "/portfolios"):
        body = _ok(client.get(f"{V1}{path}", headers=h))
        assert "market_data" not in body["meta"], path


def test_figures_from_the_batch_carry_the_batchs_stamp(app):
    from cluster.catalog import BatchRun, Portfolio, User
    from compute.marketdata import calendar
    from services.risk.batch import process_portfolio
    from sqlalchemy import select

    client, catalog, settings, h = app
    with catalog.session() as s:
        uid = s.scalar(select(User.id).where(User.username == "demo_hedgefundstyle"))
        pid = s.scalar(select(Portfolio.id).where(Portfolio.user_id == uid, Portfolio.is_default.is_(True)))
        session = calendar.session_on_or_before(pd.Timestamp.now(tz="America/New_York").normalize()
                                                - pd.Timedelta(days=1)).date()
        run = BatchRun(as_of=session, status="running", trigger="manual")
        s.add(run)
        s.flush()
        run_id = run.id
    outcome = process_portfolio(settings, run_id, pid, session)
    assert outcome["steps"]["factors"] == "completed", outcome
    close = calendar.session_close(session).strftime("%Y-%m-%dT%H:%M:%SZ")
    for path in ("/risk/factors", "/risk/overview", "/risk/var"):
        body = _ok(client.get(f"{V1}{path}", headers=h))
        assert body["meta"]["source"] == "batch", path
        assert body["meta"]["market_data"] == {"source": "synthetic", "as_of": close}, path
    body = _ok(client.post(f"{V1}/risk/scenarios", json={"scenario_ids": ["market_down_10"]}, headers=h))
    assert body["meta"]["source"] == "batch" and body["meta"]["market_data"]["as_of"] == close
    # refresh=true computes live: the stamp is the live book's
    body = _ok(client.get(f"{V1}/risk/factors", params={"refresh": "true"}, headers=h))
    assert body["meta"]["source"] == "live" and _instant(body["meta"]["market_data"]["as_of"]) > _instant(close)


def test_daily_and_intraday_bars_say_where_they_come_from(app):
    client, _, _, h = app
    body = _ok(client.get(f"{V1}/market/bars", params={"symbol": "spy", "start": "1990-01-02", "end": "1990-01-31"},
                          headers=h))
    data = body["data"]
    assert data["symbol"] == "SPY" and data["freq"] == "1d" and data["source"] == "synthetic"
    assert data["count"] == len(data["bars"]) == 22   # every 1990 January session: back to 1990 (item 2)
    assert data["bars"][0]["timestamp"] == "1990-01-02T14:30:00Z"
    assert _instant(data["as_of"]) <= dt.datetime.now(dt.timezone.utc)
    for bar in data["bars"]:
        assert 0 < bar["low"] <= min(bar["open"], bar["close"]) <= max(bar["open"], bar["close"]) <= bar["high"]
    hourly = _ok(client.get(f"{V1}/market/bars", params={"symbol": "AAPL", "start": "2024-11-29", "end": "2024-12-02",
                                                        "freq": "1h"}, headers=h))["data"]
    assert hourly["count"] == 4 + 7   # the half day has 09:30..12:30, then a full day
    assert hourly["source"] == "synthetic" and hourly["bars"][0]["timestamp"] == "2024-11-29T14:30:00Z"


@pytest.mark.parametrize("params, field", [
    ({"symbol": "SPY", "start": "1989-12-29"}, "start"),
    ({"symbol": "SPY", "start": "2024-01-05", "end": "2024-01-02"}, "start"),
    ({"symbol": "SPY", "start": "2024-01-02", "end": "2036-01-02"}, "end"),
    ({"symbol": "SPY", "start": "2020-01-02", "end": "2024-01-02", "freq": "1min"}, "start"),
    ({"symbol": "SPY", "start": "2024-01-02", "freq": "2h"}, "freq"),
    ({"symbol": "$$$", "start": "2024-01-02"}, "symbol"),
    ({"symbol": "SPY", "start": "yesterday"}, "start"),
])
def test_bad_bar_requests_name_the_field(app, params, field):
    client, _, _, h = app
    resp = client.get(f"{V1}/market/bars", params=params, headers=h)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["success"] is False
    assert any(e.get("field") == field for e in body["errors"]), body


def test_files_provider_bars_and_model_priced_chains(tmp_path):
    sessions = pd.DatetimeIndex(
        __import__("compute.marketdata.calendar", fromlist=["x"]).all_sessions().index)
    today = pd.Timestamp.now(tz="America/New_York").tz_localize(None).normalize()
    days = sessions[(sessions < today) & (sessions >= today - pd.Timedelta(days=500))]
    rng = np.random.default_rng(3)
    close = 400 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
    (tmp_path / "data" / "daily").mkdir(parents=True)
    pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), "Open": close, "High": close * 1.01, "Low": close * 0.99,
                  "Close": close, "Adj Close": close, "Volume": 1e6}).to_csv(tmp_path / "data" / "daily" / "SPY.csv",
                                                                              index=False)
    client, _, _, password = _client(tmp_path / "home", market_data=f"files:{tmp_path / 'data'}")
    with client:
        h = _login(client, "demo_individual", password)
        bars = _ok(client.get(f"{V1}/market/bars", params={"symbol": "SPY", "start": days[-5].date().isoformat()},
                              headers=h))["data"]
        assert bars["source"] == "files" and bars["count"] == 5
        assert bars["bars"][-1]["close"] == pytest.approx(close[-1])
        chain = _ok(client.get(f"{V1}/market/options", params={"symbol": "SPY", "strikes": 2}, headers=h))["data"]
        assert chain["source"] == "files" and chain["pricing"] == "model" and chain["count"] > 0
        quote = _ok(client.get(f"{V1}/market/quotes", params={"symbols": "SPY"}, headers=h))["data"]["quotes"][0]
        assert quote["source"] == "files" and quote["last"] == pytest.approx(close[-1])
