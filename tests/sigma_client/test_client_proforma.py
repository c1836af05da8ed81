"""The Python client's ProForma methods against the live app: session -> modify -> impact ->
export FIX, a single-trade what-if, the portfolio export, errors naming the field."""

from __future__ import annotations

import pytest
import simplefix

from sigma_client import Client, SigmaAPIError
from tests.conftest import TEST_PASSWORD


def test_client_proforma_walkthrough(api):
    api.user("client_proforma")
    c = Client(api.base_url)
    c.login("client_proforma", TEST_PASSWORD)
    c.request("POST", "/positions", json={"ticker": "AAPL", "quantity": 100, "price": 150})
    c.request("POST", "/positions", json={"ticker": "XOM", "quantity": -20, "price": 90})
    session = c.create_session("trim tech")
    sid = session["session_id"]
    detail = c.session(sid)
    aapl = next(p for p in detail["original_portfolio"]["positions"] if p["ticker"] == "AAPL")
    out = c.modify_session(sid, [{"position_id": aapl["id"], "new_quantity": 40}])
    assert out["changes"][0]["to"] == 40 and out["impact"]["exposures"]["notional"]["long"]["change"] < 0
    with pytest.raises(SigmaAPIError) as err:
        c.modify_session(sid, [{"position_id": aapl["id"], "new_quantity": -5}])
    assert err.value.status == 400 and err.value.field == "modifications[0].new_quantity"
    fix = c.export_session(sid, "fix")
    parser = simplefix.FixParser()
    parser.append_buffer(c.download(fix["export_url"]))
    msg = parser.get_message()
    assert msg.get(35) == b"D" and msg.get(55) == b"AAPL" and msg.get(54) == b"2" and msg.get(38) == b"60"
    assert [s["session_id"] for s in c.sessions()["sessions"]] == [sid]
    assert c.reset_session(sid)["changes"] == []
    c.delete_session(sid)
    with pytest.raises(SigmaAPIError) as err:
        c.session(sid)
    assert err.value.status == 404
    trade = c.trade_impact("MSFT", "buy", 10, include_stress_scenarios=False)
    assert trade["impact"]["exposures"]["notional"]["long"]["change"] > 0
    text = c.export_portfolio("csv")
    assert text.startswith("# positions")
    assert c.export_portfolio("json", ["greeks"])["include"] == ["greeks"]
    assert c.export_trades([{"symbol": "AAPL", "action": "SELL", "quantity": 1}], "csv")["order_count"] == 1
