"""The portfolio's pictures, one function per chart, drawn from the figures the API answers
with: ``GET /portfolio/chart/{name}.png|svg`` and the risk and modeling reports call the same
functions, so a chart on screen and its copy in a PDF are the same drawing of the same numbers.

Charts (``PORTFOLIO_CHARTS``): ``exposure`` (long/short/gross/net, notional and delta-adjusted),
``sector`` and ``tag`` (net notional by group), ``greeks`` (now vs after the nearest expiry),
``factors`` (exposure per factor as a fraction of equity), ``scenarios`` (stress P&L per
template), ``var`` (the daily return distribution of today's holdings with historical VaR and
ES marked).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from matplotlib.figure import Figure

from services.reports import charts

PORTFOLIO_CHARTS = ("exposure", "sector", "tag", "greeks", "factors", "scenarios", "var")
GREEKS = ("delta", "gamma", "theta", "vega", "rho")
STATS = ("long", "short", "gross", "net")
MAX_BARS = 15


def exposure(totals: Mapping) -> Figure:
    """``totals`` of ``GET /portfolio/exposures``."""
    return charts.grouped_bars(list(STATS), {
        "notional": [totals["notional"][f"{s}_exposure"] or 0.0 for s in STATS],
        "delta-adjusted": [totals["delta"][f"{s}_exposure"] or 0.0 for s in STATS]},
        title="Exposure: notional and delta-adjusted", ylabel="$")


def signed_groups(groups: Sequence[Mapping], measure: str = "notional", stat: str = "net") -> tuple[list[str], list[float]]:
    """The ``MAX_BARS`` largest groups by |value| (``by_sector`` / ``by_tag`` rows)."""
    rows = sorted(groups, key=lambda g: -abs(g[measure][stat] or 0.0))[:MAX_BARS]
    return [str(g["group"]) for g in rows], [float(g[measure][stat] or 0.0) for g in rows]


def groups(rows: Sequence[Mapping], by: str) -> Figure:
    labels, values = signed_groups(rows)
    return charts.bars(labels, values, title=f"Net notional exposure by {by}", xlabel="$")


def greeks(now: Mapping, after: Mapping | None) -> Figure:
    """``current`` and ``after_expiry`` of ``GET /risk/greeks``."""
    series = {"now": [now.get(g) or 0.0 for g in GREEKS]}
    if after:
        series["after expiry"] = [after.get(g) or 0.0 for g in GREEKS]
    return charts.grouped_bars(list(GREEKS), series, title="Greeks now vs after the nearest expiry")


def factors(rows: Sequence[Mapping]) -> Figure:
    """``portfolio`` rows of ``GET /risk/factors``."""
    return charts.bars([f["factor_name"] for f in rows], [f.get("exposure") or 0.0 for f in rows],
                       title="Factor exposure (fraction of equity)", percent=True)


def scenarios(rows: Sequence[Mapping]) -> Figure:
    """``scenarios`` rows of ``POST /risk/scenarios``."""
    return charts.bars([s["name"] for s in rows], [s["pnl"] or 0.0 for s in rows], title="Stress scenario P&L", xlabel="$")


def var(returns, level: float = 0.95) -> Figure:
    """Daily returns of today's holdings (historical VaR's sample) with VaR and ES at ``level``."""
    return charts.return_distribution(returns, level, title="Daily return of today's holdings, last 252 sessions")


def portfolio_chart(catalog, provider, user_id: int, name: str, portfolio_id: str | None = None, *,
                    level: float = 0.95) -> Figure:
    """One chart of the user's portfolio (``name`` in ``PORTFOLIO_CHARTS``), from the services
    the API's routes call; ``LookupError`` for a portfolio that is not theirs."""
    from services.portfolio import views
    from services.risk import service as risk

    if name in ("exposure", "sector", "tag", "greeks"):
        book = risk.get_priced_book(catalog, provider, user_id, risk.default_portfolio_id(catalog, user_id, portfolio_id))
        if name == "greeks":
            data = views.risk_greeks(book, "portfolio", True)
            return greeks(data["current"], data.get("after_expiry"))
        data = views.portfolio_exposures(book)
        if name == "exposure":
            return exposure(data["totals"])
        return groups(data["by_sector" if name == "sector" else "by_tag"], name)
    if name == "factors":
        report, _ = risk.portfolio_factors(catalog, provider, user_id, portfolio_id)
        return factors(report["portfolio"])
    if name == "scenarios":
        ids = [t["id"] for t in risk.scenario_template_list()]
        data, _ = risk.portfolio_scenarios(catalog, provider, user_id, portfolio_id, scenario_ids=ids)
        return scenarios(data["scenarios"])
    if name == "var":
        return var(risk.portfolio_var_returns(catalog, provider, user_id, portfolio_id).to_numpy(), level)
    raise ValueError(f"unknown portfolio chart {name!r}; use one of {', '.join(PORTFOLIO_CHARTS)}")


def portfolio_chart_bytes(catalog, provider, user_id: int, name: str, ext: str, portfolio_id: str | None = None, *,
                          level: float = 0.95) -> bytes:
    """``portfolio_chart`` rendered as PNG or SVG, drawn once per priced book: kept with the
    book's cached views, so it lives exactly as long as the book's version and clock minute
    (a position edit or the next minute's prices draw it anew)."""
    from services.reports import charts
    from services.risk import service as risk

    from services.portfolio.views import memoized

    book = risk.get_priced_book(catalog, provider, user_id, risk.default_portfolio_id(catalog, user_id, portfolio_id))
    return memoized(book, ("chart", name, ext, round(float(level), 6)),
                    lambda: charts.render(portfolio_chart(catalog, provider, user_id, name, portfolio_id, level=level), ext))
