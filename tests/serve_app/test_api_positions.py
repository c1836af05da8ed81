"""Positions, tags and CSV upload through the live API (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from tests.serve_app.test_api_platform import V1, assert_error


def _add(api, user, body):
    return api.http.post(f"{V1}/positions", json=body, headers=api.headers(user))


def test_add_list_patch_delete_and_validation(api):
    user = "pos_owner"
    h = api.headers(user)
    aapl = _add(api, user, {"ticker": "AAPL", "type": "LONG", "quantity": 500, "price": 178.5,
                            "tags": ["#momentum", "#tech", "#strategy:tech-longs"],
                            "ai_metadata": {"source": "ai_conversation"}})
    assert aapl.status_code == 201, aapl.text
    created = aapl.json()["data"]
    assert created["ticker"] == "AAPL" and created["type"] == "LONG" and created["quantity"] == 500
    assert created["tags"] == ["#momentum", "#strategy:tech-longs", "#tech"]
    expiry = (dt.date.today() + dt.timedelta(days=200)).isoformat()
    opt = _add(api, user, {"ticker": "MSFT", "type": "SP", "quantity": -3, "strike": 300, "expiration": expiry, "price": 4.2})
    assert opt.status_code == 201, opt.text
    assert opt.json()["data"]["ticker"].startswith("MSFT") and opt.json()["data"]["multiplier"] == 100
    short = _add(api, user, {"ticker": "XOM", "type": "SHORT", "quantity": -100, "price": 95})
    assert short.status_code == 201

    assert_error(_add(api, user, {"ticker": "AAPL", "type": "LONG", "quantity": 1, "price": 1}), 409, "CONFLICT", field="ticker")
    assert_error(_add(api, user, {"ticker": "IBM", "type": "SHORT", "quantity": 10, "price": 1}), 400, "INVALID_PARAMETER", field="quantity")
    assert_error(_add(api, user, {"ticker": "IBM", "type": "LC", "quantity": 1, "price": 1, "expiration": expiry}), 400, "INVALID_PARAMETER", field="strike")
    assert_error(_add(api, user, {"ticker": "IBM", "type": "LONG", "quantity": 1}), 400, "INVALID_PARAMETER", field="price")
    assert_error(_add(api, user, {"ticker": "IBM", "type": "XX", "quantity": 1, "price": 1}), 400, "INVALID_PARAMETER", field="type")
    assert_error(api.http.post(f"{V1}/positions", json=[1, 2], headers=h), 400, "INVALID_PARAMETER", field="body")

    listed = api.http.get(f"{V1}/positions", params={"limit": 2, "page": 1}, headers=h)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["meta"]["page"] == 1 and body["meta"]["limit"] == 2 and body["meta"]["total"] == 3 and body["meta"]["pages"] == 2
    assert len(body["data"]["positions"]) == 2 and body["data"]["summary"]["total_positions"] == 3
    rows = {p["ticker"]: p for p in api.http.get(f"{V1}/positions", headers=h).json()["data"]["positions"]}
    values = [p["value"] for p in rows.values()]
    summary = api.http.get(f"{V1}/positions", headers=h).json()["data"]["summary"]
    assert summary["gross_exposure"] == round(sum(abs(v) for v in values), 2) or abs(summary["gross_exposure"] - sum(abs(v) for v in values)) < 0.05
    assert rows["AAPL"]["value"] == round(500 * rows["AAPL"]["price"], 2) or abs(rows["AAPL"]["value"] - 500 * rows["AAPL"]["price"]) < 0.05
    assert rows["AAPL"]["strategy"] == "tech-longs"  # from the #strategy: tag
    only = api.http.get(f"{V1}/positions", params={"fields": "ticker,value"}, headers=h).json()["data"]["positions"][0]
    assert set(only) == {"id", "ticker", "value"}
    assert_error(api.http.get(f"{V1}/positions", params={"fields": "ticker,secret"}, headers=h), 400, "INVALID_PARAMETER", field="fields")
    assert_error(api.http.get(f"{V1}/positions", params={"groupBy": "colour"}, headers=h), 400, "INVALID_PARAMETER", field="groupBy")
    assert_error(api.http.get(f"{V1}/positions", params={"limit": 0}, headers=h), 400, "INVALID_PARAMETER", field="limit")

    grouped = api.http.get(f"{V1}/positions", params={"groupBy": "type"}, headers=h).json()["data"]["groups"]
    assert {g["group"]: g["count"] for g in grouped} == {"LONG": 1, "SHORT": 1, "SP": 1}
    strategies = api.http.get(f"{V1}/strategies", headers=h).json()["data"]
    assert [s["name"] for s in strategies["strategies"]] == ["tech-longs"] and strategies["unassigned"]["count"] == 2

    pid = created["id"]
    patched = api.http.patch(f"{V1}/positions/{pid}", json={"quantity": 600, "strategy": "core"}, headers=h)
    assert patched.status_code == 200 and patched.json()["data"]["quantity"] == 600
    after = {p["ticker"]: p for p in api.http.get(f"{V1}/positions", headers=h).json()["data"]["positions"]}
    assert after["AAPL"]["quantity"] == 600 and after["AAPL"]["strategy"] == "core"  # the cached book was refreshed
    assert_error(api.http.patch(f"{V1}/positions/{pid}", json={"quantity": -5}, headers=h), 400, "INVALID_PARAMETER", field="quantity")
    assert_error(api.http.patch(f"{V1}/positions/{pid}", json={"ticker": "X"}, headers=h), 400, "INVALID_PARAMETER", field="ticker")
    assert api.http.delete(f"{V1}/positions/{short.json()['data']['id']}", headers=h).status_code == 204
    assert api.http.get(f"{V1}/positions", headers=h).json()["data"]["summary"]["total_positions"] == 2


def test_another_users_position_is_404(api):
    mine = _add(api, "pos_alice", {"ticker": "AAPL", "type": "LONG", "quantity": 10, "price": 100}).json()["data"]["id"]
    h = api.headers("pos_mallory")
    assert_error(api.http.get(f"{V1}/positions/{mine}", headers=h), 404, "NOT_FOUND")
    assert_error(api.http.patch(f"{V1}/positions/{mine}", json={"quantity": 1}, headers=h), 404, "NOT_FOUND")
    assert_error(api.http.delete(f"{V1}/positions/{mine}", headers=h), 404, "NOT_FOUND")
    assert_error(api.http.get(f"{V1}/positions/{mine}/tags", headers=h), 404, "NOT_FOUND")
    assert_error(api.http.put(f"{V1}/positions/{mine}/tags", json={"tags": ["x"]}, headers=h), 404, "NOT_FOUND")
    assert api.http.get(f"{V1}/positions", headers=h).json()["data"]["summary"]["total_positions"] == 0
    portfolio_id = api.http.get(f"{V1}/portfolio", headers=api.headers("pos_alice")).json()["data"]["portfolio_id"]
    assert_error(api.http.get(f"{V1}/portfolio", params={"portfolio_id": portfolio_id}, headers=h), 404, "NOT_FOUND")
    assert_error(api.http.get(f"{V1}/positions"), 401, "UNAUTHORIZED")


def test_tags_crud_and_tag_filters(api):
    user = "tag_user"
    h = api.headers(user)
    ids = {}
    for ticker, tags in (("AAPL", ["tech", "core"]), ("MSFT", ["tech"]), ("XOM", ["energy", "core"]), ("JNJ", [])):
        resp = _add(api, user, {"ticker": ticker, "quantity": 10, "price": 50, "tags": tags})
        assert resp.status_code == 201, resp.text
        ids[ticker] = resp.json()["data"]["id"]

    def tickers(**params):
        resp = api.http.get(f"{V1}/positions", params=params, headers=h)
        assert resp.status_code == 200, resp.text
        return sorted(p["ticker"] for p in resp.json()["data"]["positions"])

    assert tickers(tags="tech,core") == ["AAPL", "MSFT", "XOM"]
    assert tickers(tags="tech,core", tagMode="any") == ["AAPL", "MSFT", "XOM"]
    assert tickers(tags="tech,core", tagMode="all") == ["AAPL"]
    assert tickers(tags="energy") == ["XOM"]
    assert_error(api.http.get(f"{V1}/positions", params={"tags": "x", "tagMode": "some"}, headers=h), 400, "INVALID_PARAMETER", field="tagMode")

    tags = {t["name"]: t for t in api.http.get(f"{V1}/tags", headers=h).json()["data"]["tags"]}
    assert {n: t["position_count"] for n, t in tags.items()} == {"core": 2, "energy": 1, "tech": 2}
    new = api.http.post(f"{V1}/tags", json={"name": "hedge", "color": "#F44336"}, headers=h)
    assert new.status_code == 201 and new.json()["data"]["name"] == "hedge"
    assert_error(api.http.post(f"{V1}/tags", json={"name": "hedge"}, headers=h), 409, "CONFLICT", field="name")
    assert_error(api.http.post(f"{V1}/tags", json={"name": "  "}, headers=h), 400, "INVALID_PARAMETER", field="name")
    renamed = api.http.put(f"{V1}/tags/{tags['tech']['id']}", json={"name": "technology"}, headers=h)
    assert renamed.status_code == 200 and renamed.json()["data"]["position_count"] == 2
    assert tickers(tags="technology") == ["AAPL", "MSFT"]  # rename refreshes the cached book

    put = api.http.put(f"{V1}/positions/{ids['JNJ']}/tags", json={"tag_ids": [new.json()["data"]["id"]], "tags": ["core"]}, headers=h)
    assert put.status_code == 200, put.text
    assert [t["name"] for t in put.json()["data"]["tags"]] == ["core", "hedge"]
    got = api.http.get(f"{V1}/positions/{ids['JNJ']}/tags", headers=h).json()["data"]["tags"]
    assert [t["name"] for t in got] == ["core", "hedge"]
    assert tickers(tags="core") == ["AAPL", "JNJ", "XOM"]
    other = api.http.post(f"{V1}/tags", json={"name": "theirs"}, headers=api.headers("tag_other")).json()["data"]["id"]
    assert_error(api.http.put(f"{V1}/positions/{ids['JNJ']}/tags", json={"tag_ids": [other]}, headers=h), 400, "INVALID_PARAMETER", field="tag_ids")
    assert_error(api.http.put(f"{V1}/tags/{other}", json={"name": "mine"}, headers=h), 404, "NOT_FOUND")
    assert_error(api.http.delete(f"{V1}/tags/{other}", headers=h), 404, "NOT_FOUND")

    assert api.http.delete(f"{V1}/tags/{tags['core']['id']}", headers=h).status_code == 204
    assert tickers(tags="core") == []
    by_tag = api.http.get(f"{V1}/positions/grouped", params={"by": "tag"}, headers=h).json()["data"]["groups"]
    assert {g["group"]: g["count"] for g in by_tag} == {"energy": 1, "hedge": 1, "technology": 2}


CSV_GOOD = """Ticker,Quantity,Entry_Price,Entry_Date,Tags
AAPL,100,150.25,2024-03-01,"#tech, core"
XOM,-200,95,2024-03-01,energy
SPY270115C00500000,2,12.5,2024-03-01,
"""


def _upload(api, user, content: bytes, name="book.csv"):
    return api.http.post(f"{V1}/portfolio/upload", files={"file": (name, content, "text/csv")}, headers=api.headers(user))


def test_upload_all_or_nothing(api):
    user = "csv_user"
    h = api.headers(user)
    first = _upload(api, user, CSV_GOOD.encode())
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["positions_created"] == 3 and body["positions_updated"] == 0 and body["portfolio_id"]
    rows = {p["ticker"]: p for p in api.http.get(f"{V1}/positions", headers=h).json()["data"]["positions"]}
    assert rows["XOM"]["type"] == "SHORT" and rows["SPY270115C00500000"]["type"] == "LC"
    assert rows["AAPL"]["tags"] == ["#tech", "core"] and rows["AAPL"]["entry_price"] == 150.25

    again = _upload(api, user, b"ticker,quantity,entry_price\nAAPL,120,151\nMSFT,5,300\n")
    assert again.status_code == 200 and (again.json()["positions_created"], again.json()["positions_updated"]) == (1, 1)
    rows = {p["ticker"]: p for p in api.http.get(f"{V1}/positions", headers=h).json()["data"]["positions"]}
    assert rows["AAPL"]["quantity"] == 120 and rows["AAPL"]["tags"] == ["#tech", "core"] and len(rows) == 4

    bad = ("ticker,quantity,entry_price,entry_date\n"
           "NVDA,10,100,2024-01-02\n"
           "AMD,ten,100,2024-01-02\n"
           "GOOGL,5,0,2024-01-02\n"
           f"META,5,10,{(dt.date.today() + dt.timedelta(days=5)).isoformat()}\n"
           "SPY270115Q00500000,1,1,2024-01-02\n")
    resp = _upload(api, user, bad.encode())
    err = assert_error(resp, 400, "INVALID_FILE")
    assert {(e["line"], e["field"]) for e in err["errors"]} == {(3, "quantity"), (4, "entry_price"), (5, "entry_date"), (6, "ticker")}
    assert all(e["message"].startswith(f"line {e['line']}") for e in err["errors"])
    tickers = {p["ticker"] for p in api.http.get(f"{V1}/positions", headers=h).json()["data"]["positions"]}
    assert "NVDA" not in tickers and len(tickers) == 4  # the good row was not written either

    assert_error(_upload(api, user, b"symbol,qty\nAAPL,1\n"), 400, "INVALID_FILE", field="ticker")
    big = b"ticker,quantity,entry_price\n" + b"AAPL,1,1\n" * (11 * 1024 * 1024 // 9)
    assert_error(_upload(api, user, big), 413, "PAYLOAD_TOO_LARGE")
    assert_error(api.http.post(f"{V1}/portfolio/upload", headers=h), 400, "INVALID_PARAMETER", field="file")
