"""Demo portfolios, overview/exposures/summary/performance and Greeks through the live API."""

from __future__ import annotations

import datetime as dt

import mibian
import pytest

from tests.serve_app.test_api_platform import V1, assert_error

DEMO = {"demo_individual": 16, "demo_hnw": 17, "demo_hedgefundstyle": 30}


@pytest.fixture(scope="module")
def demo(api):
    """The three demo users with their seeded books (seeded twice: idempotent)."""
    from serve_app import demo_portfolio

    headers = {name: api.headers(name, tier="pro") for name in DEMO}
    demo_portfolio.seed(api.catalog, api.settings)
    demo_portfolio.seed(api.catalog, api.settings)
    return headers


def _positions(api, h):
    resp = api.http.get(f"{V1}/positions", params={"limit": 1000}, headers=h)
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]["positions"]


def _sums(values):
    long_ = sum(v for v in values if v > 0)
    short = sum(v for v in values if v < 0)
    return {"long_exposure": long_, "short_exposure": short, "gross_exposure": long_ - short, "net_exposure": long_ + short}


def test_demo_books_and_exposures_match_hand_sums(api, demo):
    for name, count in DEMO.items():
        h = demo[name]
        for _attempt in range(3):  # both priced from one book: the same as-of (a cached book
            # can expire between the two calls, and prices move by the minute in session)
            overview = api.http.get(f"{V1}/portfolio", headers=h)
            assert overview.status_code == 200, overview.text
            data = overview.json()["data"]
            positions = _positions(api, h)
            again = api.http.get(f"{V1}/portfolio", headers=h).json()["data"]
            if again["as_of"] == data["as_of"]:
                break
        assert len(positions) == count == data["position_count"]
        notional = _sums([p["value"] for p in positions])
        delta = _sums([p["delta_exposure"] for p in positions])
        for key, value in notional.items():
            assert data["exposure_calculations"]["notional"][key] == pytest.approx(value, abs=0.05 * count)
            assert data["exposure_calculations"]["delta"][key] == pytest.approx(delta[key], abs=0.05 * count)
        equity = sum(p["value"] for p in positions) + data["cash"]
        assert data["total_value"] == pytest.approx(equity, abs=0.05 * count)
        gross = data["exposures"]["gross"]
        assert gross["value"] == data["exposure_calculations"]["notional"]["gross_exposure"]
        assert gross["visual"]["percentage"] == round(100 * gross["value"] / data["total_value"])
        assert gross["visual"]["limit"] == 1.5 and data["exposures"]["net"]["visual"]["target_range"] == [0.4, 0.6]
        for p in positions:
            if p["type"] in ("LONG", "SHORT"):
                assert p["value"] == pytest.approx(p["quantity"] * p["price"], abs=0.01)
                assert p["delta_exposure"] == p["value"]
            else:
                assert p["value"] == pytest.approx(p["quantity"] * 100 * p["price"], abs=0.01)
                assert p["delta_exposure"] == pytest.approx(p["greeks"]["delta"] * p["quantity"] * 100 * p["underlying_price"], rel=1e-5, abs=0.01)
        assert "primary_risks" in data["ai_insights"] and isinstance(data["ai_insights"]["evidence"], dict)

    hf = _positions(api, demo["demo_hedgefundstyle"])
    tags = {}
    for p in hf:
        for t in p["tags"]:
            tags[t] = tags.get(t, 0) + 1
    assert tags == {"Long Momentum": 13, "Short Value Traps": 9, "Options Overlay": 8}
    today = dt.date.today()
    for p in hf:
        if p["type"] in ("LC", "LP", "SC", "SP"):
            expiry = dt.date.fromisoformat(p["expiration"])
            assert expiry >= today + dt.timedelta(days=28) and 15 <= expiry.day <= 21 and expiry.weekday() in (3, 4)
            assert 0.8 < p["strike"] / p["underlying_price"] < 1.2  # near the money
            assert p["vol_source"] == "chain_iv"
    assert {p["type"] for p in hf if p["quantity"] < 0} == {"SHORT", "SP", "SC"}

    # Narrow limits turn the gross indicator red; bad limits are a 400 naming the field.
    h = demo["demo_hnw"]
    tight = api.http.get(f"{V1}/portfolio", params={"gross_limit": 0.5}, headers=h).json()["data"]
    assert tight["exposures"]["gross"]["visual"]["status"] == "danger" and tight["limits"]["gross_limit"] == 0.5
    assert_error(api.http.get(f"{V1}/portfolio", params={"net_target": "0.9,0.1"}, headers=h), 400, "INVALID_PARAMETER", field="net_target")
    assert_error(api.http.get(f"{V1}/portfolio", params={"gross_limit": -1}, headers=h), 400, "INVALID_PARAMETER", field="gross_limit")


def test_summary_exposures_performance(api, demo):
    h = demo["demo_hedgefundstyle"]
    summary = api.http.get(f"{V1}/portfolio/summary", params={"top": 3}, headers=h).json()["data"]
    positions = _positions(api, h)
    biggest = sorted(positions, key=lambda p: -abs(p["value"]))[:3]
    assert [p["ticker"] for p in summary["top_positions"]] == [p["ticker"] for p in biggest]
    assert summary["total_pl"] == pytest.approx(sum(p["pnl"] for p in positions), abs=0.5)

    exp = api.http.get(f"{V1}/portfolio/exposures", headers=h).json()["data"]
    by_tag = {g["group"]: g for g in exp["by_tag"]}
    shorts = [p["value"] for p in positions if "Short Value Traps" in p["tags"]]
    assert by_tag["Short Value Traps"]["notional"]["short"] == pytest.approx(sum(shorts), abs=0.1)
    assert by_tag["Short Value Traps"]["count"] == 9
    by_type = {g["group"]: g for g in exp["by_type"]}
    assert set(by_type) == {"LONG", "SHORT", "LC", "SP", "SC"}
    assert sum(g["notional"]["net"] for g in exp["by_type"]) == pytest.approx(exp["totals"]["notional"]["net_exposure"], abs=0.5)
    assert {g["group"] for g in exp["by_sector"]} >= {"Technology"}

    perf = api.http.get(f"{V1}/portfolio/performance", headers=h)
    assert perf.status_code == 200, perf.text
    perf = perf.json()["data"]
    assert perf["method"] == "constant_holdings" and set(perf["returns"]) >= {"1d", "1w", "1m", "ytd"}
    assert perf["total_pl"] == summary["total_pl"]


def test_greeks_equal_mibian_and_totals(api, demo):
    from cluster.market import market_provider
    from compute.book import dividend_yield

    h = demo["demo_hedgefundstyle"]
    positions = _positions(api, h)
    options = [p for p in positions if p["type"] in ("LC", "LP", "SC", "SP")]
    provider = market_provider(api.settings)
    for p in options:
        S, K, T, iv = p["underlying_price"], p["strike"], p["time_to_expiry"], p["iv"]
        q = dividend_yield(provider, p["underlying"])
        m = mibian.Me([S, K, 4.5, q * S, T * 365], volatility=iv * 100)
        call = p["type"] in ("LC", "SC")
        ref = {"delta": m.callDelta if call else m.putDelta, "gamma": m.gamma, "theta": m.callTheta if call else m.putTheta,
               "vega": m.vega, "rho": m.callRho if call else m.putRho}
        for name, value in ref.items():
            # API rounds per-share Greeks to 6 decimals; T and iv are rounded too.
            assert p["greeks"][name] == pytest.approx(value, rel=2e-4, abs=2e-6), (p["ticker"], name)

    greeks = api.http.get(f"{V1}/risk/greeks", headers=h)
    assert greeks.status_code == 200, greeks.text
    g = greeks.json()["data"]
    assert g["current"]["delta"] == pytest.approx(sum(p["position_greeks"]["delta"] for p in positions), abs=0.01)
    assert g["current"]["gamma"] == pytest.approx(sum(p["position_greeks"]["gamma"] for p in options), abs=0.01)
    assert g["current"]["visual"]["gamma_status"] in ("success", "warning", "danger")
    nearest = min(p["expiration"] for p in options)
    remaining = [p for p in positions if p["expiration"] != nearest]
    after = g["after_expiry"]
    assert after["expiry"] == nearest and after["contracts_expiring"] == len(positions) - len(remaining)
    assert after["delta"] == pytest.approx(sum(p["position_greeks"]["delta"] for p in remaining), abs=0.01)
    assert after["changes"]["delta"] == pytest.approx(after["delta"] - g["current"]["delta"], abs=0.01)
    longs = api.http.get(f"{V1}/risk/greeks", params={"view": "longs", "include_after_expiry": "false"}, headers=h).json()["data"]
    assert longs["current"]["delta"] == pytest.approx(sum(p["position_greeks"]["delta"] for p in positions if p["quantity"] > 0), abs=0.01)
    assert "after_expiry" not in longs
    assert_error(api.http.get(f"{V1}/risk/greeks", params={"view": "all"}, headers=h), 400, "INVALID_PARAMETER", field="view")


def test_hypothetical_greeks_sync_and_async(api):
    from cluster.market import market_provider
    from compute.instruments import next_monthly_expiry

    h = api.headers("greeks_user")
    provider = market_provider(api.settings)
    expiry = next_monthly_expiry(dt.date.today(), 2)
    chain = provider.option_chain("AAPL", expiries=[expiry])
    spot = float(chain["underlying_price"].iloc[0])
    strike = float(chain["strike"].iloc[(chain["strike"] - spot).abs().argmin()])
    body = {"positions": [
        {"ticker": "AAPL", "type": "LC", "quantity": 20, "strike": strike, "expiration": expiry.isoformat()},
        {"ticker": "AAPL", "type": "SP", "quantity": -5, "strike": strike + 0.37, "expiration": expiry.isoformat()},
        {"ticker": "AAPL", "type": "LONG", "quantity": 100},
    ]}
    sync = api.http.post(f"{V1}/risk/greeks/calculate", json=body, headers=h)
    assert sync.status_code == 200, sync.text
    data = sync.json()["data"]
    call, put, stock = data["positions"]
    assert call["vol_source"] == "chain_iv" and put["vol_source"] == "realised"
    assert call["position_greeks"]["delta"] == pytest.approx(call["greeks"]["delta"] * 20 * 100, rel=1e-5)
    assert stock["position_greeks"]["delta"] == 100 and stock["greeks"]["gamma"] is None
    assert data["totals"]["delta"] == pytest.approx(sum(p["position_greeks"]["delta"] for p in data["positions"]), abs=0.01)
    assert data["warnings"] == []

    queued = api.http.post(f"{V1}/risk/greeks/calculate", params={"mode": "async"}, json=body, headers=h)
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert job["success"] and job["poll_url"] == f"/api/v1/jobs/{job['job_id']}"
    done = api.wait_job(job["job_id"], "greeks_user")
    assert done["status"] == "completed", done
    result = api.http.get(f"{V1}/jobs/{job['job_id']}/result", headers=h).json()["data"]["result"]
    assert [p["vol_source"] for p in result["positions"]] == ["chain_iv", "realised", None]
    # where the figures come from, as the sync answer's meta says (issue 16 item 7)
    assert result["market_data"]["source"] == sync.json()["meta"]["market_data"]["source"] == "synthetic"
    assert result["market_data"]["as_of"].endswith("Z")
    assert result["positions"][0]["greeks"]["delta"] == pytest.approx(call["greeks"]["delta"], abs=0.05)

    bad = {"positions": [{"ticker": "AAPL", "type": "LC", "quantity": 1, "expiration": expiry.isoformat()}]}
    assert_error(api.http.post(f"{V1}/risk/greeks/calculate", json=bad, headers=h), 400, "INVALID_PARAMETER", field="positions[0].strike")
    assert_error(api.http.post(f"{V1}/risk/greeks/calculate", json={"positions": []}, headers=h), 400, "INVALID_PARAMETER", field="positions")
