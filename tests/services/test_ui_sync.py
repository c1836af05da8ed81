"""The positions-table presets and sorts (services.ui_sync.filter_positions) on a hand-built book."""

from __future__ import annotations

import datetime as dt

import pytest

from services import ui_sync

TODAY = dt.date(2026, 12, 3)


def _p(pid, typ, expiration=None, gamma=None, pnl=0.0, value=0.0, tags=()):
    return {"id": pid, "ticker": pid.upper(), "type": typ, "expiration": expiration, "pnl": pnl, "value": value,
            "tags": list(tags), "position_greeks": {"gamma": gamma, "delta": None, "theta": None, "vega": None}}


BOOK = [
    _p("a", "LONG", pnl=120.0, value=5000.0, tags=["core"]),
    _p("b", "SC", "2026-12-03", gamma=-40.0, pnl=-30.0, value=-200.0),
    _p("c", "LP", "2026-12-03", gamma=15.0, pnl=-5.0, value=300.0, tags=["hedge"]),
    _p("d", "SP", "2026-12-09", gamma=-70.0, pnl=12.0, value=-150.0),
    _p("e", "LC", "2027-01-15", gamma=5.0, pnl=40.0, value=800.0, tags=["core", "hedge"]),
    _p("f", "SHORT", pnl=-60.0, value=-2500.0),
]


@pytest.mark.parametrize("preset, sort, expected", [
    ("all", None, ["a", "b", "c", "d", "e", "f"]),
    ("expiring_today", {"field": "gamma_risk", "order": "desc"}, ["b", "c"]),
    ("expiring_this_week", {"field": "gamma_risk", "order": "desc"}, ["d", "b", "c"]),
    ("short_options", {"field": "gamma_risk", "order": "asc"}, ["b", "d"]),
    ("long_options", None, ["c", "e"]),
    ("options", {"field": "expiration", "order": "asc"}, ["b", "c", "d", "e"]),
    ("stocks", {"field": "value", "order": "desc"}, ["a", "f"]),
    ("losers", {"field": "pnl", "order": "asc"}, ["f", "b", "c"]),
    ("winners", {"field": "pnl", "order": "desc"}, ["a", "e", "d"]),
    ("tag:hedge", None, ["c", "e"]),
    # positions without the sort field (stocks have no gamma) go last, in book order
    ("all", {"field": "gamma_risk", "order": "desc"}, ["d", "b", "c", "e", "a", "f"]),
])
def test_presets_and_sorts_pick_the_hand_worked_rows(preset, sort, expected):
    assert [p["id"] for p in ui_sync.filter_positions(BOOK, preset, sort, TODAY)] == expected


def test_names_are_checked_against_the_valid_lists():
    assert ui_sync.page_of("positions_tab") == "portfolio" and ui_sync.page_of("lab") == "lab"
    assert ui_sync.parse_sort("gamma_risk_desc") == {"field": "gamma_risk", "order": "desc"}
    assert ui_sync.parse_sort("pnl_percent_asc") == {"field": "pnl_percent", "order": "asc"}
    assert ui_sync.parse_sort("value") == {"field": "value", "order": "desc"}
    with pytest.raises(ui_sync.UIInputError) as err:
        ui_sync.check_preset("tag:x", ["core", "hedge"])
    assert err.value.valid == ["tag:core", "tag:hedge"]
    with pytest.raises(ui_sync.UIInputError):
        ui_sync.page_of("casino")
