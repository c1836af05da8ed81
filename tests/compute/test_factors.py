"""Factor model: batched OLS equals statsmodels; synthetic loadings are recovered; nulls on short history."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from compute.factors import (
    ALL_FACTORS,
    FACTOR_DEFINITIONS,
    FACTOR_ETFS,
    REGRESSION_FACTORS,
    factor_returns_from_etfs,
    ols_batch,
    portfolio_factor_exposures,
    position_factor_exposures,
    regress_factor_betas,
    simple_returns,
)


def _design(rng, n_obs=150, k=7):
    """Correlated factor-like regressors at daily-return scale."""
    mix = rng.normal(size=(k, k)) * 0.3 + np.eye(k)
    return rng.normal(0.0, 0.008, size=(n_obs, k)) @ mix


def _statsmodels_fit(y, x):
    ok = ~np.isnan(y) & ~np.isnan(x).any(axis=1)
    return sm.OLS(y[ok], sm.add_constant(x[ok], has_constant="add")).fit(), int(ok.sum())


def test_definitions_follow_spec_6_4():
    assert [d["factor_name"] for d in FACTOR_DEFINITIONS] == [
        "Market Beta", "Momentum", "Value", "Growth", "Quality", "Size", "Low Volatility", "Short Interest",
    ]
    assert [d["display_order"] for d in FACTOR_DEFINITIONS] == list(range(1, 9))
    assert FACTOR_ETFS == {
        "Market Beta": "SPY", "Momentum": "MTUM", "Value": "VTV", "Growth": "VUG",
        "Quality": "QUAL", "Size": "IJR", "Low Volatility": "SPLV",
    }
    short_interest = FACTOR_DEFINITIONS[-1]
    assert short_interest["calculation_method"] == "mock" and short_interest["etf_ticker"] is None
    assert len(REGRESSION_FACTORS) == 7 and ALL_FACTORS[-1] == "Short Interest"


def test_ols_batch_equals_statsmodels_with_nan_gaps():
    rng = np.random.default_rng(7)
    n_obs, k, n_series = 150, 7, 40
    x = _design(rng, n_obs, k)
    true_betas = rng.normal(0.0, 1.0, size=(n_series, k))
    y = true_betas @ x.T + 0.0004 + rng.normal(0.0, 0.015, size=(n_series, n_obs))
    # scattered gaps, a leading gap (IPO), a heavy gap, and gaps in the shared regressors
    y[1, rng.choice(n_obs, 20, replace=False)] = np.nan
    y[2, :70] = np.nan
    y[3, ::2] = np.nan
    y[4, rng.choice(n_obs, 85, replace=False)] = np.nan  # 65 left: above the 60 minimum
    x[[5, 77], 3] = np.nan
    # a near-perfect fit (R^2 ~ 0.99999) guards the precision of the SSR computation
    y[6] = true_betas[6] @ x.T + rng.normal(0.0, 1e-4, size=n_obs)
    result = ols_batch(y, x, min_obs=60)
    for i in range(n_series):
        fit, n = _statsmodels_fit(y[i], x)
        assert result.nobs[i] == n
        np.testing.assert_allclose(result.params[i], fit.params, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(result.tvalues[i], fit.tvalues, rtol=1e-8, atol=1e-8)
        assert result.rsquared[i] == pytest.approx(fit.rsquared, rel=1e-8, abs=1e-10)
        assert result.resid_std[i] == pytest.approx(np.sqrt(fit.scale), rel=1e-8)


def test_regress_factor_betas_equals_statsmodels_on_frames():
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2024-01-01", periods=260)
    factors = pd.DataFrame(_design(rng, len(dates)), index=dates, columns=list(REGRESSION_FACTORS))
    loadings = rng.normal(0.0, 0.7, size=(3, 7))
    returns = pd.DataFrame(
        factors.to_numpy() @ loadings.T + rng.normal(0.0, 0.01, size=(len(dates), 3)),
        index=dates,
        columns=["AAA", "BBB", "CCC"],
    )
    returns.iloc[200:210, 1] = np.nan
    reg = regress_factor_betas(returns, factors, window=150)
    window = factors.iloc[-150:]
    for ticker in returns.columns:
        fit, n = _statsmodels_fit(returns[ticker].reindex(window.index).to_numpy(), window.to_numpy())
        np.testing.assert_allclose(reg.betas.loc[ticker].to_numpy(), fit.params[1:], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(reg.tstats.loc[ticker].to_numpy(), fit.tvalues[1:], rtol=1e-8)
        assert reg.r_squared[ticker] == pytest.approx(fit.rsquared, rel=1e-8)
        assert reg.data_points[ticker] == n
    assert reg.data_points["BBB"] == 140 and not reg.limited_history.any()
    assert reg.start == factors.index[-150] and reg.end == factors.index[-1]
    # 252-day window uses more data
    assert regress_factor_betas(returns, factors, window=252).data_points["AAA"] == 252


def test_limited_history_gets_null_betas_not_numbers():
    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2024-01-01", periods=150)
    factors = pd.DataFrame(_design(rng, 150), index=dates, columns=list(REGRESSION_FACTORS))
    returns = pd.DataFrame(rng.normal(0.0, 0.01, size=(150, 2)), index=dates, columns=["OLD", "IPO"])
    returns.iloc[:91, 1] = np.nan  # 59 overlapping days: one short of the minimum
    reg = regress_factor_betas(returns, factors)
    assert reg.limited_history.to_dict() == {"OLD": False, "IPO": True}
    assert reg.data_points["IPO"] == 59
    assert reg.betas.loc["IPO"].isna().all() and reg.tstats.loc["IPO"].isna().all()
    assert np.isnan(reg.r_squared["IPO"])
    record = {r["ticker"]: r for r in reg.to_records()}["IPO"]
    assert record["regression_stats"]["limited_history"] is True
    assert record["regression_stats"]["r_squared"] is None
    assert all(v is None for k, v in record["factor_exposures"].items() if k != "Short Interest")
    assert record["factor_exposures"]["Short Interest"] == 0.0
    # exactly 60 days is enough
    returns.iloc[90, 1] = 0.001
    assert not regress_factor_betas(returns, factors).limited_history["IPO"]


def test_factor_returns_are_market_and_style_spreads():
    etf = pd.DataFrame(
        {"SPY": [0.01, -0.02], "MTUM": [0.02, -0.01], "VTV": [0.0, 0.0], "VUG": [0.015, -0.03],
         "QUAL": [0.01, -0.02], "IJR": [0.03, 0.01], "SPLV": [0.005, -0.005]}
    )
    f = factor_returns_from_etfs(etf)
    assert list(f.columns) == list(REGRESSION_FACTORS)
    np.testing.assert_allclose(f["Market Beta"], [0.01, -0.02])
    np.testing.assert_allclose(f["Momentum"], [0.01, 0.01])
    np.testing.assert_allclose(f["Value"], [-0.01, 0.02])
    np.testing.assert_allclose(f["Size"], [0.02, 0.03])
    with pytest.raises(ValueError, match="SPLV"):
        factor_returns_from_etfs(etf.drop(columns="SPLV"))


def test_position_and_portfolio_exposures_hand_worked():
    betas = pd.DataFrame(
        {"Market Beta": [1.2, 0.8, np.nan], "Momentum": [0.5, -0.2, np.nan]}, index=["NVDA", "XOM", "NEW"]
    )
    # stock long $100k NVDA, short $50k XOM, an NVDA call with delta exposure $30k, an unmodelled name
    delta_exposure = pd.Series({"p1": 100_000.0, "p2": -50_000.0, "p3": 30_000.0, "p4": 10_000.0})
    underlying = pd.Series({"p1": "NVDA", "p2": "XOM", "p3": "NVDA", "p4": "NEW"})
    pos = position_factor_exposures(delta_exposure, underlying, betas)
    assert pos.loc["p1", "Market Beta"] == pytest.approx(120_000.0)
    assert pos.loc["p2", "Market Beta"] == pytest.approx(-40_000.0)
    assert pos.loc["p3", "Momentum"] == pytest.approx(15_000.0)
    assert pos.loc["p4"].drop("Short Interest").isna().all()
    assert (pos["Short Interest"] == 0.0).all()
    port = portfolio_factor_exposures(pos, equity=200_000.0)
    assert port.loc["Market Beta", "exposure_dollars"] == pytest.approx(120_000 - 40_000 + 36_000)
    assert port.loc["Market Beta", "exposure_fraction"] == pytest.approx(116_000 / 200_000)
    assert port.loc["Momentum", "exposure_dollars"] == pytest.approx(50_000 + 10_000 + 15_000)
    assert port.loc["Market Beta", "positions_without_betas"] == 1
    assert port.loc["Short Interest", "exposure_dollars"] == 0.0


def test_recovers_synthetic_provider_true_loadings():
    """Joint regression on SPY + style spreads recovers the synthetic model's loadings.

    The synthetic names also load on rates and oil, so those proxies (rates = -TLT / 17, the
    provider's duration; oil = USO) join the regression as extra columns, otherwise their
    omission would bias the market beta. The regressors then equal the model factors up to a
    2 bp ETF tracking error, the estimates are unbiased, and (estimate - truth) / standard
    error behaves like a standard normal: every |z| < 4.5 and the z's spread is about 1.
    """
    marketdata = pytest.importorskip("compute.marketdata")
    provider = marketdata.make_provider("synthetic")
    start, end = "2023-01-01", "2024-12-31"
    tickers = ["AAPL", "XOM", "NVDA", "JNJ", "F", "JPM", "TSLA", "PG"]
    etfs = list(FACTOR_ETFS.values())
    closes = pd.DataFrame({t: provider.daily_bars(t, start, end)["close"] for t in tickers + etfs + ["TLT", "USO"]})
    returns = simple_returns(closes).iloc[1:]
    factors = factor_returns_from_etfs(returns[etfs]).assign(
        **{"Interest Rate": -returns["TLT"] / 17.0, "Oil": returns["USO"]}
    )
    reg = regress_factor_betas(returns[tickers], factors, window=252)
    model_key = dict(
        zip(
            list(REGRESSION_FACTORS) + ["Interest Rate", "Oil"],
            ["market", "momentum", "value", "growth", "quality", "size", "low_volatility", "rates", "oil"],
        )
    )
    z_scores = []
    for ticker in tickers:
        truth = provider.true_loadings(ticker)
        assert reg.data_points[ticker] == 252
        for factor, key in model_key.items():
            estimate = reg.betas.at[ticker, factor]
            se = abs(estimate / reg.tstats.at[ticker, factor])
            z = (estimate - truth[key]) / se
            assert abs(z) < 4.5, (ticker, factor, estimate, truth[key], se)
            z_scores.append(z)
        assert reg.r_squared[ticker] > 0.15
    assert 0.6 < np.std(z_scores) < 1.4


def test_factor_exposure_report_shapes_routes():
    from compute.factors import factor_exposure_report

    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2024-01-01", periods=150)
    factors = pd.DataFrame(_design(rng, 150), index=dates, columns=list(REGRESSION_FACTORS))
    returns = pd.DataFrame(
        {"AAA": factors.to_numpy() @ np.full(7, 0.5) + rng.normal(0, 0.01, 150), "IPO": np.nan}, index=dates
    )
    reg = regress_factor_betas(returns, factors)
    exposure = pd.Series({"p1": 50_000.0, "p2": -20_000.0, "p3": 5_000.0})
    underlying = pd.Series({"p1": "AAA", "p2": "AAA", "p3": "IPO"})
    report = factor_exposure_report(exposure, underlying, reg, equity=100_000.0)
    market = report["portfolio"][0]
    assert market["factor_name"] == "Market Beta"
    assert market["exposure"] == pytest.approx(0.3 * reg.betas.at["AAA", "Market Beta"])
    assert market["positions_without_betas"] == 1
    assert report["portfolio"][-1] == {
        "factor_name": "Short Interest", "exposure": 0.0, "exposure_dollars": 0.0,
        "positions_without_betas": 0, "calculation_method": "mock",
    }
    p3 = report["positions"][2]
    assert p3["regression_stats"]["limited_history"] is True and p3["factor_exposures"]["Value"] is None
    assert p3["exposure_dollars"]["Value"] is None
    assert report["positions"][1]["exposure_dollars"]["Momentum"] == pytest.approx(-20_000 * reg.betas.at["AAA", "Momentum"])
