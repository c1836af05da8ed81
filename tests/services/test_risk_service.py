"""Risk service figures against independent references (statsmodels, empyrical, true loadings, BSM)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from compute.marketdata.synthetic import SyntheticProvider

AS_OF = dt.date(2025, 6, 13)  # a Friday session


@dataclass
class Book:
    portfolio: dict
    positions: pd.DataFrame
    cash: float
    equity: float
    as_of: dt.datetime


def make_book(provider, rows, cash=0.0) -> Book:
    from compute.book import price_positions

    frame = pd.DataFrame(rows)
    for col, default in (("entry_price", 1.0), ("strike", None), ("expiry", None), ("option_right", None),
                         ("multiplier", 1), ("strategy", None)):
        if col not in frame.columns:
            frame[col] = default
    frame["tags"] = [[] for _ in range(len(frame))]
    priced = price_positions(frame, provider, as_of=AS_OF)
    equity = float(priced["market_value"].sum()) + cash
    return Book({"id": "pf_test"}, priced, cash, equity, priced.attrs["as_of"])


def stock(pid, ticker, qty):
    return {"position_id": pid, "symbol": ticker, "underlying": ticker, "type": "LONG" if qty > 0 else "SHORT", "quantity": float(qty)}


@pytest.fixture(scope="module")
def provider():
    return SyntheticProvider(seed=3)


@pytest.fixture(scope="module")
def stock_book(provider):
    return make_book(provider, [stock("p1", "AAPL", 300), stock("p2", "JPM", 200), stock("p3", "XOM", -400),
                                stock("p4", "NVDA", 150)], cash=50_000.0)


def test_betas_equal_statsmodels_and_recover_true_loadings(provider, stock_book):
    import statsmodels.api as sm

    from services.risk.service import risk_inputs

    inputs = risk_inputs(stock_book, provider, window=252)
    reg = inputs.regression
    factors = inputs.history.factor_returns.dropna(how="all").iloc[-252:]
    for ticker in ("AAPL", "JPM", "XOM", "NVDA"):
        y = inputs.history.underlying_returns[ticker].reindex(factors.index)
        fit = sm.OLS(y.to_numpy(), sm.add_constant(factors.to_numpy()), missing="drop").fit()
        np.testing.assert_allclose(reg.betas.loc[ticker].to_numpy(), fit.params[1:], rtol=0, atol=1e-8)
        np.testing.assert_allclose(reg.tstats.loc[ticker].to_numpy(), fit.tvalues[1:], rtol=1e-8, atol=1e-8)
        assert reg.r_squared[ticker] == pytest.approx(fit.rsquared, abs=1e-8)
        assert reg.data_points[ticker] == int(fit.nobs) == 252
        # the synthetic provider's true loadings lie within 4 standard errors of each beta
        true = provider.true_loadings(ticker)
        names = {"Market Beta": "market", "Momentum": "momentum", "Value": "value", "Growth": "growth", "Quality": "quality",
                 "Size": "size", "Low Volatility": "low_volatility", "Interest Rate": "rates", "Oil": "oil"}
        se = fit.bse[1:]
        for k, (factor, key) in enumerate(names.items()):
            assert abs(fit.params[1 + k] - true[key]) < 4 * se[k] + 1e-3, (ticker, factor)


def test_limited_history_gets_null_betas(provider):
    """A name listed 40 sessions ago: flagged limited_history, null betas, never a made-up number."""
    from services.risk.service import factor_report, risk_inputs

    class RecentListing(SyntheticProvider):
        def daily_bars(self, ticker, start, end):
            bars = super().daily_bars(ticker, start, end)
            return bars.iloc[-40:] if ticker == "NEWCO" else bars

    recent = RecentListing(seed=3)
    book = make_book(recent, [stock("p1", "AAPL", 100), stock("p2", "NEWCO", 100)])
    inputs = risk_inputs(book, recent)
    report = factor_report(inputs)
    rows = {r["ticker"]: r for r in report["positions"]}
    assert rows["NEWCO"]["regression_stats"]["limited_history"] is True
    assert rows["NEWCO"]["regression_stats"]["data_points"] == 39
    assert all(v is None for k, v in rows["NEWCO"]["factor_exposures"].items() if k != "Short Interest")
    assert rows["NEWCO"]["factor_exposures"]["Short Interest"] == 0.0
    assert rows["AAPL"]["regression_stats"]["limited_history"] is False
    market = next(f for f in report["portfolio"] if f["factor_name"] == "Market Beta")
    assert market["positions_without_betas"] == 1
    assert market["exposure_dollars"] == pytest.approx(rows["AAPL"]["exposure_dollars"]["Market Beta"])
    assert any("NEWCO" in w for w in report["warnings"])


def test_overview_and_historical_var_match_empyrical(provider, stock_book):
    import empyrical

    from services.risk.service import overview_report, risk_inputs, var_report

    inputs = risk_inputs(stock_book, provider, sessions=252)
    overview = overview_report(inputs, "portfolio", "daily")
    exposure = stock_book.positions.set_index("underlying")["delta_exposure"]
    returns = inputs.history.underlying_returns.iloc[-252:][list(exposure.index)].fillna(0.0) @ (exposure / inputs.equity)
    assert overview["observations"] == len(returns) == 252
    assert overview["metrics"]["annualized_volatility"]["raw"] == pytest.approx(empyrical.annual_volatility(returns), rel=1e-9)
    assert overview["metrics"]["max_drawdown"]["raw"] == pytest.approx(empyrical.max_drawdown(returns), rel=1e-9)
    assert overview["metrics"]["var_1d"]["return"] == pytest.approx(empyrical.value_at_risk(returns, 0.05), rel=1e-9)
    spy = inputs.history.benchmark_returns.iloc[-252:]
    assert overview["metrics"]["beta"]["value"] == pytest.approx(np.cov(returns, spy)[0, 1] / spy.var(), rel=1e-9)

    var = var_report(inputs, paths=200_000, seed=1, horizons=(1,))
    hist = next(r for r in var["var"] if r["method"] == "historical" and r["level"] == 0.95 and r["horizon_days"] == 1)
    assert hist["return"] == pytest.approx(empyrical.value_at_risk(returns, 0.05), rel=1e-9)
    assert hist["dollars"] == pytest.approx(hist["return"] * inputs.equity)
    # Monte Carlo of a linear (stock-only) book converges to the normal VaR of the same factor model
    reg = inputs.regression
    names = list(reg.betas.columns)
    cov = inputs.history.factor_returns.dropna().iloc[-reg.window:][names].cov().to_numpy()
    e = exposure.groupby(level=0).sum()
    B = reg.betas.loc[e.index, names].to_numpy()
    variance = e.to_numpy() @ (B @ cov @ B.T + np.diag(reg.residual_vol[e.index].to_numpy() ** 2)) @ e.to_numpy()
    mc = var["monte_carlo"]["results"][0]
    for level, z in ((0.95, -1.6448536269514722), (0.99, -2.3263478740408408)):
        simulated = next(x["dollars"] for x in mc["var"] if x["level"] == level)
        assert simulated == pytest.approx(z * math.sqrt(variance), rel=0.02)


def test_scenarios_move_through_betas_and_reprice_options(provider):
    from services.risk.service import risk_inputs, scenario_report
    from compute.greeks import bsm_price
    from compute.instruments import format_occ, next_monthly_expiry

    spot = float(provider.daily_bars("AAPL", AS_OF - dt.timedelta(days=7), AS_OF)["close"].iloc[-1])
    expiry = next_monthly_expiry(AS_OF, 2)
    strike = float(round(spot))
    rows = [stock("s1", "AAPL", 100), stock("s2", "XOM", -200),
            {"position_id": "o1", "symbol": format_occ("AAPL", expiry, "C", strike), "underlying": "AAPL", "type": "LC",
             "quantity": 10.0, "strike": strike, "expiry": expiry, "option_right": "C", "multiplier": 100}]
    book = make_book(provider, rows, cash=100_000.0)
    inputs = risk_inputs(book, provider)
    report = scenario_report(inputs, ["market_down_10", "oil_up_5"], {"name": "Vol", "parameters": {"low_volatility_change": -0.2}})
    down, oil, custom = report["scenarios"]
    betas = inputs.regression.betas
    p = book.positions.set_index("position_id")
    move = betas.at["AAPL", "Market Beta"] * -0.10
    expected_stock = 100 * p.at["s1", "price"] * move + -200 * p.at["s2", "price"] * betas.at["XOM", "Market Beta"] * -0.10
    o = p.loc["o1"]
    base = bsm_price(o["underlying_price"], strike, o["time_to_expiry"], 0.045, o["dividend_yield"], o["iv"], True)
    shocked = bsm_price(o["underlying_price"] * (1 + move), strike, o["time_to_expiry"], 0.045, o["dividend_yield"], o["iv"], True)
    expected_option = 10 * 100 * float(shocked - base)
    assert down["by_type"]["LC"]["pnl"] == pytest.approx(expected_option, rel=1e-9)
    assert down["pnl"] == pytest.approx(expected_stock + expected_option, rel=1e-9)
    assert down["pnl_percent"] == pytest.approx(down["pnl"] / book.equity * 100)
    # not linear: the call loses less than its delta says
    assert expected_option > 10 * 100 * o["delta"] * o["underlying_price"] * move
    assert down["worst_positions"][0]["pnl"] == min(down["by_type"]["LONG"]["pnl"], expected_option)
    # oil has its own (USO-proxy) betas: no missing-factor warning, XOM (an oil name) gains on the short's loss
    assert not any("Oil" in w for w in oil["warnings"])
    assert oil["by_type"]["SHORT"]["pnl"] == pytest.approx(-200 * p.at["s2", "price"] * betas.at["XOM", "Oil"] * 0.05, rel=1e-9)
    assert custom["name"] == "Vol" and custom["shocks"] == {"Low Volatility": -0.2}
