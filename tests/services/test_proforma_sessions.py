"""Session modifications (no Ray): validated all together, every bad row named, rows unchanged;
changes between two books; the single-trade rules."""

from __future__ import annotations

import datetime as dt

import pytest

from services.proforma import sessions
from services.proforma.service import trade_modifications


def _row(pid, symbol, qty, **kw):
    return {"position_id": pid, "symbol": symbol, "underlying": symbol, "type": "LONG" if qty > 0 else "SHORT",
            "quantity": float(qty), "entry_price": 10.0, "strike": None, "expiry": None, "option_right": None,
            "multiplier": 1, "strategy": None, "tags": [], "entry_date": None, **kw}


ROWS = [_row("p1", "AAPL", 100), _row("p2", "XOM", -50)]


def test_every_bad_row_is_named_and_nothing_changes():
    past = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    before = [dict(r) for r in ROWS]
    with pytest.raises(sessions.SessionInputError) as err:
        sessions.apply_modifications(ROWS, [
            {"position_id": "nope", "new_quantity": 1},
            {"position_id": "p1", "new_quantity": -5},
            {"position_id": "new", "ticker": "SPY", "type": "LP", "quantity": 1, "strike": 400, "expiration": past},
            {"position_id": "p2", "new_quantity": -10},
            {"position_id": "p2", "action": "close"},
            {"position_id": "new", "ticker": "AAPL", "quantity": 5},
            {"position_id": "new", "ticker": "IBM", "quantity": "lots"},
            "not an object",
        ], provider=None)
    assert [f for f, _ in err.value.errors] == [
        "modifications[0].position_id", "modifications[1].new_quantity", "modifications[2].expiration",
        "modifications[4].position_id", "modifications[5].ticker", "modifications[6].quantity", "modifications[7]"]
    assert ROWS == before


def test_close_flip_and_changes():
    out = sessions.apply_modifications(ROWS, [{"position_id": "p1", "new_quantity": -20, "allow_flip": True},
                                              {"position_id": "p2", "action": "close"}], provider=None)
    assert [(r["position_id"], r["type"], r["quantity"]) for r in out] == [("p1", "SHORT", -20.0)]
    assert sessions.changes(ROWS, out) == [
        {"action": "modify", "position_id": "p1", "symbol": "AAPL", "field": "quantity", "from": 100.0, "to": -20.0},
        {"action": "close", "position_id": "p2", "symbol": "XOM", "field": "quantity", "from": -50.0, "to": 0.0}]


def test_single_trade_rules():
    assert trade_modifications(ROWS, {"symbol": "aapl", "action": "sell", "quantity": 40}) == [
        {"position_id": "p1", "new_quantity": 60.0}]
    assert trade_modifications(ROWS, {"symbol": "MSFT", "action": "buy", "quantity": 3}) == [
        {"position_id": "new", "ticker": "MSFT", "quantity": 3.0}]
    for body, field in (({"symbol": "AAPL", "action": "sell", "quantity": 101}, "quantity"),
                        ({"symbol": "MSFT", "action": "sell", "quantity": 1}, "action"),
                        ({"symbol": "XOM", "action": "buy", "quantity": 1}, "action"),
                        ({"symbol": "AAPL", "action": "hold", "quantity": 1}, "action"),
                        ({"symbol": "AAPL", "action": "buy", "quantity": 0}, "quantity"),
                        ({"symbol": "", "action": "buy", "quantity": 1}, "symbol")):
        with pytest.raises(sessions.SessionInputError) as err:
            trade_modifications(ROWS, body)
        assert err.value.field == field
