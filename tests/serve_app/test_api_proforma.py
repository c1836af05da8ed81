"""ProForma through the live API (SQLite and PostgreSQL): modeling sessions, their impact
recomputed independently, per-position risk against numpy, single trades, trade lists read
back with simplefix, portfolio exports (Excel read back with openpyxl)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time

import numpy as np
import pandas as pd
import pytest
import simplefix

from tests.serve_app.test_api_platform import V1, assert_error

EXPIRY = None


def _expiry(days: int = 200) -> str:
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


def _seed(api, user: str) -> dict:
    """A small book: two longs, a short, a long call; returns ticker -> position id."""
    h = api.headers(user)
    ids = {}
    for body in ({"ticker": "AAPL", "quantity": 100, "price": 150},
                 {"ticker": "MSFT", "quantity": 40, "price": 300},
                 {"ticker": "XOM", "quantity": -50, "price": 95},
                 {"ticker": "NVDA", "type": "LC", "quantity": 2, "strike": 500, "expiration": _expiry(), "price": 20}):
        resp = api.http.post(f"{V1}/positions", json=body, headers=h)
        assert resp.status_code == 201, resp.text
        ids[body["ticker"]] = resp.json()["data"]["id"]
    return ids


def _session(api, user: str, name: str = "what if") -> str:
    resp = api.http.post(f"{V1}/modeling/sessions", json={"name": name, "base_portfolio": "current"}, headers=api.headers(user))
    assert resp.status_code == 201, resp.text
    return resp.json()["data"]["session_id"]


def test_sessions_crud_all_or_nothing_and_ownership(api):
    user = "pf_sessions"
    h = api.headers(user)
    ids = _seed(api, user)
    sid = _session(api, user)
    listed = api.http.get(f"{V1}/modeling/sessions", headers=h).json()["data"]["sessions"]
    assert [s["session_id"] for s in listed] == [sid] and listed[0]["position_count"] == 4

    got = api.http.get(f"{V1}/modeling/sessions/{sid}", headers=h)
    assert got.status_code == 200, got.text
    data = got.json()["data"]
    assert data["changes"] == [] and data["impact"]["total_value"]["change"] == 0
    assert data["original_portfolio"]["exposures"] == data["modified_portfolio"]["exposures"]

    # every bad row named, nothing written
    past = (dt.date.today() - dt.timedelta(days=3)).isoformat()
    bad = api.http.put(f"{V1}/modeling/sessions/{sid}/positions", headers=h, json={"modifications": [
        {"position_id": "pos_nope", "new_quantity": 5},
        {"position_id": ids["AAPL"], "new_quantity": -10},
        {"position_id": "new", "ticker": "SPY", "type": "LP", "quantity": 1, "strike": 400, "expiration": past},
        {"position_id": ids["MSFT"], "new_quantity": 10},
    ]})
    body = assert_error(bad, 400, "INVALID_PARAMETER", field="modifications[0].position_id")
    assert [e["field"] for e in body["errors"]] == ["modifications[0].position_id", "modifications[1].new_quantity",
                                                    "modifications[2].expiration"]
    assert api.http.get(f"{V1}/modeling/sessions/{sid}", headers=h).json()["data"]["changes"] == []
    assert_error(api.http.put(f"{V1}/modeling/sessions/{sid}/positions", headers=h, json={"modifications": []}),
                 400, "INVALID_PARAMETER", field="modifications")

    spx = "SPY" + (dt.date.today() + dt.timedelta(days=90)).strftime("%y%m%d") + "P00400000"
    ok = api.http.put(f"{V1}/modeling/sessions/{sid}/positions", headers=h, json={"modifications": [
        {"position_id": ids["AAPL"], "new_quantity": 60},
        {"position_id": ids["XOM"], "action": "close"},
        {"position_id": ids["MSFT"], "new_quantity": -20, "allow_flip": True},
        {"position_id": "new", "ticker": "QQQ", "quantity": 10},
        {"position_id": "new", "ticker": spx, "quantity": 3},
    ]})
    assert ok.status_code == 200, ok.text
    changes = {c["symbol"]: c for c in ok.json()["data"]["changes"]}
    assert (changes["AAPL"]["action"], changes["AAPL"]["from"], changes["AAPL"]["to"]) == ("modify", 100, 60)
    assert (changes["XOM"]["action"], changes["XOM"]["to"]) == ("close", 0)
    assert changes["MSFT"]["to"] == -20 and changes["QQQ"]["action"] == "add"
    assert changes[spx.replace("P00400000", "P00400000")]["to"] == 3
    modified = {p["ticker"]: p for p in ok.json()["data"]["modified_portfolio"]["positions"]}
    assert modified["MSFT"]["type"] == "SHORT" and "XOM" not in modified and modified[spx]["type"] == "LP"

    # another user: 404 everywhere; the session is a catalog row (survives a restart)
    other = api.headers("pf_sessions_other")
    for resp in (api.http.get(f"{V1}/modeling/sessions/{sid}", headers=other),
                 api.http.put(f"{V1}/modeling/sessions/{sid}/positions", headers=other,
                              json={"modifications": [{"position_id": ids["AAPL"], "new_quantity": 1}]}),
                 api.http.post(f"{V1}/modeling/sessions/{sid}/reset", headers=other),
                 api.http.get(f"{V1}/modeling/sessions/{sid}/export", headers=other),
                 api.http.delete(f"{V1}/modeling/sessions/{sid}", headers=other)):
        assert_error(resp, 404, "NOT_FOUND")
    assert api.http.get(f"{V1}/modeling/sessions", headers=other).json()["data"]["sessions"] == []
    from cluster.catalog import ModelingSession

    with api.catalog.session() as s:
        row = s.get(ModelingSession, sid)
        assert row is not None and len(row.modified) == 5 and len(row.original) == 4

    reset = api.http.post(f"{V1}/modeling/sessions/{sid}/reset", headers=h)
    assert reset.status_code == 200 and reset.json()["data"]["changes"] == []
    assert api.http.delete(f"{V1}/modeling/sessions/{sid}", headers=h).status_code == 204
    assert_error(api.http.get(f"{V1}/modeling/sessions/{sid}", headers=h), 404, "NOT_FOUND")
    assert_error(api.http.post(f"{V1}/modeling/sessions", headers=h, json={"name": "x", "base_portfolio": "pf_nope"}),
                 400, "INVALID_PARAMETER", field="base_portfolio")


def _close(a, b, tol=0.02):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol + 1e-9 * max(abs(a), abs(b))


def test_impact_matches_the_engines_on_a_real_book(api):
    """The modified book's figures equal those of a real portfolio holding the same positions
    (GET /portfolio/exposures, /risk/greeks, /risk/factors, /risk/var, POST /risk/scenarios),
    and its exposures equal a hand sum over the positions."""
    user, twin = "pf_impact", "pf_impact_twin"
    h, ht = api.headers(user), api.headers(twin)
    ids = _seed(api, user)
    sid = _session(api, user)
    resp = api.http.put(f"{V1}/modeling/sessions/{sid}/positions", headers=h, json={"modifications": [
        {"position_id": ids["AAPL"], "new_quantity": 250},
        {"position_id": ids["XOM"], "action": "close"},
        {"position_id": "new", "ticker": "JPM", "quantity": -30},
    ]})
    assert resp.status_code == 200, resp.text
    # the twin: a real portfolio with the modified positions
    for p in resp.json()["data"]["modified_portfolio"]["positions"]:
        body = {"ticker": p["ticker"], "quantity": p["quantity"], "price": p["entry_price"] or 1.0}
        assert api.http.post(f"{V1}/positions", json=body, headers=ht).status_code == 201
    # every figure below is priced at the minute it is read: read the session and the twin within
    # one clock minute (in session prices move by the minute), again if the minute turned
    for _attempt in range(3):
        minute = int(time.time() // 60)
        data = api.http.get(f"{V1}/modeling/sessions/{sid}", headers=h).json()["data"]
        rows = api.http.get(f"{V1}/positions", headers=ht).json()["data"]["positions"]
        exposures = api.http.get(f"{V1}/portfolio/exposures", headers=ht).json()["data"]["totals"]
        greeks = api.http.get(f"{V1}/risk/greeks", headers=ht).json()["data"]["current"]
        factors = api.http.get(f"{V1}/risk/factors", params={"refresh": True}, headers=ht).json()["data"]
        var = api.http.get(f"{V1}/risk/var", params={"paths": 20000, "seed": 0, "refresh": True}, headers=ht).json()["data"]
        templates = [t["id"] for t in api.http.get(f"{V1}/risk/scenarios/templates", headers=ht).json()["data"]]
        stress = api.http.post(f"{V1}/risk/scenarios", params={"refresh": True}, json={"scenario_ids": templates},
                               headers=ht).json()["data"]["scenarios"]
        real = api.http.get(f"{V1}/portfolio/exposures", headers=h).json()["data"]["totals"]
        if int(time.time() // 60) == minute:
            break
    after = data["modified_portfolio"]
    # hand sums from the twin's priced rows
    values = np.array([r["value"] for r in rows])
    assert _close(after["exposures"]["notional"]["gross"], float(np.abs(values).sum()), 0.1)
    assert _close(after["exposures"]["notional"]["long"], float(values[values > 0].sum()), 0.1)
    delta = np.array([r["delta_exposure"] for r in rows])
    assert _close(after["exposures"]["delta"]["net"], float(delta.sum()), 0.1)
    tech = sum(r["value"] for r in rows if r["sector"] == "Technology")
    assert _close(after["by_sector"]["Technology"]["net"], tech, 0.1)

    for m in ("notional", "delta"):
        for s in ("long", "short", "gross", "net"):
            assert _close(after["exposures"][m][s], exposures[m][f"{s}_exposure"])
    for g in ("delta", "gamma", "theta", "vega", "rho"):
        assert _close(after["greeks"][g], greeks[g], 1e-3)
    assert len(factors) == 8
    for f in factors:
        assert _close(after["factors"][f["factor_name"]], f["exposure_dollars"], 0.05)
    hist = {round(r["level"] * 100): r["dollars"] for r in var["var"] if r["method"] == "historical" and r["horizon_days"] == 1}
    mc = {round(r["level"] * 100): r["dollars"] for r in var["monte_carlo"]["results"][0]["var"]}
    assert var["monte_carlo"]["results"][0]["horizon_days"] == 1
    for lv in (95, 99):
        assert _close(after["var"][f"historical_{lv}"], hist[lv], 0.05)
        assert _close(after["var"][f"monte_carlo_{lv}"], mc[lv], 0.05)
    assert set(after["stress"]) == set(templates)
    for s in stress:
        assert _close(after["stress"][s["id"]], s["pnl"], 0.05)
    # the impact is after - before, the original the user's real book
    imp = data["impact"]
    assert _close(imp["exposures"]["notional"]["net"]["before"], real["notional"]["net_exposure"])
    assert _close(imp["exposures"]["notional"]["net"]["change"],
                  after["exposures"]["notional"]["net"] - real["notional"]["net_exposure"])
    assert _close(imp["greeks"]["delta"]["change"], imp["greeks"]["delta"]["after"] - imp["greeks"]["delta"]["before"], 1e-3)


def test_risk_metrics_match_a_direct_covariance(api):
    user = "pf_riskmetrics"
    h = api.headers(user)
    _seed(api, user)
    resp = api.http.get(f"{V1}/positions", headers=h)
    assert resp.status_code == 200, resp.text
    rows = resp.json()["data"]["positions"]
    # independent: closes from the provider, simple returns, last 252 sessions, numpy covariance
    from cluster.market import market_provider
    from services.risk.service import session_date

    provider = market_provider(api.settings)
    end = session_date(api.http.get(f"{V1}/portfolio", headers=h).json()["data"]["as_of"])
    tickers = sorted({r["underlying"] for r in rows} | {"SPY"})
    closes = {}
    for t in tickers:
        bars = provider.daily_bars(t, end - dt.timedelta(days=420), end)
        idx = pd.DatetimeIndex(bars.index).tz_convert("America/New_York").tz_localize(None).normalize()
        closes[t] = pd.Series(bars["close"].to_numpy(), index=idx)
    frame = pd.DataFrame(closes).sort_index()
    frame = frame[frame.index <= pd.Timestamp(end)].dropna(how="all")
    returns = (frame / frame.shift(1) - 1.0).iloc[-252:]
    X = np.column_stack([returns[r["underlying"]].fillna(0.0).to_numpy() for r in rows])
    w = np.array([r["delta_exposure"] for r in rows])
    cov = np.cov(X, rowvar=False)
    expected = w * (cov @ w) / (w @ cov @ w)
    got = np.array([r["risk_metrics"]["risk_contribution"] for r in rows])
    # delta exposures reach JSON rounded; in the session (prices move by the minute) that moves
    # the smallest contributions by ~1e-8 absolute
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert abs(got.sum() - 1.0) < 1e-6
    spy = returns["SPY"].to_numpy()
    for r in rows:
        x = returns[r["underlying"]].to_numpy()
        ok = np.isfinite(x) & np.isfinite(spy)
        beta = np.cov(x[ok], spy[ok])[0, 1] / np.var(spy[ok], ddof=1)
        assert abs(r["risk_metrics"]["beta"] - beta) < 1e-5
    # the session rows carry them too
    sid = _session(api, user)
    positions = api.http.get(f"{V1}/modeling/sessions/{sid}", headers=h).json()["data"]["modified_portfolio"]["positions"]
    assert all(p["risk_metrics"]["risk_contribution"] is not None for p in positions)


def test_single_trade_whatif(api):
    user = "pf_trade"
    h = api.headers(user)
    _seed(api, user)
    resp = api.http.post(f"{V1}/proforma/trade", headers=h,
                         json={"symbol": "MSFT", "action": "buy", "quantity": 200, "include_stress_scenarios": True})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    msft = api.http.get(f"{V1}/positions", headers=h).json()["data"]["positions"]
    price = next(p["price"] for p in msft if p["ticker"] == "MSFT")
    assert _close(data["impact"]["exposures"]["notional"]["long"]["change"], 200 * price, 0.05)
    assert data["changes"][0]["to"] == 240 and data["impact"]["stress"]
    assert _close(data["impact"]["cash_required"], 200 * price, 0.05)
    no_stress = api.http.post(f"{V1}/proforma/trade", headers=h, json={"symbol": "TSLA", "action": "sell_short",
                                                                     "quantity": 10, "include_stress_scenarios": False})
    assert no_stress.status_code == 200 and no_stress.json()["data"]["impact"]["stress"] is None
    assert_error(api.http.post(f"{V1}/proforma/trade", headers=h, json={"symbol": "TSLA", "action": "sell", "quantity": 5}),
                 400, "INVALID_PARAMETER", field="action")
    assert_error(api.http.post(f"{V1}/proforma/trade", headers=h, json={"symbol": "MSFT", "action": "sell", "quantity": 500}),
                 400, "INVALID_PARAMETER", field="quantity")
    assert_error(api.http.post(f"{V1}/proforma/trade", headers=h, json={"symbol": "MSFT", "action": "buy", "quantity": 0}),
                 400, "INVALID_PARAMETER", field="quantity")
    accepted = api.http.post(f"{V1}/proforma/trade", params={"mode": "async"}, headers=h,
                             json={"symbol": "MSFT", "action": "buy", "quantity": 200})
    assert accepted.status_code == 202, accepted.text
    job = api.wait_job(accepted.json()["job_id"], user)
    assert job["status"] == "completed", job
    # nothing was written
    assert next(p["quantity"] for p in api.http.get(f"{V1}/positions", headers=h).json()["data"]["positions"]
                if p["ticker"] == "MSFT") == 40


def _fix_messages(raw: bytes) -> list[simplefix.FixMessage]:
    parser = simplefix.FixParser()
    parser.append_buffer(raw)
    out = []
    while (msg := parser.get_message()) is not None:
        out.append(msg)
    return out


def _checksum_ok(line: bytes) -> bool:
    body, _, tail = line.rpartition(b"10=")
    return int(tail.strip(b"\x01")) == sum(body) % 256


def test_trade_lists_csv_json_fix_and_download(api):
    user = "pf_export"
    h = api.headers(user)
    ids = _seed(api, user)
    sid = _session(api, user)
    put = (dt.date.today() + dt.timedelta(days=120))
    occ = "SPY" + put.strftime("%y%m%d") + "P00400000"
    resp = api.http.put(f"{V1}/modeling/sessions/{sid}/positions", headers=h, json={"modifications": [
        {"position_id": ids["AAPL"], "new_quantity": 60},
        {"position_id": ids["XOM"], "new_quantity": 0},
        {"position_id": "new", "ticker": occ, "quantity": 10},
    ]})
    assert resp.status_code == 200, resp.text
    csv_resp = api.http.get(f"{V1}/modeling/sessions/{sid}/export", params={"format": "csv"}, headers=h)
    assert csv_resp.status_code == 200, csv_resp.text
    data = csv_resp.json()["data"]
    orders = {o["symbol"]: o for o in data["trades"]}
    assert (orders["AAPL"]["action"], orders["AAPL"]["quantity"], orders["AAPL"]["order_type"]) == ("SELL", 40, "MARKET")
    assert orders["XOM"]["action"] == "BUY_TO_COVER" and orders["XOM"]["quantity"] == 50
    assert orders[occ]["action"] == "BUY_TO_OPEN" and orders[occ]["order_type"] == "LIMIT" and orders[occ]["limit_price"] > 0
    file = api.http.get(data["export_url"], headers=h)
    assert file.status_code == 200 and file.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(file.text)))
    assert {r["symbol"]: r["action"] for r in rows} == {o["symbol"]: o["action"] for o in data["trades"]}
    assert_error(api.http.get(data["export_url"], headers=api.headers("pf_export_other")), 404, "NOT_FOUND")

    fix = api.http.get(f"{V1}/modeling/sessions/{sid}/export", params={"format": "fix"}, headers=h).json()["data"]
    raw = api.http.get(fix["export_url"], headers=h).content
    lines = [line for line in raw.split(b"\n") if line]
    assert len(lines) == 3 and all(_checksum_ok(line) for line in lines)
    msgs = {m.get(55).decode() + ("/opt" if m.get(167) else ""): m for m in _fix_messages(raw)}
    for m in msgs.values():
        assert m.get(8) == b"FIX.4.4" and m.get(35) == b"D" and m.get(11) and m.get(60) and m.get(59) == b"0"
        body = m.encode().split(b"\x01", 2)[2].rpartition(b"10=")[0]
        assert int(m.get(9)) == len(body)
    assert msgs["AAPL"].get(54) == b"2" and msgs["AAPL"].get(38) == b"40" and msgs["AAPL"].get(40) == b"1"
    assert msgs["XOM"].get(54) == b"1"
    opt = msgs["SPY/opt"]
    assert (opt.get(167), opt.get(201), opt.get(202), opt.get(541), opt.get(311), opt.get(40)) == (
        b"OPT", b"0", b"400", put.strftime("%Y%m%d").encode(), b"SPY", b"2")
    assert float(opt.get(44)) > 0

    js = api.http.get(f"{V1}/modeling/sessions/{sid}/export", params={"format": "json"}, headers=h).json()["data"]
    assert api.http.get(js["export_url"], headers=h).json() == js["trades"]
    assert_error(api.http.get(f"{V1}/modeling/sessions/{sid}/export", params={"format": "xml"}, headers=h),
                 400, "INVALID_PARAMETER", field="format")

    posted = api.http.post(f"{V1}/export/trades", headers=h, json={
        "trades": [{"symbol": "AAPL", "action": "SELL", "quantity": 200}, {"symbol": occ, "action": "BUY_TO_OPEN", "quantity": 2}],
        "format": "fix", "broker": "generic"})
    assert posted.status_code == 200, posted.text
    msgs = _fix_messages(api.http.get(posted.json()["data"]["export_url"], headers=h).content)
    assert [m.get(54) for m in msgs] == [b"2", b"1"] and msgs[1].get(167) == b"OPT"
    bad = api.http.post(f"{V1}/export/trades", headers=h, json={
        "trades": [{"symbol": "AAPL", "action": "HOLD", "quantity": 1}, {"symbol": "AAPL", "action": "BUY_TO_OPEN", "quantity": 1}],
        "format": "csv"})
    body = assert_error(bad, 400, "INVALID_PARAMETER", field="trades[0].action")
    assert [e["field"] for e in body["errors"]] == ["trades[0].action", "trades[1].action"]
    assert_error(api.http.post(f"{V1}/export/trades", headers=h, json={"trades": [{"symbol": "AAPL", "action": "SELL", "quantity": 1}],
                                                                     "format": "pdf"}), 400, "INVALID_PARAMETER", field="format")


def test_portfolio_export_csv_json_and_excel_job(api):
    user = "pf_portfolio_export"
    h = api.headers(user)
    _seed(api, user)
    js = api.http.get(f"{V1}/export/portfolio", params={"format": "json", "include": "positions,greeks"}, headers=h)
    assert js.status_code == 200, js.text
    sections = js.json()["data"]["sections"]
    assert set(sections) == {"positions", "greeks"} and len(sections["positions"]) == 4
    assert sections["greeks"][-1]["id"] == "TOTAL"
    assert abs(sum(r["delta"] for r in sections["greeks"][:-1]) - sections["greeks"][-1]["delta"]) < 1e-2
    text = api.http.get(f"{V1}/export/portfolio", params={"format": "csv"}, headers=h)
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/csv")
    assert "# positions" in text.text and "# exposures" in text.text
    assert_error(api.http.get(f"{V1}/export/portfolio", params={"format": "pdf"}, headers=h), 400, "INVALID_PARAMETER", field="format")
    assert_error(api.http.get(f"{V1}/export/portfolio", params={"include": "secrets"}, headers=h), 400, "INVALID_PARAMETER", field="include")
    accepted = api.http.get(f"{V1}/export/portfolio", params={"format": "excel"}, headers=h)
    assert accepted.status_code == 202, accepted.text
    job = api.wait_job(accepted.json()["job_id"], user)
    assert job["status"] == "completed", job
    result = api.http.get(f"{V1}/jobs/{job['job_id']}/result", headers=h)
    url = result.json()["data"]["result"]["export_url"] if "result" in result.json()["data"] else result.json()["data"]["export_url"]
    xlsx = api.http.get(url, headers=h)
    assert xlsx.status_code == 200
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(xlsx.content))
    assert wb.sheetnames == ["positions", "greeks", "exposures"]
    header = [c.value for c in wb["positions"][1]]
    assert header[:2] == ["id", "ticker"] and wb["positions"].max_row == 5


ETFS = ("SPY", "QQQ", "IWM", "XLK", "XLF", "XLV", "XLE", "XLI", "XLY", "XLP", "XLU", "XLB", "XLRE", "XLC")


def _hedge_round(api, user, h, budget):
    """One hedge job, the oracle's figures and the hedge applied to a new session."""
    import itertools

    accepted = api.http.post(f"{V1}/proforma/hedge", headers=h, json={
        "risk_to_hedge": "sector_technology", "budget": budget,
        "constraints": {"max_positions": 2, "allowed_instruments": ["etfs"]}})
    assert accepted.status_code == 202, accepted.text
    job = api.wait_job(accepted.json()["job_id"], user, timeout=600)
    assert job["status"] == "completed", job
    result = api.http.get(f"{V1}/jobs/{job['job_id']}/result", headers=h).json()["data"]["result"]
    best = result["hedges"][0]
    assert best["rank"] == 1 and best["cost"] <= budget and len(best["trades"]) <= 2
    # the oracle: exposures from the API, ETF prices and sectors from the market data
    sectors = {g["group"]: g["delta"]["net"] for g in
               api.http.get(f"{V1}/portfolio/exposures", headers=h).json()["data"]["by_sector"]}
    r0 = sectors["Technology"]
    from cluster.market import market_provider

    provider = market_provider(api.settings)
    quotes = provider.latest_quote(list(ETFS))
    price = np.array([quotes[t]["last"] for t in ETFS])
    effect = np.array([p if provider.reference(t)["sector"] == "Technology" else 0.0 for t, p in zip(ETFS, price)])
    brute = abs(r0)
    for k in (1, 2):
        for subset in itertools.combinations(range(len(ETFS)), k):
            ranges = [np.arange(-int(budget // price[j]), int(budget // price[j]) + 1) for j in subset]
            sizes = np.stack([g.ravel() for g in np.meshgrid(*ranges, indexing="ij")], axis=1).astype(float)
            ok = np.abs(sizes) @ price[list(subset)] <= budget
            if ok.any():
                brute = min(brute, float(np.abs(r0 + sizes[ok] @ effect[list(subset)]).min()))
    sid = _session(api, user, "hedged")
    applied = api.http.post(f"{V1}/modeling/sessions/{sid}/apply-hedge", headers=h, json={"job_id": job["job_id"], "rank": 1})
    assert applied.status_code == 200, applied.text
    tech = applied.json()["data"]["impact"]["by_sector"]["Technology"]["delta_net"]["after"]
    return {"job_id": job["job_id"], "result": result, "session_id": sid}, best, r0, brute, tech


@pytest.mark.postgresql_only
def test_hedge_search_beats_brute_force_and_applies_to_a_session(api):
    """A tech-heavy book hedged with ETFs only (max 2 positions): the Ray/HiGHS search leaves
    no more Technology exposure than an exhaustive search over the same 14 ETFs and every
    integer size within the budget; the best hedge applies to a session in one call."""
    user = "pf_hedge"
    h = api.headers(user)
    for body in ({"ticker": "AAPL", "quantity": 100, "price": 150}, {"ticker": "MSFT", "quantity": 40, "price": 300},
                 {"ticker": "NVDA", "quantity": 50, "price": 100}):
        assert api.http.post(f"{V1}/positions", json=body, headers=h).status_code == 201
    assert_error(api.http.post(f"{V1}/proforma/hedge", headers=h, json={"risk_to_hedge": "sector_technology", "budget": 0}),
                 400, "INVALID_PARAMETER", field="budget")
    assert_error(api.http.post(f"{V1}/proforma/hedge", headers=h, json={"risk_to_hedge": "astrology", "budget": 100}),
                 400, "INVALID_PARAMETER", field="risk_to_hedge")
    budget = 20000.0
    # Every figure below is priced at the minute it is read: while the market is open a minute
    # may turn between the job and the checks, so the round is run again when it did.
    for _attempt in range(2):
        minute = int(time.time() // 60)
        job, best, r0, brute, tech = _hedge_round(api, user, h, budget)
        same_minute = int(time.time() // 60) == minute
        if same_minute:
            break
    # to the cent within one minute; across a minute turn (a loaded machine in session) the
    # figures may differ by that minute's price move: 0.2 % of the exposure
    exact, tol = (0.05, 1.0) if same_minute else (2e-3 * abs(r0), 2e-3 * abs(r0))
    assert abs(job["result"]["risk_before"] - r0) < exact
    assert abs(best["risk_after"]) <= brute + tol
    assert abs(r0) - abs(best["risk_after"]) >= abs(r0) - brute - tol
    # applied to a session: the session's own engines see the same exposure left
    assert abs(tech - best["risk_after"]) < tol
    sid = job["session_id"]
    assert_error(api.http.post(f"{V1}/modeling/sessions/{sid}/apply-hedge", headers=h, json={"job_id": "job_nope"}),
                 400, "INVALID_PARAMETER", field="job_id")
