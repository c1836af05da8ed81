"""VaR family: historical equals empyrical's definition, parametric/Cornish-Fisher textbook values,
Monte Carlo of a linear book converges to the analytic normal figure, options are repriced."""

import math

import numpy as np
import pandas as pd
import pytest

from compute.var import (
    cornish_fisher_quantile,
    cornish_fisher_var,
    historical_expected_shortfall,
    historical_var,
    monte_carlo_var,
    multi_day_returns,
    normal_expected_shortfall,
    parametric_expected_shortfall,
    parametric_var,
    simulate_portfolio_pnl,
    var_table,
)

Z95 = -1.6448536269514722  # Phi^-1(0.05)
Z99 = -2.3263478740408408  # Phi^-1(0.01)


def empyrical_value_at_risk(returns, cutoff):
    """empyrical.stats.value_at_risk, verbatim."""
    return np.percentile(returns, 100 * cutoff)


def empyrical_conditional_value_at_risk(returns, cutoff):
    """empyrical.stats.conditional_value_at_risk, verbatim."""
    cutoff_index = int((len(returns) - 1) * cutoff)
    return np.mean(np.partition(returns, cutoff_index)[: cutoff_index + 1])


@pytest.fixture(scope="module")
def fat_tailed_returns():
    rng = np.random.default_rng(42)
    return rng.standard_t(4, size=500) * 0.01 + 0.0003


@pytest.mark.parametrize("level", [0.95, 0.99, 0.975])
def test_historical_var_and_es_equal_empyrical_definition(fat_tailed_returns, level):
    r = fat_tailed_returns
    assert historical_var(r, level) == pytest.approx(empyrical_value_at_risk(r, 1 - level), rel=1e-12)
    assert historical_expected_shortfall(r, level) == pytest.approx(
        empyrical_conditional_value_at_risk(r, 1 - level), rel=1e-12
    )
    empyrical = pytest.importorskip("empyrical")
    assert historical_var(r, level) == pytest.approx(empyrical.value_at_risk(r, cutoff=1 - level), rel=1e-12)
    assert historical_expected_shortfall(r, level) == pytest.approx(
        empyrical.conditional_value_at_risk(r, cutoff=1 - level), rel=1e-12
    )


def test_historical_ten_day_uses_overlapping_compounded_windows():
    r = np.array([0.01, -0.02, 0.03, np.nan, 0.005])
    np.testing.assert_allclose(
        multi_day_returns(r, 2), [1.01 * 0.98 - 1, 0.98 * 1.03 - 1, 1.03 * 1.005 - 1], rtol=1e-12
    )
    rng = np.random.default_rng(1)
    daily = rng.normal(0, 0.01, 300)
    windows = np.array([np.prod(1 + daily[i : i + 10]) - 1 for i in range(291)])
    assert historical_var(daily, 0.99, horizon_days=10) == pytest.approx(np.percentile(windows, 1), rel=1e-10)
    assert multi_day_returns(daily[:5], 10).size == 0


def test_parametric_normal_textbook_values():
    # a sample with mean 0.0005 and sample std exactly 0.01
    z = np.random.default_rng(5).normal(size=250)
    r = 0.0005 + 0.01 * (z - z.mean()) / z.std(ddof=1)
    assert parametric_var(r, 0.95) == pytest.approx(0.0005 + Z95 * 0.01, rel=1e-10)
    assert parametric_var(r, 0.99) == pytest.approx(0.0005 + Z99 * 0.01, rel=1e-10)
    assert parametric_var(r, 0.99, horizon_days=10) == pytest.approx(0.005 + Z99 * 0.01 * math.sqrt(10), rel=1e-10)
    # normal ES at 97.5 % is 2.3378 sigma (textbook: phi(1.95996) / 0.025)
    assert parametric_expected_shortfall(r, 0.975) == pytest.approx(0.0005 - 2.337802 * 0.01, rel=1e-6)
    assert normal_expected_shortfall(0.0, 1.0, 0.975, 10) == pytest.approx(-2.337802 * math.sqrt(10), rel=1e-6)


def test_cornish_fisher_reduces_to_normal_and_matches_hand_expansion():
    assert cornish_fisher_quantile(0.95, 0.0, 0.0) == pytest.approx(Z95, rel=1e-12)
    # S = -0.5, K = 3 at 99 %: -2.32635 - 0.36766 - 0.70135 + 0.09408 (worked by hand)
    assert cornish_fisher_quantile(0.99, -0.5, 3.0) == pytest.approx(-3.30128, abs=1e-4)
    # on data: mu + z_cf sigma with population skew / excess kurtosis
    r = np.random.default_rng(9).standard_t(5, size=1000) * 0.01
    d = r - r.mean()
    skew = (d**3).mean() / (d**2).mean() ** 1.5
    kurt = (d**4).mean() / (d**2).mean() ** 2 - 3
    expected = r.mean() + cornish_fisher_quantile(0.99, skew, kurt) * r.std(ddof=1)
    assert cornish_fisher_var(r, 0.99) == pytest.approx(expected, rel=1e-10)
    # fat left tail: the modified VaR is more negative than the normal one at 99 %
    assert cornish_fisher_var(r, 0.99) < parametric_var(r, 0.99)


def test_var_table_shape_and_dollars(fat_tailed_returns):
    table = var_table(fat_tailed_returns, equity=1_000_000.0)
    assert len(table["var"]) == 2 * 2 * 3 and len(table["expected_shortfall"]) == 2 * 2
    row = next(
        x for x in table["var"] if x["method"] == "historical" and x["level"] == 0.95 and x["horizon_days"] == 1
    )
    assert row["dollars"] == pytest.approx(row["return"] * 1_000_000.0)
    assert table["observations"] == 500
    assert var_table([0.01], equity=1.0)["var"][1]["return"] is None  # too little data -> None


def _linear_book():
    positions = pd.DataFrame(
        {
            "position_id": ["a", "b", "c", "d"],
            "underlying": ["AAA", "BBB", "CCC", "AAA"],
            "position_type": ["LONG", "SHORT", "LONG", "LONG"],
            "quantity": [1000.0, -500.0, 2000.0, 100.0],
            "underlying_price": [150.0, 80.0, 40.0, 150.0],
        }
    )
    factors = ["Market Beta", "Value"]
    cov = pd.DataFrame([[0.011**2, 0.3 * 0.011 * 0.005], [0.3 * 0.011 * 0.005, 0.005**2]], index=factors, columns=factors)
    betas = pd.DataFrame({"Market Beta": [1.2, 0.9, 1.0], "Value": [-0.4, 0.8, 0.2]}, index=["AAA", "BBB", "CCC"])
    resid = pd.Series({"AAA": 0.012, "BBB": 0.02, "CCC": 0.015})
    return positions, betas, resid, cov


def test_monte_carlo_var_of_linear_book_converges_to_parametric():
    positions, betas, resid, cov = _linear_book()
    dollars = pd.Series({"AAA": 1100 * 150.0, "BBB": -500 * 80.0, "CCC": 2000 * 40.0})
    b = betas.loc[dollars.index].to_numpy()
    total_cov = b @ cov.to_numpy() @ b.T + np.diag(resid[dollars.index].to_numpy() ** 2)
    sigma = math.sqrt(dollars.to_numpy() @ total_cov @ dollars.to_numpy())
    mc = monte_carlo_var(positions, betas, resid, cov, n_paths=200_000, seed=1)
    assert mc["std_pnl"] == pytest.approx(sigma, rel=0.01)
    assert mc["var"][0.95] == pytest.approx(Z95 * sigma, rel=0.02)
    assert mc["var"][0.99] == pytest.approx(Z99 * sigma, rel=0.03)
    assert mc["expected_shortfall"][0.975] == pytest.approx(-2.337802 * sigma, rel=0.03)
    ten = monte_carlo_var(positions, betas, resid, cov, horizon_days=10, n_paths=200_000, seed=2)
    assert ten["var"][0.99] == pytest.approx(Z99 * sigma * math.sqrt(10), rel=0.03)
    assert mc["warnings"] == []


def test_monte_carlo_is_seeded_and_flags_unmodelled_names():
    positions, betas, resid, cov = _linear_book()
    a = monte_carlo_var(positions, betas, resid, cov, n_paths=20_000, seed=5)
    b = monte_carlo_var(positions, betas, resid, cov, n_paths=20_000, seed=5)
    assert a["var"] == b["var"]
    betas.loc["CCC"] = np.nan
    c = monte_carlo_var(positions, betas, resid, cov, n_paths=20_000, seed=5)
    assert c["warnings"] and "CCC" in c["warnings"][0]


def test_monte_carlo_reprices_options_nonlinearly():
    from compute.greeks import bsm_price

    spot, strike, t, vol = 100.0, 100.0, 0.25, 0.3
    positions = pd.DataFrame(
        {
            "position_id": ["call"],
            "underlying": ["AAA"],
            "position_type": ["LC"],
            "quantity": [10.0],
            "underlying_price": [spot],
            "strike": [strike],
            "time_to_expiry": [t],
            "volatility": [vol],
        }
    )
    factors = ["Market Beta"]
    cov = pd.DataFrame([[0.02**2]], index=factors, columns=factors)
    betas = pd.DataFrame({"Market Beta": [1.0]}, index=["AAA"])
    resid = pd.Series({"AAA": 0.01})
    pnl, _ = simulate_portfolio_pnl(positions, betas, resid, cov, horizon_days=10, n_paths=50_000, seed=3)
    premium = float(bsm_price(spot, strike, t, 0.0, 0.0, vol, True)) * 10 * 100
    # a long call can lose at most its premium, and gains are convex (right-skewed)
    assert pnl.min() >= -premium - 1e-6
    assert np.mean((pnl - pnl.mean()) ** 3) > 0
    # so the full-revaluation 99 % VaR loses less than the delta-normal (linear) approximation
    from compute.greeks import bsm_greeks

    delta = float(bsm_greeks(spot, strike, t, 0.0, 0.0, vol, True).delta)
    delta_normal_var = Z99 * delta * 10 * 100 * spot * math.sqrt(0.02**2 + 0.01**2) * math.sqrt(10)
    assert np.percentile(pnl, 1) > delta_normal_var
