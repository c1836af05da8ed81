"""``reduce_exposure``'s trades on a hand-made book (pure: no catalog, no market data)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from services.ai import execute

# Technology: 100 AAPL at $200 (20,000), 50 MSFT at $400 (20,000), 2 NVDA calls with notional
# 2 x 100 x $50 = 10,000; Energy: -100 XOM at $100 (-10,000). Total value 60,000 (cash 20,000).
BOOK = SimpleNamespace(equity=60_000.0, positions=pd.DataFrame({
    "position_id": ["p1", "p2", "p3", "p4"], "symbol": ["AAPL", "MSFT", "NVDA  270115C00050000", "XOM"],
    "underlying": ["AAPL", "MSFT", "NVDA", "XOM"], "sector": ["Technology", "Technology", "Technology", "Energy"],
    "tags": [["core"], ["core"], [], ["hedges"]], "quantity": [100.0, 50.0, 2.0, -100.0],
    "notional_exposure": [20_000.0, 20_000.0, 10_000.0, -10_000.0]}))


def test_proportional_by_hand():
    got = execute.reduction_trades(BOOK, {"sector": "Technology", "target_exposure": 0.25, "method": "proportional"})
    # gross 50,000; target 0.25 x 60,000 = 15,000; k = 0.3: 30 AAPL, 15 MSFT, 0.6 -> 1 call
    assert got["current_gross"] == 50_000 and got["target_gross"] == 15_000
    assert {t["position_id"]: t["to"] for t in got["trades"]} == {"p1": 30.0, "p2": 15.0, "p3": 1.0}
    assert got["expected_gross_after"] == 6_000 + 6_000 + 5_000  # the call rounds up by 0.4 contract
    assert got["expected_share_after"] == pytest.approx(17_000 / 60_000, abs=1e-6)


def test_largest_first_by_hand():
    got = execute.reduction_trades(BOOK, {"tag": "core", "target_notional": 25_000.0, "method": "largest_first"})
    # core gross 40,000 -> 25,000: sell 15,000 from the largest first (AAPL and MSFT tie: AAPL first)
    assert [(t["position_id"], t["to"], t["side"]) for t in got["trades"]] == [("p1", 25.0, "SELL")]
    short = execute.reduction_trades(BOOK, {"ticker": "XOM", "target_exposure": 0.1, "method": "largest_first"})
    # a short is reduced by buying back: |-10,000| -> 6,000
    assert [(t["to"], t["side"], t["quantity"]) for t in short["trades"]] == [(-60.0, "BUY", 40.0)]


def test_nothing_to_do_and_bad_input():
    assert execute.reduction_trades(BOOK, {"sector": "Technology", "target_exposure": 0.9, "method": "proportional"})["trades"] == []
    with pytest.raises(execute.AIInputError) as err:
        execute.reduction_trades(BOOK, {"sector": "Utilities", "target_exposure": 0.1})
    assert err.value.field == "parameters.sector" and err.value.suggestions
    for params, field in (({"target_exposure": 0.1}, "parameters.sector"),
                          ({"sector": "Technology"}, "parameters.target_exposure"),
                          ({"sector": "Technology", "target_exposure": 1.5}, "parameters.target_exposure"),
                          ({"sector": "Technology", "target_exposure": 0.1, "method": "random"}, "parameters.method")):
        with pytest.raises(execute.AIInputError) as err:
            execute.check("reduce_exposure", params)
        assert err.value.field == field
    assert execute.check("reduce_tech_exposure", {"target_exposure": 0.15})["parameters"]["sector"] == "Technology"
