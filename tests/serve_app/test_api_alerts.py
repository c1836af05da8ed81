"""Alerts on the live Serve app: option-expiration checks and user rules evaluated on the priced
book, figures recomputed from the positions the API reports."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from tests.serve_app.test_api_platform import V1, assert_error


def _add(api, user, body):
    resp = api.http.post(f"{V1}/positions", json=body, headers=api.headers(user))
    assert resp.status_code == 201, resp.text
    return resp.json()["data"]


def test_alerts_from_expirations_and_rules(api):
    from compute.marketdata import calendar

    user, h = "alert_ann", api.headers("alert_ann")
    aapl = _add(api, user, {"ticker": "AAPL", "type": "LONG", "quantity": 500, "price": 178.5, "tags": ["#core"]})
    _add(api, user, {"ticker": "XOM", "type": "SHORT", "quantity": -100, "price": 95})
    ny_today = pd.Timestamp.now(tz=calendar.NEW_YORK).date()
    next_session = calendar.next_sessions(ny_today + dt.timedelta(days=1), 1)[0].date()
    soon = _add(api, user, {"ticker": "MSFT", "type": "LC", "quantity": 2, "strike": 400,
                            "expiration": next_session.isoformat(), "price": 3.0})
    _add(api, user, {"ticker": "MSFT", "type": "LP", "quantity": 1, "strike": 300,
                     "expiration": (ny_today + dt.timedelta(days=200)).isoformat(), "price": 2.0})

    got = api.http.get(f"{V1}/alerts", headers=h).json()["data"]
    [expiring] = [a for a in got if a["type"] == "expiration_risk"]
    assert expiring["priority"] == "high" and expiring["positions_affected"] == [soon["id"]]
    assert expiring["message"].startswith("1 position expiring on the next session")

    # rules: thresholds on either side of AAPL's weight, recomputed from GET /positions
    positions = api.http.get(f"{V1}/positions", headers=h).json()["data"]["positions"]
    total = api.http.get(f"{V1}/portfolio/summary", headers=h).json()["data"]["total_value"]
    mine = next(p for p in positions if p["id"] == aapl["id"])
    sector = mine["sector"]
    same_sector = [p for p in positions if p["sector"] == sector]
    weight = sum(abs(p["value"]) for p in same_sector) / total
    above = api.http.post(f"{V1}/alerts/rules", headers=h, json={"name": "Sector concentration", "priority": "critical",
                          "condition": {"metric": "sector_exposure", "sector": sector.lower(), "operator": "greater_than",
                                        "threshold": round(weight - 0.01, 4)}})
    assert above.status_code == 201, above.text
    below = api.http.post(f"{V1}/alerts/rules", headers=h, json={"name": "Quiet", "condition": {
        "metric": "sector_exposure", "sector": sector, "operator": "greater_than", "threshold": round(weight + 0.01, 4)}})
    assert below.status_code == 201
    net = api.http.post(f"{V1}/alerts/rules", headers=h, json={"name": "Net long", "condition": {
        "metric": "net_exposure", "operator": "greater_than", "threshold": -10}})
    assert net.status_code == 201

    got = api.http.get(f"{V1}/alerts", headers=h).json()["data"]
    by_rule = {a.get("rule_id"): a for a in got}
    hit = by_rule[above.json()["data"]["rule_id"]]
    assert hit["priority"] == "critical" and sorted(hit["positions_affected"]) == sorted(p["id"] for p in same_sector)
    assert abs(hit["value"] - weight) < 1e-6
    assert below.json()["data"]["rule_id"] not in by_rule
    net_value = sum(p["value"] for p in positions) / total
    assert abs(by_rule[net.json()["data"]["rule_id"]]["value"] - net_value) < 1e-6
    critical = api.http.get(f"{V1}/alerts", params={"priority": "critical"}, headers=h).json()["data"]
    assert [a["rule_id"] for a in critical] == [hit["rule_id"]]
    summary = api.http.get(f"{V1}/portfolio/summary", headers=h).json()["data"]
    assert summary["active_alerts"] == len(got) == 3

    # bad rules name their field; rules are private
    for body, field in (({"name": "x", "condition": {"metric": "luck", "operator": "greater_than", "threshold": 1}}, "condition.metric"),
                        ({"name": "x", "condition": {"metric": "sector_exposure", "operator": "greater_than", "threshold": 1}}, "condition.sector"),
                        ({"name": "x", "condition": {"metric": "gross_exposure", "operator": "above", "threshold": 1}}, "condition.operator"),
                        ({"name": "x", "condition": {"metric": "gross_exposure", "operator": "less_than", "threshold": "a"}}, "condition.threshold"),
                        ({"name": "", "condition": {}}, "name"), ([1], "body")):
        assert_error(api.http.post(f"{V1}/alerts/rules", json=body, headers=h), 400, "INVALID_PARAMETER", field=field)
    assert_error(api.http.get(f"{V1}/alerts", params={"priority": "urgent"}, headers=h), 400, "INVALID_PARAMETER", field="priority")
    other = api.headers("alert_eve")
    assert api.http.get(f"{V1}/alerts/rules", headers=other).json()["data"] == []
    assert_error(api.http.delete(f"{V1}/alerts/rules/{hit['rule_id']}", headers=other), 404, "NOT_FOUND")
    assert api.http.delete(f"{V1}/alerts/rules/{hit['rule_id']}", headers=h).status_code == 200
    assert len(api.http.get(f"{V1}/alerts/rules", headers=h).json()["data"]) == 2
