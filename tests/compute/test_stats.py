"""Return statistics against hand-worked values, numpy/scipy references and, when it
imports, empyrical itself."""

import math

import numpy as np
import pandas as pd
import pytest

from compute import stats

# Five daily returns worked by hand below.
R5 = np.array([0.01, -0.02, 0.03, -0.01, 0.02])


def test_cum_return_by_hand():
    # 1.01 * 0.98 = 0.9898; * 1.03 = 1.019494; * 0.99 = 1.00929906; * 1.02 = 1.0294850412
    assert stats.cum_return(R5) == pytest.approx(0.0294850412, abs=1e-12)


def test_annual_return_by_hand():
    assert stats.annual_return(R5, 252) == pytest.approx(1.0294850412 ** (252 / 5) - 1, rel=1e-12)
    # one year of data: CAGR equals the cumulative return
    r = np.full(12, 0.01)
    assert stats.annual_return(r, 12) == pytest.approx(1.01 ** 12 - 1, rel=1e-12)


def test_volatility_and_sharpe_by_hand():
    # mean 0.006; deviations 0.004, -0.026, 0.024, -0.016, 0.014; squares sum to 0.00172
    sd = math.sqrt(0.00172 / 4)
    assert stats.annual_volatility(R5, 252) == pytest.approx(sd * math.sqrt(252), rel=1e-12)
    assert stats.sharpe(R5, 252) == pytest.approx(0.006 / sd * math.sqrt(252), rel=1e-12)
    # a per-period risk-free rate shifts the mean only
    assert stats.sharpe(R5, 252, risk_free=0.001) == pytest.approx(0.005 / sd * math.sqrt(252), rel=1e-12)


def test_downside_and_sortino_by_hand():
    # negative returns -0.02, -0.01: squares 0.0004 + 0.0001 over all 5 obs = 0.0001 -> 0.01
    assert stats.downside_risk(R5, 252) == pytest.approx(0.01 * math.sqrt(252), rel=1e-12)
    assert stats.sortino(R5, 252) == pytest.approx(0.006 * 252 / (0.01 * math.sqrt(252)), rel=1e-12)
    assert stats.sortino(np.array([0.01, 0.02, 0.0]), 252) == np.inf


def test_max_drawdown_and_calmar_by_hand():
    # equity 1.01, 0.9898 (peak 1.01 -> -2 %), 1.019494 (new peak), 1.00929906 (-1 %), ...
    assert stats.max_drawdown(R5) == pytest.approx(-0.02, abs=1e-12)
    # an initial loss is a drawdown from the starting value
    assert stats.max_drawdown([-0.1, 0.05]) == pytest.approx(-0.1, abs=1e-12)
    # 1.1 * 0.5 = 0.55 from a 1.1 peak: -50 %, then 0.55 * 1.5 = 0.825 (still under water)
    assert stats.max_drawdown([0.1, -0.5, 0.5]) == pytest.approx(-0.5, abs=1e-12)
    assert stats.max_drawdown([0.01, 0.02]) == 0.0
    assert stats.calmar(R5, 252) == pytest.approx((1.0294850412 ** (252 / 5) - 1) / 0.02, rel=1e-12)
    assert math.isnan(stats.calmar([0.01, 0.02], 252))


def test_var_and_expected_shortfall():
    # sorted R5: -0.02, -0.01, 0.01, 0.02, 0.03; 5 % quantile at position 0.05 * 4 = 0.2
    assert stats.var_historical(R5, 0.95) == pytest.approx(-0.02 + 0.2 * 0.01, abs=1e-15)
    # tail size floor(4 * 0.05) + 1 = 1 -> the single worst return
    assert stats.expected_shortfall(R5, 0.95) == pytest.approx(-0.02, abs=1e-15)
    rng = np.random.default_rng(7)
    r = rng.standard_t(4, size=1000) * 0.01
    assert stats.var_historical(r, 0.95) == pytest.approx(np.percentile(r, 5), rel=1e-12)
    # 999 * 0.05 = 49.95 -> 50 worst returns, all of them at or below the lower 5 % order stat
    worst = np.sort(r)[:50]
    assert stats.expected_shortfall(r, 0.95) == pytest.approx(worst.mean(), rel=1e-12)
    assert worst.max() <= np.percentile(r, 5, method="lower")
    assert stats.var_historical(r, 0.99) == pytest.approx(np.percentile(r, 1), rel=1e-12)


def test_win_rate():
    assert stats.win_rate(R5) == pytest.approx(3 / 5)
    assert stats.win_rate([0.0, 0.01, -0.01, 0.0, 0.02]) == pytest.approx(2 / 3)
    assert math.isnan(stats.win_rate([0.0, 0.0]))


def test_nan_are_skipped():
    with_nan = np.array([0.01, np.nan, -0.02, 0.03, -0.01, 0.02])
    assert stats.sharpe(with_nan, 252) == pytest.approx(stats.sharpe(R5, 252), rel=1e-12)
    assert stats.max_drawdown(with_nan) == pytest.approx(-0.02, abs=1e-12)
    assert stats.expected_shortfall(with_nan) == pytest.approx(-0.02)


def test_too_short_series_are_nan():
    assert math.isnan(stats.sharpe([0.01], 252))
    assert math.isnan(stats.annual_volatility([0.01], 252))
    assert math.isnan(stats.sharpe([0.01, 0.01], 252))  # zero dispersion
    assert math.isnan(stats.expected_shortfall([]))


def test_skew_kurtosis_matches_scipy():
    from scipy.stats import kurtosis, skew

    rng = np.random.default_rng(3)
    r = rng.lognormal(0, 0.5, 500) - 1
    s, k = stats.skew_kurtosis(r)
    assert s == pytest.approx(skew(r), rel=1e-10)
    assert k == pytest.approx(kurtosis(r, fisher=False), rel=1e-10)


def test_batch_equals_single_series_functions():
    rng = np.random.default_rng(11)
    data = rng.normal(0.0005, 0.01, size=(252, 40))
    df = pd.DataFrame(data)
    batch = stats.risk_stats_batch(df, 252)
    for j in (0, 17, 39):
        col = data[:, j]
        assert batch["sharpe"][j] == stats.sharpe(col, 252)
        assert batch["sortino"][j] == stats.sortino(col, 252)
        assert batch["max_drawdown"][j] == stats.max_drawdown(col)
        assert batch["es_95"][j] == stats.expected_shortfall(col, 0.95)
        assert batch["var_95"][j] == stats.var_historical(col, 0.95)
        assert batch["calmar"][j] == pytest.approx(stats.calmar(col, 252), rel=1e-14)
        assert batch["annual_volatility"][j] == stats.annual_volatility(col, 252)
        assert batch["win_rate"][j] == stats.win_rate(col)
    assert set(stats.risk_stats(data[:, 0])) == set(batch)


def test_against_empyrical_when_available(monkeypatch):
    empyrical = pytest.importorskip("empyrical")
    # empyrical 0.5.5 still spells -inf as np.NINF, which numpy 2 removed
    monkeypatch.setattr(np, "NINF", -np.inf, raising=False)
    rng = np.random.default_rng(5)
    r = rng.normal(0.0004, 0.012, 750)
    assert stats.sharpe(r, 252) == pytest.approx(empyrical.sharpe_ratio(r, annualization=252), rel=1e-10)
    assert stats.sortino(r, 252) == pytest.approx(empyrical.sortino_ratio(r, annualization=252), rel=1e-10)
    assert stats.max_drawdown(r) == pytest.approx(empyrical.max_drawdown(r), rel=1e-10)
    assert stats.annual_return(r, 252) == pytest.approx(empyrical.annual_return(r, annualization=252), rel=1e-10)
    assert stats.calmar(r, 252) == pytest.approx(empyrical.calmar_ratio(r, annualization=252), rel=1e-10)
    assert stats.expected_shortfall(r) == pytest.approx(empyrical.conditional_value_at_risk(r), rel=1e-10)
    assert stats.var_historical(r) == pytest.approx(empyrical.value_at_risk(r), rel=1e-10)


def test_expected_max_sharpe_paper_example():
    # Bailey & Lopez de Prado (2014), numerical example: N = 100 trials, annualised variance
    # of the trials' Sharpe ratios 0.5 over 250-day years -> E[max SR] ~= 0.1132 per day.
    assert stats.expected_max_sharpe(100, 0.5 / 250) == pytest.approx(0.1132, abs=5e-5)
    assert stats.expected_max_sharpe(1, 0.5) == 0.0


def test_expected_max_sharpe_monte_carlo():
    rng = np.random.default_rng(0)
    draws = rng.normal(0.0, 0.3, size=(20000, 50)).max(axis=1)
    # the closed form is an approximation of E[max of N normals]; a few % is expected
    assert stats.expected_max_sharpe(50, 0.09) == pytest.approx(draws.mean(), rel=0.03)


def test_probabilistic_sharpe_by_hand():
    # SR 0.1 per period against 0, n = 101, normal returns:
    # z = 0.1 * sqrt(100) / sqrt(1 - 0 + (3 - 1) / 4 * 0.01) = 1 / sqrt(1.005)
    from scipy.stats import norm

    assert stats.probabilistic_sharpe_ratio(0.1, 0.0, 101) == pytest.approx(norm.cdf(1 / math.sqrt(1.005)), rel=1e-12)
    # annualised inputs give the same answer
    ann = 0.1 * math.sqrt(252)
    assert stats.probabilistic_sharpe_ratio(ann, 0.0, 101, periods_per_year=252) == pytest.approx(
        norm.cdf(1 / math.sqrt(1.005)), rel=1e-12
    )


def test_deflated_sharpe_paper_example():
    # Same example: annualised SR 2.5 over 5 years of daily data (n = 1250), skew -3,
    # kurtosis 10, N = 100, annualised V = 0.5 -> DSR ~= 0.9004.
    dsr = stats.deflated_sharpe_ratio(2.5, 100, 1250, -3.0, 10.0, 0.5, periods_per_year=250)
    assert dsr == pytest.approx(0.9004, abs=1e-3)
    # more trials deflate more
    assert stats.deflated_sharpe_ratio(2.5, 10000, 1250, -3.0, 10.0, 0.5, periods_per_year=250) < dsr


def test_psr_and_dsr_broadcast_over_arrays():
    sharpes = np.array([0.5, 1.5, 2.5])
    vec = stats.deflated_sharpe_ratio(sharpes, 100, 1250, -3.0, 10.0, 0.5, periods_per_year=250)
    one = [stats.deflated_sharpe_ratio(s, 100, 1250, -3.0, 10.0, 0.5, periods_per_year=250) for s in sharpes]
    np.testing.assert_allclose(vec, one, rtol=1e-15)
    assert np.all(np.diff(vec) > 0)
    assert math.isnan(stats.probabilistic_sharpe_ratio(1.0, 0.0, 1))
