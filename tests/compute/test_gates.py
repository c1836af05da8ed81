"""Gates per pack and risk profile (docs/spec/design.md thresholds) and the docs/spec/reference.md ranking."""

import math

import pytest

from compute.backtest import BacktestConfig
from compute.gates import evaluate_gate, gate_thresholds, ranking_score


def swing_metrics(**over):
    m = {"max_drawdown": -0.12, "trades_per_year": 45.0, "sharpe": 1.5, "sortino": 2.0,
         "calmar": 1.0, "trades": 450}
    m.update(over)
    return m


@pytest.mark.parametrize("profile,dd,tpy,sharpe", [
    ("Conservative", 0.20, 40, 1.2), ("Balanced", 0.25, 30, 1.0), ("Aggressive", 0.30, 25, 0.8),
])
def test_swing_thresholds_follow_design(profile, dd, tpy, sharpe):
    g = gate_thresholds("swing", profile)
    assert (g.max_drawdown, g.min_trades_per_year, g.min_sharpe) == (dd, tpy, sharpe)
    # exactly at the limits passes; just beyond fails each check
    assert evaluate_gate("swing", profile, swing_metrics(max_drawdown=-dd, trades_per_year=tpy, sharpe=sharpe))["pass"]
    out = evaluate_gate("swing", profile, swing_metrics(max_drawdown=-(dd + 0.011), trades_per_year=tpy - 1,
                                                        sharpe=sharpe - 0.01))
    assert not out["pass"] and len(out["reasons"]) == 3


def test_reasons_are_readable():
    out = evaluate_gate("swing", "Balanced", swing_metrics(max_drawdown=-0.271))
    assert out == {"pass": False, "reasons": ["max drawdown 27.1% exceeds 25% limit"]}
    out = evaluate_gate("swingsigma", "balanced", swing_metrics(sharpe=0.85, trades_per_year=22))
    assert out["reasons"] == ["Sharpe 0.85 below 1 minimum", "trades per year 22.0 below 30 minimum"]
    out = evaluate_gate("swing", "Balanced", swing_metrics(sharpe=float("nan")))
    assert not out["pass"] and "undefined" in out["reasons"][0]


@pytest.mark.parametrize("profile,dd,calmar", [("Conservative", 0.30, 0.8), ("Balanced", 0.35, 0.6),
                                               ("Aggressive", 0.40, 0.4)])
def test_long_gate_is_calmar_and_drawdown(profile, dd, calmar):
    assert evaluate_gate("long", profile, {"max_drawdown": -dd, "calmar": calmar})["pass"]
    out = evaluate_gate("long", profile, {"max_drawdown": -dd - 0.01, "calmar": calmar - 0.05,
                                          "sharpe": -5, "trades_per_year": 0})
    assert not out["pass"]
    assert out["reasons"][0].startswith("max drawdown") and out["reasons"][1].startswith("Calmar")
    assert len(out["reasons"]) == 2  # Sharpe and trade counts do not gate long models


def test_0dte_gate_checks_drawdown_and_allowed_hours():
    good = {"max_drawdown": -0.10, "sharpe": 2.0, "trades_per_year": 120.0}
    for profile, dd in (("Conservative", 0.15), ("Balanced", 0.20), ("Aggressive", 0.25)):
        assert gate_thresholds("0dte", profile).max_drawdown == dd
    assert evaluate_gate("0dte", "Conservative", good, {"allowed_hours": [13, 14, 15]})["pass"]
    assert evaluate_gate("0dte", "Conservative", good, BacktestConfig(allowed_hours=(14, 15)))["pass"]
    out = evaluate_gate("0dte", "Conservative", good, {"allowed_hours": [12, 13, 14]})
    assert out["reasons"] == ["allowed hours 12 outside the 13-15 window"]
    assert evaluate_gate("0dte", "Aggressive", good, {"allowed_hours": [12, 13, 14]})["pass"]
    assert not evaluate_gate("0dte", "Aggressive", good, {"allowed_hours": None})["pass"]
    out = evaluate_gate("0dte", "Balanced", dict(good, max_drawdown=-0.2049), {"allowed_hours": [13]})
    assert out["reasons"] == ["max drawdown 20.5% exceeds 20% limit"]


def test_unknown_pack_or_profile_raises():
    with pytest.raises(Exception):
        evaluate_gate("nosuchpack", "Balanced", swing_metrics())
    with pytest.raises(ValueError):
        evaluate_gate("swing", "Reckless", swing_metrics())


def test_ranking_scores_by_hand():
    m = {"sortino": 2.0, "sharpe": 1.5, "trades": 400, "max_drawdown": -0.1, "calmar": 0.9,
         "fold_sharpe_std": 0.5}
    # 0DTE: 2.0 * sqrt(400 / 100) - 0.5 * 0.1 - 0.2 * 0.5 = 4 - 0.05 - 0.1
    assert ranking_score("0dte", m) == pytest.approx(3.85)
    # swing: 1.5 * sqrt(400 / 100) - 0.3 * 0.1 = 3 - 0.03
    assert ranking_score("swing", m) == pytest.approx(2.97)
    assert ranking_score("long", m) == pytest.approx(0.9)
    assert ranking_score("swing", dict(m, sharpe=float("nan"))) == -math.inf
