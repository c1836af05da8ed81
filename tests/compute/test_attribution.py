"""P&L attribution and daily snapshots on a hand-worked book."""

import numpy as np
import pandas as pd
import pytest

from compute.attribution import daily_snapshot, pnl_attribution, position_pnl


@pytest.fixture
def book():
    return pd.DataFrame(
        {
            "position_id": ["p1", "p2", "p3", "p4"],
            "symbol": ["AAPL", "ZM", "SPY250919C00460000", "MSFT250919P00380000"],
            "position_type": ["LONG", "SHORT", "LC", "SP"],
            "quantity": [100.0, -200.0, 2.0, -1.0],
            "previous_price": [200.0, 70.0, 10.0, 4.0],
            "price": [205.0, 71.0, 12.5, 3.0],
            "underlying_price": [205.0, 71.0, 465.0, 400.0],
            "tags": [["Long Momentum", "Core"], ["Short Value Traps"], ["Options Overlay"], []],
        }
    )


def test_position_pnl_is_quantity_times_multiplier_times_price_change():
    np.testing.assert_allclose(position_pnl([100, -3], [1, 100], [50.0, 2.0], [51.0, 2.5]), [100.0, -150.0])


def test_attribution_by_position_and_type(book):
    # p1 +500, p2 -200, p3 2 x 100 x 2.5 = +500, p4 -1 x 100 x -1 = +100  -> total 900
    result = pnl_attribution(book, "position", date="2024-06-27")
    assert result["total_pl"] == pytest.approx(900.0)
    rows = {r["id"]: r for r in result["positions"]}
    assert rows["p1"]["pnl"] == pytest.approx(500.0)
    assert rows["p1"]["pnl_percent"] == pytest.approx(2.5)  # 500 / 20,000
    assert rows["p2"]["pnl_percent"] == pytest.approx(-200 / 14_000 * 100)
    assert rows["p3"]["contribution_percent"] == pytest.approx(500 / 900 * 100)
    assert sum(r["contribution_percent"] for r in result["positions"]) == pytest.approx(100.0)
    assert result["by_type"]["SHORT"] == {"pnl": pytest.approx(-200.0), "contribution_percent": pytest.approx(-200 / 9)}
    assert set(result["by_type"]) == {"LONG", "SHORT", "LC", "SP"}
    assert result["date"] == "2024-06-27"
    assert [r["id"] for r in result["positions"]][0] in {"p1", "p3"}  # largest |pnl| first


def test_attribution_by_tag_counts_multi_tag_positions_in_full(book):
    result = pnl_attribution(book, "tag")
    tags = result["by_tag"]
    assert tags["Long Momentum"]["pnl"] == pytest.approx(500.0)
    assert tags["Core"]["pnl"] == pytest.approx(500.0)  # same position, counted in full in both tags
    assert tags["Untagged"] == {"pnl": pytest.approx(100.0), "positions": 1, "contribution_percent": pytest.approx(100 / 9)}
    assert sum(t["pnl"] for t in tags.values()) == pytest.approx(900.0 + 500.0)
    with pytest.raises(ValueError, match="groupBy"):
        pnl_attribution(book, "sector")


def test_missing_price_is_null_not_zero(book):
    book.loc[1, "price"] = np.nan
    result = pnl_attribution(book)
    row = next(r for r in result["positions"] if r["id"] == "p2")
    assert row["pnl"] is None and row["contribution_percent"] is None
    assert result["total_pl"] == pytest.approx(1100.0)


def test_daily_snapshot_hand_worked(book):
    greeks = pd.DataFrame(
        {"delta": [120.0, -30.0], "gamma": [4.0, -2.0], "theta": [-50.0, 8.0], "vega": [90.0, -40.0], "rho": [30.0, 10.0]},
        index=["p3", "p4"],
    )
    snap = daily_snapshot(book, greeks, cash=50_000.0, date="2024-06-27")
    market_values = [20_500.0, -14_200.0, 2_500.0, -300.0]
    assert snap["equity"] == pytest.approx(50_000.0 + sum(market_values))
    notional = snap["exposure"]["notional"]
    assert notional["long"] == pytest.approx(23_000.0)
    assert notional["short"] == pytest.approx(-14_500.0)
    assert notional["gross"] == pytest.approx(37_500.0)
    assert notional["net"] == pytest.approx(8_500.0)
    delta = snap["exposure"]["delta"]
    # stocks at market value; options position delta x underlying price
    assert delta["long"] == pytest.approx(20_500.0 + 120.0 * 465.0)
    assert delta["short"] == pytest.approx(-14_200.0 - 30.0 * 400.0)
    assert snap["daily_pnl"] == pytest.approx(900.0)
    assert snap["daily_return"] == pytest.approx(900.0 / (snap["equity"] - 900.0))
    assert snap["greeks"] == pytest.approx({"delta": 90.0, "gamma": 2.0, "theta": -42.0, "vega": 50.0, "rho": 40.0})
    assert snap["position_count"]["total"] == 4
    assert snap["position_count"]["options"] == 2
    assert snap["position_count"]["by_type"]["SP"] == 1
    with pytest.raises(ValueError, match="delta"):
        daily_snapshot(book, greeks.drop(index="p4"))
