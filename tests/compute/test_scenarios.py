"""Stress scenarios: templates per docs/spec/reference.md, hand-worked linear moves, full BSM repricing
checked against mibian, warnings for factors the model lacks, custom shock validation."""

import mibian
import numpy as np
import pandas as pd
import pytest

from compute.scenarios import (
    SCENARIO_TEMPLATES,
    Scenario,
    resolve_scenarios,
    run_scenarios,
    scenario_templates,
    validate_shocks,
)

EXPECTED_TEMPLATES = {
    "market_up_10": {"Market": 0.10},
    "market_down_10": {"Market": -0.10},
    "market_crash_35": {"Market": -0.35},
    "market_rally_25": {"Market": 0.25},
    "rates_up_25bp": {"Interest Rate": 0.0025},
    "rates_down_25bp": {"Interest Rate": -0.0025},
    "rates_up_100bp": {"Interest Rate": 0.01},
    "rates_down_100bp": {"Interest Rate": -0.01},
    "rates_spike_300bp": {"Interest Rate": 0.03},
    "oil_up_5": {"Oil": 0.05},
    "value_rotation_20": {"Value": 0.20, "Growth": -0.10},
    "growth_rally_15": {"Growth": 0.15, "Momentum": 0.10},
    "small_cap_10": {"Size": 0.10},
    "quality_flight_12": {"Quality": 0.12, "Market": -0.05},
    "vix_spike_150": {"Low Volatility": -0.25, "Market": -0.15},
    "liquidity_crisis": {"Market": -0.20, "Low Volatility": -0.30, "Quality": 0.15, "Size": -0.10},
    "hist_2008": {"Market": -0.45, "Value": -0.30, "Size": -0.25, "Quality": 0.20, "Low Volatility": -0.35},
    "hist_covid_2020": {"Market": -0.35, "Growth": 0.15, "Value": -0.40, "Size": -0.30, "Quality": 0.10},
    "hist_dotcom": {"Market": -0.45, "Growth": -0.60, "Value": 0.20, "Momentum": -0.50, "Quality": 0.15},
}

DAYS = 73  # option expiry in calendar days (mibian's unit); T = 73 / 365 = 0.2 years


def _mibian_price(spot, strike, vol, is_call, rate=0.0):
    bs = mibian.BS([spot, strike, rate * 100, DAYS], volatility=vol * 100)
    return bs.callPrice if is_call else bs.putPrice


@pytest.fixture
def book():
    positions = pd.DataFrame(
        {
            "position_id": ["s1", "s2", "c1", "p1", "n1"],
            "symbol": ["AAPL", "XOM", "AAPL250620C00200000", "AAPL250620P00190000", "NEWCO"],
            "underlying": ["AAPL", "XOM", "AAPL", "AAPL", "NEWCO"],
            "position_type": ["LONG", "SHORT", "LC", "SP", "LONG"],
            "quantity": [100.0, -200.0, 5.0, -3.0, 50.0],
            "underlying_price": [200.0, 110.0, 200.0, 200.0, 30.0],
            "strike": [np.nan, np.nan, 200.0, 190.0, np.nan],
            "time_to_expiry": [np.nan, np.nan, DAYS / 365, DAYS / 365, np.nan],
            "volatility": [np.nan, np.nan, 0.30, 0.35, np.nan],
        }
    )
    betas = pd.DataFrame(
        {
            "Market Beta": [1.2, 0.8, np.nan],
            "Value": [-0.3, 0.9, np.nan],
            "Growth": [0.5, -0.4, np.nan],
        },
        index=["AAPL", "XOM", "NEWCO"],
    )
    return positions, betas


def test_templates_match_reference():
    assert {s.id: dict(s.shocks) for s in SCENARIO_TEMPLATES} == EXPECTED_TEMPLATES
    by_id = {t["id"]: t for t in scenario_templates()}
    assert by_id["market_down_10"]["parameters"] == {"spy_change": -0.10}
    assert by_id["oil_up_5"]["parameters"] == {"oil_change": 0.05}
    assert by_id["market_up_10"]["name"] == "Market Up 10%"


def test_validate_shocks_accepts_names_and_spec_parameters():
    assert validate_shocks({"rate_change": 0.0025, "spy_change": -0.1}) == {"Interest Rate": 0.0025, "Market": -0.1}
    assert validate_shocks({"low volatility": -0.2}) == {"Low Volatility": -0.2}
    with pytest.raises(ValueError, match="shocks.vix_change"):
        validate_shocks({"vix_change": 0.5})
    with pytest.raises(ValueError, match="shocks.Market"):
        validate_shocks({"Market": "down"})
    with pytest.raises(ValueError, match="shocks.Market"):
        validate_shocks({"Market": -1.5})
    with pytest.raises(ValueError, match="more than once"):
        validate_shocks({"Market": -0.1, "spy_change": -0.1})
    with pytest.raises(ValueError, match="scenario_ids"):
        resolve_scenarios(["market_down_10", "no_such"])
    custom = resolve_scenarios(["oil_up_5"], {"name": "Fed Rate Hike", "parameters": {"rate_change": 0.0025}})
    assert [s.name for s in custom] == ["Oil Up 5%", "Fed Rate Hike"]
    assert custom[1].shocks == {"Interest Rate": 0.0025}


def test_value_rotation_hand_worked_with_full_option_repricing(book):
    positions, betas = book
    [result] = run_scenarios(positions, betas, resolve_scenarios(["value_rotation_20"]), equity=100_000.0)
    aapl_move = -0.3 * 0.20 + 0.5 * -0.10  # -0.11
    xom_move = 0.9 * 0.20 + -0.4 * -0.10  # +0.22
    stock_pnl = 100 * 200.0 * aapl_move + -200 * 110.0 * xom_move
    shocked = 200.0 * (1 + aapl_move)
    call_pnl = 5 * 100 * (_mibian_price(shocked, 200, 0.30, True) - _mibian_price(200, 200, 0.30, True))
    put_pnl = -3 * 100 * (_mibian_price(shocked, 190, 0.35, False) - _mibian_price(200, 190, 0.35, False))
    assert result["by_type"]["LONG"] == pytest.approx(100 * 200.0 * aapl_move)
    assert result["by_type"]["SHORT"] == pytest.approx(-200 * 110.0 * xom_move)
    assert result["by_type"]["LC"] == pytest.approx(call_pnl, rel=1e-6)
    assert result["by_type"]["SP"] == pytest.approx(put_pnl, rel=1e-6)
    assert result["pnl"] == pytest.approx(stock_pnl + call_pnl + put_pnl, rel=1e-6)
    assert result["pnl_percent"] == pytest.approx(result["pnl"] / 1000.0)
    expected = {"s1": 100 * 200.0 * aapl_move, "s2": -200 * 110.0 * xom_move, "c1": call_pnl, "p1": put_pnl}
    worst = sorted((v, k) for k, v in expected.items() if v < 0)
    assert [w["position_id"] for w in result["worst_positions"]] == [k for _, k in worst]
    assert [w["pnl"] for w in result["worst_positions"]] == pytest.approx([v for v, _ in worst], rel=1e-6)
    # NEWCO has no betas: it does not move, and the response says so
    assert result["positions_unmoved"] == ["n1"]
    assert any("NEWCO" in w for w in result["warnings"])


def test_options_are_not_linear(book):
    positions, betas = book
    crash, rally = run_scenarios(
        positions, betas, resolve_scenarios(["market_crash_35", "market_rally_25"]), equity=1e5
    )
    # a long call loses at most its premium in a crash but gains more than linearly in a rally
    premium = 5 * 100 * _mibian_price(200, 200, 0.30, True)
    assert crash["by_type"]["LC"] == pytest.approx(-premium, rel=0.05)
    assert crash["by_type"]["LC"] >= -premium
    up = 200 * 1.3  # beta 1.2 x 25 %
    assert rally["by_type"]["LC"] == pytest.approx(5 * 100 * (_mibian_price(up, 200, 0.30, True) - premium / 500), rel=1e-6)


def test_factors_missing_from_model_warn_and_contribute_zero(book):
    positions, betas = book
    rates, oil = run_scenarios(positions, betas, resolve_scenarios(["rates_up_100bp", "oil_up_5"]), equity=1e5)
    assert rates["pnl"] == 0.0 and oil["pnl"] == 0.0
    assert any("Interest Rate" in w for w in rates["warnings"])
    assert any("Oil" in w for w in oil["warnings"])
    # with rate betas supplied (return per unit of rate change) the shock flows through
    betas = betas.assign(**{"Interest Rate": [-2.0, 1.0, np.nan]})
    [rates] = run_scenarios(positions, betas, [Scenario("r", "r", {"Interest Rate": 0.01})], equity=1e5)
    assert rates["by_type"]["LONG"] == pytest.approx(100 * 200.0 * -0.02)
    assert not any("Interest Rate" in w for w in rates["warnings"])


def test_position_validation(book):
    positions, betas = book
    with pytest.raises(ValueError, match="position_type"):
        run_scenarios(positions.assign(position_type="LONGX"), betas, SCENARIO_TEMPLATES[:1], equity=1e5)
    with pytest.raises(ValueError, match="strike"):
        run_scenarios(positions.assign(strike=np.nan), betas, SCENARIO_TEMPLATES[:1], equity=1e5)
