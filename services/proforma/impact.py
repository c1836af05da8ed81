"""Impact of a modified book, computed, not estimated: every figure of the original and the
modified book comes from the engines behind ``GET /portfolio/exposures``, ``GET /risk/greeks``,
``GET /risk/factors``, ``GET /risk/var`` and ``POST /risk/scenarios`` run on each book, and the
impact is their difference (after - before).

Figures (``book_figures``): notional and delta-adjusted long/short/gross/net exposure, net
exposure by sector and by tag, the five position Greeks, dollar exposure to the 7+1 factors,
1-day VaR 95/99 historical (current holdings on the last 252 sessions) and Monte Carlo
(factor simulation, options repriced with Black-Scholes; ``MC_PATHS`` paths, seed 0, the same
as ``GET /risk/var?paths=20000&seed=0``), and every stress template's P&L.
"""

from __future__ import annotations

import math

from compute.marketdata import MarketDataError
from compute.scenarios import SCENARIO_TEMPLATES
from compute.jsonsafe import finite_or_none
from services.portfolio import views
from services.risk import service as risk

MC_PATHS = 20_000
GREEKS = ("delta", "gamma", "theta", "vega", "rho")
STATS = ("long", "short", "gross", "net")


def _r(x, digits: int = 2):
    x = finite_or_none(x)
    return None if x is None else round(x, digits)


def book_figures(book, provider, *, mc_paths: int = MC_PATHS, include_stress: bool = True) -> dict:
    """Every impact figure of one priced book (see module docs); risk sections are null with a
    warning when the book has no positive equity or its market history is missing."""
    exposures = views.portfolio_exposures(book)
    greeks = views.risk_greeks(book, include_after_expiry=False)["current"]
    out = {
        "total_value": _r(book.equity),
        "positions_value": _r(book.equity - book.cash),
        "cash": _r(book.cash),
        "position_count": int(len(book.positions)),
        "exposures": {m: {s: exposures["totals"][m][f"{s}_exposure"] for s in STATS} for m in ("notional", "delta")},
        "by_sector": {g["group"]: {"net": g["notional"]["net"], "gross": g["notional"]["gross"], "delta_net": g["delta"]["net"]}
                      for g in exposures["by_sector"]},
        "by_tag": {g["group"]: {"net": g["notional"]["net"], "gross": g["notional"]["gross"], "delta_net": g["delta"]["net"]}
                   for g in exposures["by_tag"]},
        "greeks": {g: greeks[g] for g in GREEKS},
        "factors": None, "var": None, "stress": None, "warnings": [],
    }
    if not len(book.positions):
        out["warnings"].append("no positions: no risk figures")
        return out
    try:
        inputs = risk.risk_inputs(book, provider, sessions=252)
    except (risk.RiskInputError, MarketDataError) as exc:
        out["warnings"].append(f"risk figures unavailable: {exc}")
        return out
    factors = risk.factor_report(inputs)
    out["factors"] = {f["factor_name"]: _r(f["exposure_dollars"]) for f in factors["portfolio"]}
    for extra in factors["additional_factors"]:
        out["factors"][extra["factor_name"]] = _r(extra["exposure_dollars"])
    var = risk.var_report(inputs, paths=mc_paths, seed=0, horizons=(1,))
    figures = {}
    for row in var["var"]:
        if row["horizon_days"] == 1 and row["method"] == "historical":
            figures[f"historical_{int(round(row['level'] * 100))}"] = _r(row["dollars"])
    if var["monte_carlo"]:
        for row in var["monte_carlo"]["results"][0]["var"]:
            figures[f"monte_carlo_{int(round(row['level'] * 100))}"] = _r(row["dollars"])
    out["var"] = figures
    if include_stress:
        report = risk.scenario_report(inputs, [s.id for s in SCENARIO_TEMPLATES])
        out["stress"] = {s["id"]: _r(s["pnl"]) for s in report["scenarios"]}
        out["warnings"].extend(w for w in report["warnings"] if w not in out["warnings"])
    out["warnings"].extend(w for w in var["warnings"] + factors["warnings"] if w not in out["warnings"])
    return out


def _change(before, after):
    if before is None and after is None:
        return None
    return _r((after or 0.0) - (before or 0.0))


def _triple(before, after) -> dict:
    return {"before": before, "after": after, "change": _change(before, after)}


def _keyed(before: dict | None, after: dict | None) -> dict | None:
    if before is None and after is None:
        return None
    keys = list(dict.fromkeys(list(before or {}) + list(after or {})))
    return {k: _triple((before or {}).get(k), (after or {}).get(k)) for k in keys}


def _groups(before: dict, after: dict) -> dict:
    keys = list(dict.fromkeys(list(before) + list(after)))
    zero = {"net": 0.0, "gross": 0.0, "delta_net": 0.0}
    return {str(k): {m: _triple(before.get(k, zero)[m], after.get(k, zero)[m]) for m in ("net", "gross", "delta_net")}
            for k in keys}


def impact(before: dict, after: dict) -> dict:
    """Before, after and change of every figure, plus the spec 7.2 headline fields."""
    equity = before["total_value"] or 0.0
    net_before = before["exposures"]["notional"]["net"] or 0.0
    net_after = after["exposures"]["notional"]["net"] or 0.0
    tech_before = before["by_sector"].get("Technology", {}).get("net") or 0.0
    tech_after = after["by_sector"].get("Technology", {}).get("net") or 0.0
    return {
        "total_value": _triple(before["total_value"], after["total_value"]),
        "exposures": {m: {s: _triple(before["exposures"][m][s], after["exposures"][m][s]) for s in STATS}
                      for m in ("notional", "delta")},
        "by_sector": _groups(before["by_sector"], after["by_sector"]),
        "by_tag": _groups(before["by_tag"], after["by_tag"]),
        "greeks": {g: _triple(before["greeks"][g], after["greeks"][g]) for g in GREEKS},
        "factors": _keyed(before["factors"], after["factors"]),
        "var": _keyed(before["var"], after["var"]),
        "stress": _keyed(before["stress"], after["stress"]),
        "net_exposure_change": _r((net_after - net_before) / equity, 6) if equity > 0 and math.isfinite(equity) else None,
        "tech_exposure_change": _r((tech_after - tech_before) / equity, 6) if equity > 0 and math.isfinite(equity) else None,
        "greeks_change": {g: _change(before["greeks"][g], after["greeks"][g]) for g in GREEKS},
        "warnings": list(dict.fromkeys(before["warnings"] + after["warnings"])),
    }
