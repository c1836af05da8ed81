"""Warm-up work shared by the API replica (``serve_app.warmup``) and the job workers
(``services.reports.jobs.warm_up``): a small synthetic book priced and analysed through the
very service functions the routes and reports call, and one chart of each kind drawn, so a
process's first real request only loads cached numba kernels instead of compiling them, and
matplotlib's fonts are loaded. Offline: a synthetic provider, no catalog, no network."""

from __future__ import annotations

import datetime as dt

import numpy as np


def warm_charts() -> None:
    """matplotlib imported, its fonts loaded and one chart of each kind drawn (a chart's first
    view paid about a second for them), on a year of made-up daily returns."""
    import pandas as pd

    from services.reports import charts

    days = pd.bdate_range("2024-01-01", periods=260)
    returns = np.random.default_rng(0).normal(0.0004, 0.01, len(days))
    for fig in (charts.equity_underwater(days, 100_000 * np.cumprod(1 + returns)), charts.monthly_heatmap(days, returns),
                charts.return_distribution(returns), charts.bars(["a", "b"], [1.0, -1.0], title="warm-up")):
        charts.render(fig, "png")


def warm_book(provider) -> dict:
    """A small book of stocks, a short and options priced and analysed through the very service
    functions the portfolio and risk routes call (exposures, Greeks, factors, scenarios, VaR), so
    each numba kernel meets the argument types of a request. Measured on a fresh install before
    this: the first GET /portfolio compiled ``exposure_sums_nb`` (2.5 s), the first factors,
    scenarios and VaR one kernel each (1.4-1.5 s). Returns the figures (as the routes answer
    them), for ``warm_report`` to draw."""
    from cluster.catalog import Portfolio
    from compute.scenarios import scenario_templates
    from services.portfolio import views
    from services.portfolio.service import PricedBook, parse_hypothetical, price_position_specs
    from services.risk import service as risk

    expiry = (provider.now() + dt.timedelta(days=45)).date().isoformat()
    specs = parse_hypothetical([
        {"ticker": "SPY", "quantity": 10}, {"ticker": "AAPL", "quantity": -5}, {"ticker": "MSFT", "quantity": 3},
        {"ticker": "SPY", "quantity": 1, "type": "LC", "strike": 500, "expiration": expiry},
        {"ticker": "AAPL", "quantity": -1, "type": "SP", "strike": 150, "expiration": expiry}])
    priced = price_position_specs(provider, specs)
    equity = float(np.nansum(priced["market_value"].to_numpy(dtype=float))) + 100_000.0
    book = PricedBook(Portfolio(id="warm-up", name="warm-up", user_id=0, cash=100_000.0), priced, 100_000.0, equity,
                      priced.attrs.get("as_of") or dt.datetime.now(dt.timezone.utc))
    views.portfolio_summary(book)
    figures = {"exposures": views.portfolio_exposures(book), "greeks": views.risk_greeks(book, "portfolio", True)}
    inputs = risk.risk_inputs(book, provider, sessions=252)
    figures["factors"] = risk.factor_report(inputs)
    figures["scenarios"] = risk.scenario_report(inputs, [t["id"] for t in scenario_templates()], None, "portfolio")
    figures["var"] = risk.var_report(inputs, paths=1_000)
    figures["var_returns"] = risk.historical_returns(inputs, "portfolio").to_numpy()
    risk.overview_report(inputs, "portfolio", "weekly")
    return figures


def warm_report(provider) -> int:
    """``warm_book``'s figures drawn with the risk report's own chart functions and laid out as a
    PDF (reportlab's fonts and layout engine loaded, every chart kind rendered as the report
    embeds it): the first ``risk_summary`` after a start then only gathers and draws. Returns
    the PDF's size."""
    from services.reports import document as d
    from services.reports import portfolio_charts as pc

    figures = warm_book(provider)
    warm_charts()
    totals, greeks = figures["exposures"]["totals"], figures["greeks"]
    doc = d.Document("Warm-up", "synthetic book").add(
        d.Heading("Exposure"), d.KeyValues([("Net", d.money(totals["notional"]["net_exposure"]))], "Totals"),
        d.Chart(pc.exposure(totals), "exposure"),
        d.Chart(pc.groups(figures["exposures"]["by_sector"], "sector"), "sector"),
        d.Chart(pc.greeks(greeks["current"], greeks.get("after_expiry")), "greeks"),
        d.Chart(pc.factors(figures["factors"]["portfolio"]), "factors"),
        d.Chart(pc.scenarios(figures["scenarios"]["scenarios"]), "scenarios"),
        d.Chart(pc.var(figures["var_returns"]), "var"),
        d.Table(["Scenario", "P&L"], [[s["name"], d.money(s["pnl"])] for s in figures["scenarios"]["scenarios"]]))
    data, _ = d.render(doc, "pdf")
    return len(data)
