"""Market data routes answer with real data from the default (synthetic) provider."""

from __future__ import annotations

import datetime as dt

from tests.serve_app.test_api_platform import V1, assert_error


def test_quotes_for_several_symbols(api):
    resp = api.http.get(f"{V1}/market/quotes", params={"symbols": "aapl,MSFT, SPY"}, headers=api.headers("alice"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    quotes = {q["symbol"]: q for q in body["data"]["quotes"]}
    assert set(quotes) == {"AAPL", "MSFT", "SPY"}
    for q in quotes.values():
        assert 0 < q["bid"] <= q["last"] <= q["ask"] or 0 < q["bid"] <= q["ask"]
        assert q["volume"] >= 0  # the session's volume so far: 0 in its first minute (no bar has ended)
        dt.datetime.fromisoformat(q["timestamp"].replace("Z", "+00:00"))
        assert q["source"] == "synthetic" and q["as_of"] == q["timestamp"]  # where the data comes from (issue 16)
    assert "cache_status" in body["meta"]


def test_quotes_validation(api):
    h = api.headers("alice")
    assert_error(api.http.get(f"{V1}/market/quotes", headers=h), 400, "INVALID_PARAMETER", field="symbols")
    assert_error(api.http.get(f"{V1}/market/quotes", params={"symbols": "AAPL,$$$"}, headers=h), 400, "INVALID_PARAMETER", field="symbols")
    assert_error(api.http.get(f"{V1}/market/quotes", params={"symbols": ",".join(f"T{i}" for i in range(101))}, headers=h), 400, "INVALID_PARAMETER", field="symbols")
    assert_error(api.http.get(f"{V1}/market/quotes", params={"symbols": "AAPL"}), 401, "UNAUTHORIZED")


def test_option_chain_nearest_and_all(api):
    h = api.headers("alice")
    nearest = api.http.get(f"{V1}/market/options", params={"symbol": "SPY", "strikes": 6}, headers=h)
    assert nearest.status_code == 200, nearest.text
    data = nearest.json()["data"]
    assert data["symbol"] == "SPY" and len(data["expiries"]) == 1
    assert data["count"] == len(data["contracts"]) == 12  # 6 strikes x call and put
    # issue 16: the chain says where its data comes from, when it is priced and that it is model-priced
    assert data["source"] == "synthetic" and data["pricing"] == "model"
    assert dt.datetime.fromisoformat(data["as_of"].replace("Z", "+00:00")) <= dt.datetime.now(dt.timezone.utc)
    spot = data["underlying_price"]
    for c in data["contracts"]:
        assert c["symbol"].startswith("SPY") and c["right"] in ("C", "P")
        assert c["bid"] <= c["mid"] <= c["ask"] and 0 < c["iv"] < 3
        assert (0 < c["delta"] < 1) if c["right"] == "C" else (-1 < c["delta"] < 0)
    strikes = sorted({c["strike"] for c in data["contracts"]})
    assert strikes[0] <= spot * 1.05 and strikes[-1] >= spot * 0.95

    every = api.http.get(f"{V1}/market/options", params={"symbol": "SPY", "expiry": "all", "strikes": 2}, headers=h).json()["data"]
    assert len(every["expiries"]) > 5
    one = every["expiries"][3]
    dated = api.http.get(f"{V1}/market/options", params={"symbol": "SPY", "expiry": one, "strikes": 2}, headers=h).json()["data"]
    assert dated["expiries"] == [one]


def test_option_chain_validation(api):
    h = api.headers("alice")
    assert_error(api.http.get(f"{V1}/market/options", params={"symbol": "SPY", "expiry": "next-week"}, headers=h), 400, "INVALID_PARAMETER", field="expiry")
    assert_error(api.http.get(f"{V1}/market/options", params={"symbol": "SPY", "strikes": 0}, headers=h), 400, "INVALID_PARAMETER", field="strikes")
    assert_error(api.http.get(f"{V1}/market/options", params={"symbol": "not a symbol"}, headers=h), 400, "INVALID_PARAMETER", field="symbol")


def test_health_ticker_detail(api):
    resp = api.http.get(f"{V1}/healthz", params={"ticker": "AAPL"}, headers=api.headers("alice"))
    assert resp.status_code == 200, resp.text
    ticker = resp.json()["ticker"]
    assert ticker["status"] == "healthy" and ticker["data_quality"] == 1.0
    assert dt.datetime.fromisoformat(ticker["last_update"]) <= dt.datetime.now(dt.timezone.utc)
    assert_error(api.http.get(f"{V1}/healthz", params={"ticker": "!!"}, headers=api.headers("alice")), 400, "INVALID_PARAMETER", field="ticker")
    plain = api.http.get(f"{V1}/healthz").json()
    assert plain["components"]["market_data"] == "healthy"
