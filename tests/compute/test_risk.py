"""Risk overview: figures equal empyrical's definitions and statsmodels' beta on the same returns;
hand-worked portfolio returns, resampling, correlation and clusters."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from compute.risk import (
    average_pairwise_correlation,
    beta,
    correlation_clusters,
    exposure_by_underlying,
    portfolio_returns,
    resample_returns,
    returns_from_pnl,
    risk_overview,
    select_view,
)


def empyrical_annual_volatility(returns, ann_factor):
    """empyrical.annual_volatility: nanstd(ddof=1) x sqrt(annualisation factor)."""
    return np.nanstd(returns, ddof=1) * np.sqrt(ann_factor)


def empyrical_max_drawdown(returns):
    """empyrical.max_drawdown: from a starting value of 100, worst (value - running max) / running max."""
    cumulative = np.concatenate(([100.0], 100.0 * np.cumprod(1 + np.nan_to_num(returns))))
    running_max = np.fmax.accumulate(cumulative)
    return np.nanmin((cumulative - running_max) / running_max)


def empyrical_value_at_risk(returns, cutoff=0.05):
    """empyrical.value_at_risk."""
    return np.percentile(returns, 100 * cutoff)


@pytest.fixture(scope="module")
def market():
    rng = np.random.default_rng(2024)
    dates = pd.bdate_range("2023-01-02", periods=300)
    spy = rng.normal(0.0004, 0.011, len(dates))
    tech = spy * 1.3 + rng.normal(0, 0.006, len(dates))
    names = {
        "SPY": spy,
        "AAPL": tech + rng.normal(0, 0.004, len(dates)),
        "MSFT": tech + rng.normal(0, 0.004, len(dates)),
        "NVDA": tech + rng.normal(0, 0.005, len(dates)),
        "XOM": 0.6 * spy + rng.normal(0, 0.015, len(dates)),
        "JNJ": 0.4 * spy + rng.normal(0, 0.009, len(dates)),
    }
    returns = pd.DataFrame(names, index=dates)
    returns.iloc[10:13, 4] = np.nan  # a few missing XOM days
    exposure = pd.Series({"AAPL": 300_000.0, "MSFT": 200_000.0, "NVDA": 100_000.0, "XOM": -150_000.0, "JNJ": 80_000.0})
    return returns, exposure


def test_portfolio_returns_hand_worked():
    dates = pd.bdate_range("2024-01-01", periods=3)
    r = pd.DataFrame({"A": [0.01, -0.02, np.nan], "B": [0.03, 0.0, 0.01]}, index=dates)
    exposure = pd.Series({"A": 50_000.0, "B": -25_000.0})
    port = portfolio_returns(exposure, r, equity=100_000.0)
    np.testing.assert_allclose(port.to_numpy(), [0.005 - 0.0075, -0.01, -0.0025])
    with pytest.raises(ValueError, match="ZZZ"):
        portfolio_returns(pd.Series({"ZZZ": 1.0}), r, 1.0)
    delta = pd.Series({"p1": 10.0, "p2": 5.0, "p3": -3.0})
    assert exposure_by_underlying(delta, pd.Series({"p1": "A", "p2": "A", "p3": "B"})).to_dict() == {"A": 15.0, "B": -3.0}
    assert list(select_view(exposure, "shorts").index) == ["B"]
    pnl = pd.Series([100.0, -50.0], index=dates[1:])
    equity = pd.Series([10_000.0, 10_100.0, 10_050.0], index=dates)
    np.testing.assert_allclose(returns_from_pnl(pnl, equity).to_numpy(), [0.01, -50 / 10_100])


def test_resampling_compounds_within_calendar_periods():
    dates = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-08", "2024-02-01"])
    r = pd.Series([0.01, 0.02, -0.01, 0.05], index=dates)
    weekly = resample_returns(r, "weekly")
    assert weekly.dropna().to_numpy() == pytest.approx([1.01 * 1.02 - 1, -0.01, 0.05])
    assert weekly.isna().sum() > 0  # empty weeks are NaN, not 0 %
    monthly = resample_returns(r, "monthly")
    assert monthly.to_numpy() == pytest.approx([1.01 * 1.02 * 0.99 - 1, 0.05])
    assert resample_returns(r, "annual").to_numpy() == pytest.approx([1.01 * 1.02 * 0.99 * 1.05 - 1])
    with pytest.raises(ValueError, match="period"):
        resample_returns(r, "hourly")


def test_beta_equals_ols_slope(market):
    returns, _ = market
    fit = sm.OLS(returns["XOM"], sm.add_constant(returns["SPY"]), missing="drop").fit()
    assert beta(returns["XOM"], returns["SPY"]) == pytest.approx(fit.params["SPY"], rel=1e-10)


def test_correlation_and_clusters_hand_worked():
    corr = pd.DataFrame(
        [[1.0, 0.8, 0.5, 0.1], [0.8, 1.0, -0.75, 0.0], [0.5, -0.75, 1.0, 0.2], [0.1, 0.0, 0.2, 1.0]],
        index=list("ABCD"),
        columns=list("ABCD"),
    )
    assert average_pairwise_correlation(corr) == pytest.approx((0.8 + 0.5 + 0.1 - 0.75 + 0.0 + 0.2) / 6)
    # A-B (0.8) and B-C (|-0.75|) link A, B, C transitively; D stands alone
    assert correlation_clusters(corr) == [["A", "B", "C"]]
    assert correlation_clusters(corr, threshold=0.9) == []


@pytest.mark.parametrize("period,ppy", [("daily", 252), ("weekly", 52), ("monthly", 12)])
def test_overview_matches_empyrical_definitions(market, period, ppy):
    returns, exposure = market
    equity = 1_000_000.0
    overview = risk_overview(exposure, returns[exposure.index], returns["SPY"], equity, "portfolio", period)
    daily = (returns[exposure.index].fillna(0.0) * (exposure / equity)).sum(axis=1)
    port = daily if period == "daily" else (1 + daily).resample({"weekly": "W-FRI", "monthly": "ME"}[period]).prod() - 1
    assert overview["observations"] == len(port)
    assert overview["annualized_volatility"] == pytest.approx(empyrical_annual_volatility(port, ppy), rel=1e-10)
    assert overview["max_drawdown"] == pytest.approx(empyrical_max_drawdown(port.to_numpy()), rel=1e-10)
    assert overview["var_1d"]["return"] == pytest.approx(empyrical_value_at_risk(port.to_numpy()), rel=1e-10)
    assert overview["var_1d"]["value"] == pytest.approx(equity * empyrical_value_at_risk(port.to_numpy()), rel=1e-10)
    empyrical = pytest.importorskip("empyrical")
    assert overview["annualized_volatility"] == pytest.approx(empyrical.annual_volatility(port, annualization=ppy), rel=1e-10)
    assert overview["max_drawdown"] == pytest.approx(empyrical.max_drawdown(port), rel=1e-10)
    assert overview["var_1d"]["return"] == pytest.approx(empyrical.value_at_risk(port), rel=1e-10)


def test_overview_views_and_clusters(market):
    returns, exposure = market
    overview = risk_overview(exposure, returns[exposure.index], returns["SPY"], 1_000_000.0, "portfolio", "daily")
    assert overview["positions"] == 5
    assert overview["correlation_clusters"] == [["AAPL", "MSFT", "NVDA"]]
    assert 0.0 < overview["position_correlation"] < 1.0
    # true beta of the book: (0.6M x 1.3 - 0.15M x 0.6 + 0.08M x 0.4) / 1M = 0.722
    assert overview["beta"] == pytest.approx(0.722, abs=0.08)
    longs = risk_overview(exposure, returns[exposure.index], returns["SPY"], 1_000_000.0, "longs", "daily")
    shorts = risk_overview(exposure, returns[exposure.index], returns["SPY"], 1_000_000.0, "shorts", "daily")
    assert longs["positions"] == 4 and shorts["positions"] == 1
    assert shorts["beta"] < 0 < longs["beta"]
    assert shorts["position_correlation"] is None and shorts["correlation_clusters"] == []
    assert {r["method"] for r in overview["var"]["var"]} == {"historical", "parametric_normal", "cornish_fisher"}
    with pytest.raises(ValueError, match="view"):
        risk_overview(exposure, returns, returns["SPY"], 1.0, "everything")


def test_batched_risk_stats_equal_empyrical_definitions():
    from compute.risk import risk_stats_frame

    rng = np.random.default_rng(8)
    returns = pd.DataFrame(rng.standard_t(4, size=(252, 40)) * 0.01 + 0.0002)
    returns.iloc[5:9, 3] = np.nan
    returns.iloc[:240, 4] = np.nan  # 12 observations: the tail buffer holds every value
    ties = np.repeat([-0.02, -0.01, 0.0, 0.01], 63)
    returns[40] = rng.permutation(ties)  # ties at the tail
    table = risk_stats_frame(returns, 252, var_level=0.95, es_level=0.975)
    for column in returns.columns:
        r = returns[column].dropna().to_numpy()
        row = table.loc[column]
        assert row["annual_volatility"] == pytest.approx(empyrical_annual_volatility(r, 252), rel=1e-12)
        assert row["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252), rel=1e-10)
        assert row["max_drawdown"] == pytest.approx(empyrical_max_drawdown(r), rel=1e-12)
        assert row["var"] == pytest.approx(empyrical_value_at_risk(r, 0.05), rel=1e-12)
        cutoff_index = int((len(r) - 1) * 0.025)
        es = np.mean(np.partition(r, cutoff_index)[: cutoff_index + 1])
        assert row["expected_shortfall"] == pytest.approx(es, rel=1e-12)
    # levels whose tail exceeds the insertion buffer take the sorting path
    wide = risk_stats_frame(returns, 252, var_level=0.5, es_level=0.5)
    assert wide.loc[0, "var"] == pytest.approx(np.median(returns[0]), rel=1e-12)
    assert np.isnan(risk_stats_frame(pd.DataFrame({"x": [np.nan, np.nan]})).loc["x", "var"])


def test_euler_risk_contributions_equal_each_positions_covariance_with_the_book():
    """Direct computation on return series: position i's share is cov(w_i r_i, r_p) / var(r_p)."""
    from compute.risk import euler_risk_contributions

    rng = np.random.default_rng(11)
    market = rng.normal(0, 0.01, 750)
    returns = np.column_stack([b * market + rng.normal(0, s, 750)
                               for b, s in ((1.2, 0.01), (0.8, 0.02), (-1.0, 0.003), (1.0, 0.015))])
    exposures = np.array([50_000.0, 20_000.0, 30_000.0, -40_000.0])  # a negative-beta long and a short
    book = returns @ exposures
    direct = np.array([np.cov(exposures[i] * returns[:, i], book)[0, 1] for i in range(4)]) / np.var(book, ddof=1)
    shares = euler_risk_contributions(exposures, np.cov(returns, rowvar=False))
    np.testing.assert_allclose(shares, direct, rtol=1e-10)
    # the negative-beta long lowers the book's variance: a negative share
    assert shares.sum() == pytest.approx(1.0, abs=1e-12) and shares[2] < 0 < shares[3]
    assert np.isnan(euler_risk_contributions(np.zeros(4), np.cov(returns, rowvar=False))).all()
