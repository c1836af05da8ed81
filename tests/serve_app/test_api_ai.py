"""AI agent APIs through the live app (SQLite and PostgreSQL): interpret on the user's own book,
execute with confirmation (a ProForma session that brings Technology to 15 %, checked by hand),
confirmations per user / single use / expiring, agent context, the agent audit and workflows
run as jobs (with a real webhook receiver for ``alert.triggered``)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.serve_app.test_api_platform import V1, assert_error

AGENT = {"X-AI-Agent-ID": "agent-007", "X-Session-ID": "sess-1"}
# stocks in three sectors; two Energy options (one near expiry) to test the expiry answer
BOOK = ({"ticker": "AAPL", "quantity": 100, "price": 150}, {"ticker": "MSFT", "quantity": 40, "price": 300},
        {"ticker": "NVDA", "quantity": 30, "price": 100}, {"ticker": "JPM", "quantity": 60, "price": 150},
        {"ticker": "XOM", "quantity": -50, "price": 95})


def _options():
    today = dt.date.today()
    return ({"ticker": "XOM", "type": "LC", "quantity": 2, "strike": 110, "expiration": (today + dt.timedelta(days=9)).isoformat(), "price": 3},
            {"ticker": "XOM", "type": "LP", "quantity": 3, "strike": 100, "expiration": (today + dt.timedelta(days=200)).isoformat(), "price": 5})


def _seed(api, user: str) -> dict:
    h = api.headers(user)
    for body in BOOK + _options():
        resp = api.http.post(f"{V1}/positions", json=body, headers=h)
        assert resp.status_code == 201, resp.text
    return h


@pytest.fixture(scope="module")
def ai_user(api):
    user = f"ai_pm_{api.backend}"
    return user, _seed(api, user)


def _positions(api, h) -> list[dict]:
    resp = api.http.get(f"{V1}/positions", params={"limit": 100}, headers=h)
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]["positions"]


def test_interpret_answers_from_the_book(api, ai_user):
    user, h = ai_user
    resp = api.http.post(f"{V1}/ai/interpret", json={"query": "Reduce my tech exposure to 15 %", "context": {"current_view": "dashboard"}},
                         headers={**h, **AGENT})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["interpretation"]["intent"] == "reduce_exposure"
    assert data["interpretation"]["parameters"] == {"sector": "Technology", "method": "proportional", "target_exposure": 0.15}
    assert data["interpretation"]["confidence"] >= 0.6 and data["backend"] == "rules"
    assert data["actions"][0] == {"type": "navigate_ui", "route": "/ui/navigate",
                                  "body": {"target": "modeling_tab", "params": {}, "ai_context": {"reason": "reduce_exposure"}}}
    # the share quoted is Technology's gross notional over the book's total value, by hand
    rows = _positions(api, h)
    total = sum(r["value"] for r in rows)  # a new user's book holds no cash
    tech = sum(abs(r["notional_exposure"]) for r in rows if r["sector"] == "Technology")
    assert data["facts"]["subject_share_of_equity"] == pytest.approx(tech / total, abs=2e-3)  # prices may tick between calls
    assert data["response"].startswith(f"Technology is {data['facts']['subject_share_of_equity'] * 100:.1f} % of equity")

    # expiring options: one of the two XOM options expires within 10 days; its share of gamma
    resp = api.http.post(f"{V1}/ai/interpret", json={"query": "which options expire in the next 10 days?"}, headers=h)
    data = resp.json()["data"]
    assert data["interpretation"]["intent"] == "expiring_options"
    rows = _positions(api, h)
    near = [r for r in rows if r["expiration"] and dt.date.fromisoformat(r["expiration"]) <= dt.date.today() + dt.timedelta(days=10)]
    gammas = [abs(r["position_greeks"]["gamma"] or 0.0) for r in rows]
    share = sum(abs(r["position_greeks"]["gamma"]) for r in near) / sum(gammas)
    assert data["facts"]["expiring"]["count"] == 1 and data["facts"]["expiring"]["position_ids"] == [near[0]["id"]]
    assert data["facts"]["expiring"]["gamma_share"] == pytest.approx(share, abs=0.02)
    assert data["response"].startswith("1 position expires between") and "% of portfolio gamma" in data["response"]
    assert [a["type"] for a in data["actions"]] == ["navigate_ui", "apply_filter", "highlight_elements"]

    # a ticker the universe does not know: a question, not a guess; a refusal; bad input
    resp = api.http.post(f"{V1}/ai/interpret", json={"query": "what if I buy 100 QQZZX"}, headers=h)
    data = resp.json()["data"]
    assert data["interpretation"]["intent"] == "clarify" and "QQZZX" in data["response"] and data["actions"] == []
    data = api.http.post(f"{V1}/ai/interpret", json={"query": "send an order to my broker for 100 AAPL"}, headers=h).json()["data"]
    assert data["interpretation"]["intent"] == "unsupported" and data["refusal"]
    assert_error(api.http.post(f"{V1}/ai/interpret", json={"query": ""}, headers=h), 400, "INVALID_PARAMETER", field="query")
    assert_error(api.http.post(f"{V1}/ai/interpret", json={"query": "hi"}, headers={**h, "X-User-Context": "%%%"}), 400,
                 "INVALID_PARAMETER", field="X-User-Context")


def test_execute_reduce_tech_to_15_percent_by_hand(api, ai_user):
    user, h = ai_user
    other = api.headers(f"ai_other_{api.backend}")
    body = {"intent": "reduce_exposure", "parameters": {"sector": "Technology", "target_exposure": 0.15, "method": "proportional"},
            "confirmation_required": True}
    resp = api.http.post(f"{V1}/ai/execute", json=body, headers={**h, **AGENT})
    assert resp.status_code == 200, resp.text
    pending = resp.json()["data"]
    assert pending["status"] == "pending_confirmation" and pending["confirmation_id"].startswith("confirm_")
    reduction = pending["plan"]["reduction"]
    assert pending["plan"]["changes_positions"] is False
    # nothing changed yet
    before_rows = {r["id"]: r for r in _positions(api, h)}
    assert {r["quantity"] for r in before_rows.values() if r["ticker"] == "AAPL"} == {100}

    # another user cannot see or use it
    assert_error(api.http.post(f"{V1}/ai/execute/{pending['confirmation_id']}/confirm", headers=other), 404, "NOT_FOUND")
    resp = api.http.post(f"{V1}/ai/execute/{pending['confirmation_id']}/confirm", headers={**h, **AGENT})
    assert resp.status_code == 200, resp.text
    result = resp.json()["data"]["result"]
    # single use
    assert_error(api.http.post(f"{V1}/ai/execute/{pending['confirmation_id']}/confirm", headers=h), 409, "CONFLICT",
                 field="confirmation_id")

    sid = result["session_id"]
    session = api.http.get(f"{V1}/modeling/sessions/{sid}", headers=h).json()["data"]
    # hand computation on the plan's figures: k = 0.15 x total value / Technology gross; every
    # Technology stock's quantity times k, rounded to whole shares
    k = 0.15 * reduction["total_value"] / reduction["current_gross"]
    tech = {r["id"]: r for r in before_rows.values() if r["sector"] == "Technology"}
    expected = {pid: round(r["quantity"] * k) for pid, r in tech.items()}
    got = {c["position_id"]: c["to"] for c in session["changes"]}
    assert got == expected and len(got) == 3
    # the session's own figures: Technology gross after / total value before = 15 % +- rounding
    after_gross = session["modified_portfolio"]["by_sector"]["Technology"]["gross"]
    total_before = session["original_portfolio"]["total_value"]
    positions_after = {r["id"]: r for r in session["modified_portfolio"]["positions"]}
    assert sum(abs(positions_after[pid]["value"]) for pid in expected) == pytest.approx(after_gross, abs=0.05)
    rounding = sum(0.5 * abs(positions_after[pid]["value"] / positions_after[pid]["quantity"]) for pid in expected)
    assert abs(after_gross / total_before - 0.15) <= rounding / total_before + 0.002, (after_gross, total_before)
    # the real book is untouched
    assert {r["id"]: r["quantity"] for r in _positions(api, h)} == {pid: r["quantity"] for pid, r in before_rows.items()}


def test_confirmation_rules_and_positions_change_only_when_confirmed(api):
    user = f"ai_apply_{api.backend}"
    h = _seed(api, user)
    body = {"intent": "reduce_tech_exposure", "parameters": {"target_exposure": 0.30, "method": "largest_first",
                                                              "apply_to": "portfolio"}, "confirmation_required": False}
    err = assert_error(api.http.post(f"{V1}/ai/execute", json=body, headers=h), 409, "CONFIRMATION_REQUIRED",
                       field="confirmation_required")
    assert err["errors"][0]["ai_suggestions"]
    before = {r["id"]: r["quantity"] for r in _positions(api, h)}
    # expired confirmations are refused
    pending = api.http.post(f"{V1}/ai/execute", json={**body, "confirmation_required": True}, headers=h).json()["data"]
    from sqlalchemy import update

    from cluster.catalog import AIConfirmation
    from cluster.catalog.models import utcnow

    with api.catalog.session() as s:
        s.execute(update(AIConfirmation).where(AIConfirmation.id == pending["confirmation_id"])
                  .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert_error(api.http.post(f"{V1}/ai/execute/{pending['confirmation_id']}/confirm", headers=h), 409, "CONFLICT")
    assert {r["id"]: r["quantity"] for r in _positions(api, h)} == before
    # a fresh one, confirmed: the largest Technology positions are cut in the book itself
    pending = api.http.post(f"{V1}/ai/execute", json={**body, "confirmation_required": True}, headers=h).json()["data"]
    trades = pending["plan"]["reduction"]["trades"]
    resp = api.http.post(f"{V1}/ai/execute/{pending['confirmation_id']}/confirm", headers=h)
    assert resp.status_code == 200, resp.text
    after = {r["id"]: r["quantity"] for r in _positions(api, h)}
    for t in trades:
        assert after.get(t["position_id"], 0.0) == t["to"]
    assert all(after[pid] == q for pid, q in before.items() if pid not in {t["position_id"] for t in trades})

    # unknown and Lab-only intents say what to do next
    err = assert_error(api.http.post(f"{V1}/ai/execute", json={"intent": "make_me_rich"}, headers=h), 400, "INVALID_PARAMETER",
                       field="intent")
    assert "POST /ai/interpret" in err["errors"][0]["ai_suggestions"][0]
    err = assert_error(api.http.post(f"{V1}/ai/execute", json={"intent": "run_backtest"}, headers=h), 400, "INVALID_PARAMETER",
                       field="parameters.model_id")
    assert any("/models" in s for s in err["errors"][0]["ai_suggestions"])
    # read-only intents run at once; mode=async makes the same a job
    resp = api.http.post(f"{V1}/ai/execute", json={"intent": "analyze_risk", "confirmation_required": False}, headers=h)
    assert resp.status_code == 200 and resp.json()["data"]["result"]["facts"]["positions"] == len(after)
    resp = api.http.post(f"{V1}/ai/execute", params={"mode": "async"}, json={"intent": "expiring_options",
                         "parameters": {"days_ahead": 10}, "confirmation_required": False}, headers=h)
    assert resp.status_code == 202, resp.text
    job = api.wait_job(resp.json()["job_id"], user)
    assert job["status"] == "completed", job
    result = api.http.get(f"{V1}/jobs/{resp.json()['job_id']}/result", headers=h).json()["data"]["result"]
    assert result["facts"]["expiring"]["count"] == 1
    # an alert rule, through the alerts service
    resp = api.http.post(f"{V1}/ai/execute", json={"intent": "set_alert_rule", "confirmation_required": False, "parameters": {
        "metric": "sector_exposure", "sector": "Energy", "operator": "greater_than", "threshold": 0.3}}, headers=h)
    assert resp.status_code == 200, resp.text
    rule_id = resp.json()["data"]["result"]["rule"]["rule_id"]
    assert rule_id in [r["rule_id"] for r in api.http.get(f"{V1}/alerts/rules", headers=h).json()["data"]]
    # job intents answer 202; their bad parameters are 400s naming the agent's field
    resp = api.http.post(f"{V1}/ai/execute", json={"intent": "generate_report", "confirmation_required": False,
                                                  "parameters": {"type": "portfolio_overview", "format": "html"}}, headers=h)
    assert resp.status_code == 202 and resp.json()["report_id"], resp.text
    assert api.wait_job(resp.json()["job_id"], user)["status"] == "completed"
    assert_error(api.http.post(f"{V1}/ai/execute", json={"intent": "hedge_risk", "confirmation_required": False,
                                                        "parameters": {"risk": "moon_phase"}}, headers=h),
                 400, "INVALID_PARAMETER", field="parameters.risk")


@pytest.mark.postgresql_only  # the Lab's own routes run it; their catalog paths are tested on both back ends
def test_lab_intents_run_the_labs_own_backtest_and_sweep(api):
    """"Backtest a z-score strategy on MSFT": interpret finds the ticker and the strategy; execute
    resolves the caller's model on MSFT and starts the Lab's own backtest job, whose figures
    equal a POST /backtest of the same strategy; run_sweep sweeps the strategy's grid."""
    from tests.serve_app.test_api_lab import _backtest, _create
    from tests.serve_app.test_api_sweeps import _wait_sweep

    user = f"ai_lab_{api.backend}"
    h = api.headers(user)
    got = api.http.post(f"{V1}/ai/interpret", json={"query": "backtest a z-score strategy on MSFT"},
                        headers=h).json()["data"]["interpretation"]
    assert got["intent"] == "run_backtest" and got["parameters"] == {"ticker": "MSFT", "strategy": "zscore"}, got
    # no model on MSFT yet: the agent is told what to do next
    err = assert_error(api.http.post(f"{V1}/ai/execute", json={"intent": "run_backtest", "parameters": got["parameters"],
                                                             "confirmation_required": False}, headers=h),
                       400, "INVALID_PARAMETER", field="parameters.ticker")
    assert any("POST /api/v1/models" in s for s in err["errors"][0]["ai_suggestions"])

    mid = _create(api, user, "swingsigma_default", {"ticker": "MSFT"})["model_id"]
    built = api.http.post(f"{V1}/build_matrix", json={"model_id": mid, "start_date": "2022-01-01", "end_date": "2023-12-31"},
                          headers=h)
    assert built.status_code == 200, built.text
    strategy = {"name": "zscore", "params": {"window": 10, "entry": 1.0, "exit": 0.0}}
    resp = api.http.post(f"{V1}/ai/execute", json={"intent": "run_backtest", "confirmation_required": False,
                                                  "parameters": {"ticker": "msft", "strategy": strategy}}, headers=h)
    assert resp.status_code == 202, resp.text
    started = resp.json()
    assert started["model_id"] == mid and started["result_url"] == f"/api/v1/backtest/{started['backtest_id']}"
    assert api.wait_job(started["job_id"], user, timeout=240)["status"] == "completed"
    by_agent = api.http.get(f"{V1}/backtest/{started['backtest_id']}", headers=h).json()
    direct = _backtest(api, user, {"model_id": mid, "strategy": strategy})
    assert by_agent["config"]["strategy"] == direct["config"]["strategy"] == strategy
    for key in ("sharpe", "cum_ret", "max_drawdown", "trades", "win_rate", "final_equity"):
        assert by_agent["metrics"][key] == pytest.approx(direct["metrics"][key], rel=1e-12, abs=1e-12), key

    # a sweep of the strategy: the grid given, or the documented default grid
    resp = api.http.post(f"{V1}/ai/execute", json={"intent": "run_sweep", "confirmation_required": False, "parameters": {
        "model_id": mid, "strategy": "zscore", "grid": {"window": [10, 20], "entry": [1.0], "exit": [0.0]}}}, headers=h)
    assert resp.status_code == 202, resp.text
    assert resp.json()["total_configs"] == 2
    done = _wait_sweep(api, user, resp.json()["sweep_id"])
    assert done["status"] == "completed" and done["done_configs"] == 2, done
    planned = api.http.post(f"{V1}/ai/execute", json={"intent": "run_sweep", "confirmation_required": True,
                                                     "parameters": {"ticker": "MSFT", "strategy": "rsi"}}, headers=h)
    assert planned.status_code == 200 and mid in planned.json()["data"]["plan"]["summary"], planned.text
    assert_error(api.http.post(f"{V1}/ai/execute", json={"intent": "run_sweep", "confirmation_required": False, "parameters": {
        "model_id": mid, "strategy": "zscore", "grid": {"window": [0]}}}, headers=h), 400, "INVALID_PARAMETER",
        field="parameters.grid.window")
    assert_error(api.http.post(f"{V1}/ai/execute", json={"intent": "run_sweep", "confirmation_required": False,
                                                        "parameters": {"model_id": mid, "strategy": "astrology"}}, headers=h),
                 400, "INVALID_PARAMETER", field="parameters.strategy")
    assert_error(api.http.post(f"{V1}/ai/execute", json={"intent": "run_backtest", "confirmation_required": False,
                                                        "parameters": {"model_id": mid, "start_date": "someday"}}, headers=h),
                 400, "INVALID_PARAMETER", field="parameters.start_date")
    # another user's model is nobody's
    assert_error(api.http.post(f"{V1}/ai/execute", json={"intent": "run_backtest", "confirmation_required": False,
                                                        "parameters": {"model_id": mid}}, headers=api.headers("ai_other")),
                 404, "NOT_FOUND")


def test_context_per_agent_session_and_audit(api, ai_user):
    user, h = ai_user
    other_name = f"ai_ctx_other_{api.backend}"
    other = api.headers(other_name)
    saved = api.http.post(f"{V1}/ai/context/save", json={"context_type": "conversation", "data": {"user_concern": "tech_exposure"}},
                          headers={**h, **AGENT})
    assert saved.status_code == 200, saved.text
    api.http.post(f"{V1}/ai/context/save", json={"context_type": "conversation", "data": {"user_concern": "gamma"}},
                  headers={**h, "X-AI-Agent-ID": "agent-007", "X-Session-ID": "sess-2"})
    got = api.http.get(f"{V1}/ai/context", headers={**h, **AGENT}).json()["data"]["contexts"]
    assert [c["data"] for c in got] == [{"user_concern": "tech_exposure"}]
    assert api.http.get(f"{V1}/ai/context", headers={**other, **AGENT}).json()["data"]["contexts"] == []
    err = assert_error(api.http.get(f"{V1}/ai/context", headers=h), 400, "INVALID_PARAMETER", field="X-AI-Agent-ID")
    assert err["errors"][0]["ai_suggestions"]
    err = assert_error(api.http.get(f"{V1}/ai/context", headers=AGENT), 401, "UNAUTHORIZED")
    assert "POST /api/v1/auth/token" in err["errors"][0]["ai_suggestions"][0]
    bad = api.http.post(f"{V1}/ai/context/save", json={"context_type": "bad type!", "data": {}}, headers={**h, **AGENT})
    assert bad.status_code == 400

    # audit: every agent write, with agent, session, route and outcome; own rows only
    rows = api.http.get(f"{V1}/audit", params={"kind": "agent", "session_id": "sess-1"}, headers=h).json()["data"]["events"]
    routes = [(r["route"], r["status"]) for r in rows]
    assert ("/ai/context/save", 200) in routes and ("/ai/context/save", 400) in routes
    assert all(r["agent_id"] == "agent-007" and r["actor"] == user for r in rows)
    assert ("/ai/interpret", 200) not in routes  # interpret only reads
    assert api.http.get(f"{V1}/audit", headers=other).json()["data"]["total"] == 0
    admin = api.headers(f"ai_admin_{api.backend}", role="admin")
    everyone = api.http.get(f"{V1}/audit", params={"kind": "agent", "limit": 1000}, headers=admin).json()["data"]["events"]
    assert {r["actor"] for r in everyone} >= {user}
    # the admin audit of user actions is not flooded by agent rows
    admin_rows = api.http.get(f"{V1}/admin/users/audit", headers=admin).json()["data"]["events"]
    assert all(r["agent_id"] is None for r in admin_rows)


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802
        _Hook.received.append(json.loads(self.rfile.read(int(self.headers.get("content-length", 0)))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_workflow_runs_as_a_job_with_alerts_and_a_run_log(api, ai_user):
    user, h = ai_user
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        hooked = api.http.post(f"{V1}/webhooks", json={"url": f"http://127.0.0.1:{hook.server_port}/hook",
                                                       "events": ["alert.triggered"], "secret": "s" * 24}, headers=h)
        assert hooked.status_code == 201, hooked.text
        rule = api.http.post(f"{V1}/alerts/rules", json={"name": "Tech > 20%", "condition": {
            "metric": "sector_exposure", "sector": "Technology", "operator": "greater_than", "threshold": 0.20}}, headers=h)
        assert rule.status_code == 201, rule.text
        rule_id = rule.json()["data"]["rule_id"]
        body = {"name": "Daily Risk Check", "trigger": {"type": "time", "schedule": "0 9 * * *"},
                "actions": [{"type": "analyze_expiration_risk", "parameters": {"days_ahead": 10}},
                            {"type": "check_risk_limits", "parameters": {"alert_on_breach": True}},
                            {"type": "generate_signals"}]}
        created = api.http.post(f"{V1}/ai/workflow/create", json=body, headers={**h, **AGENT})
        assert created.status_code == 201, created.text
        wf = created.json()["data"]
        assert wf["next_run"] and wf["trigger"]["schedule"] == "0 9 * * *"
        assert_error(api.http.post(f"{V1}/ai/workflow/create", json={**body, "trigger": {"type": "time", "schedule": "61 * * * *"}},
                                   headers=h), 400, "INVALID_PARAMETER", field="trigger.schedule")
        assert_error(api.http.post(f"{V1}/ai/workflow/create", json={**body, "actions": [
            {"type": "generate_report", "parameters": {"type": "horoscope"}}]}, headers=h), 400, "INVALID_PARAMETER",
            field="actions[0].parameters.type")
        assert_error(api.http.get(f"{V1}/ai/workflow/{wf['workflow_id']}", headers=api.headers(f"ai_other_{api.backend}")),
                     404, "NOT_FOUND")
        started = api.http.post(f"{V1}/ai/workflow/{wf['workflow_id']}/run", headers=h)
        assert started.status_code == 202, started.text
        assert api.wait_job(started.json()["job_id"], user)["status"] == "completed"
        runs = api.http.get(f"{V1}/ai/workflow/{wf['workflow_id']}/runs", headers=h).json()["data"]["runs"]
        assert len(runs) == 1 and runs[0]["status"] == "completed" and runs[0]["trigger"] == "manual"
        expiring, limits, signals = runs[0]["results"]
        assert signals == {"type": "generate_signals", "status": "ok", "result": {"signals": []}}  # no Lab models yet
        assert expiring["status"] == "ok" and expiring["result"]["expiring"]["count"] == 1
        assert limits["status"] == "ok" and f"alert_{rule_id}" in [a["id"] for a in limits["result"]["alerts"]]
        assert limits["result"]["webhook_deliveries"]
        deadline = time.monotonic() + 30
        while not any(p["event"] == "alert.triggered" and p["data"]["alert"].get("rule_id") == rule_id for p in _Hook.received):
            assert time.monotonic() < deadline, _Hook.received
            time.sleep(0.2)

        # the scheduler's tick: a due fire time becomes a job and a run-log row, once
        from services.ai import workflows

        tick = workflows.run_due(api.catalog, api.settings, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
        mine = [t for t in tick if t["workflow_id"] == wf["workflow_id"]]
        assert len(mine) == 1
        assert api.wait_job(mine[0]["job_id"], user)["status"] == "completed"
        assert workflows.run_due(api.catalog, api.settings, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)) == []
        runs = api.http.get(f"{V1}/ai/workflow/{wf['workflow_id']}/runs", headers=h).json()["data"]["runs"]
        assert runs[0]["trigger"] == "schedule" and runs[0]["status"] == "completed"

        listed = api.http.get(f"{V1}/ai/workflows", headers=h).json()["data"]["workflows"]
        assert wf["workflow_id"] in [w["workflow_id"] for w in listed]
        assert api.http.delete(f"{V1}/ai/workflow/{wf['workflow_id']}", headers=h).status_code == 204
        assert_error(api.http.get(f"{V1}/ai/workflow/{wf['workflow_id']}", headers=h), 404, "NOT_FOUND")
        assert api.http.delete(f"{V1}/alerts/rules/{rule_id}", headers=h).status_code == 200
    finally:
        hook.shutdown()
