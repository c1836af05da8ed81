"""Hedge search (spec 7.6): size hedges by mixed-integer optimisation, fanned out over Ray.

Risks (``risk_to_hedge``), each a dollar figure linear in positions, read off the priced book
(the same per-position columns as ``GET /portfolio`` and ``GET /risk/factors``):

- ``market_beta``: the Market Beta factor exposure, sum beta_i,Market x delta exposure_i;
- ``sector_<name>`` (``sector_technology``, ``sector_health_care``...): net delta-adjusted
  exposure of the sector's positions (an ETF counts in its own sector: XLK and QQQ are
  Technology, SPY Broad Market, IWM Small Cap);
- a factor by name (``momentum``, ``value``, ``growth``, ``size``, ``quality``,
  ``low_volatility``, ``short_interest``, ``interest_rate``, ``oil``): its dollar exposure;
- ``delta`` (dollar delta), ``gamma``, ``vega`` (position Greeks);
- ``var_95``: 1-day historical VaR 95 %. It is not linear: hedges are sized on the market beta
  (its dominant driver) and ranked by the VaR of the hedged book, recomputed in full.

Candidates: SPY, QQQ, IWM and the eleven Select Sector SPDRs (bought or sold short), and their
listed puts and calls (bought only) at the ``CHAIN_STRIKES`` strikes nearest spot of the
``CHAIN_EXPIRIES`` monthly expiries (third Fridays) at least ``MIN_DAYS`` days out (at most
``MAX_DAYS``), priced
by the book engine (listed mark or model). Cost: ETF notional |shares| x price (margin-free
cost, whether bought or shorted); options premium x 100 + ``OPTION_FEE`` per contract.

Search: one MILP (``compute.hedge.solve_hedge``, HiGHS) per candidate group (an ETF and its
chain) and one over every candidate, each a Ray task; the best distinct solutions are then
evaluated in full in the job's process (where the market data is already loaded): the hedged
book's risk figures, side effects on the other risks, VaR and every stress template's P&L
(``services.proforma.impact``). The best ``top`` by the risk left (VaR for ``var_95``) are
returned, ranked, with the time of each phase (``timings``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time

import numpy as np
import pandas as pd

from cluster.errors import InputError
from compute.book import price_positions
from compute.factors import ALL_FACTORS
from compute.hedge import solve_subset
from compute.instruments import next_monthly_expiry
from compute.marketdata import MarketDataError
from compute.marketdata.reference import SECTOR_SPDRS
from services.portfolio import service as portfolio_service
from services.proforma import sessions
from services.risk import service as risk

INDEX_ETFS = ("SPY", "QQQ", "IWM")
ETF_CANDIDATES = INDEX_ETFS + tuple(t for t, *_ in SECTOR_SPDRS)
SECTORS = ("Technology", "Financials", "Health Care", "Energy", "Industrials", "Consumer Discretionary",
           "Consumer Staples", "Utilities", "Materials", "Real Estate", "Communication Services",
           "Broad Market", "Small Cap")
FACTOR_RISKS = {re.sub(r"[^a-z]+", "_", f.lower()).strip("_"): f for f in list(ALL_FACTORS) + list(risk.EXTRA_FACTOR_PROXIES)}
FACTOR_RISKS.pop("market_beta", None)
SIMPLE_RISKS = ("market_beta", "delta", "gamma", "vega", "var_95")
INSTRUMENTS = ("options", "etfs")
OPTION_FEE = 0.65
CHAIN_EXPIRIES = 2
CHAIN_STRIKES = 6
MIN_DAYS, MAX_DAYS = 14, 120
MAX_POSITIONS = 5
MAX_TOP = 10


class HedgeInputError(InputError):
    """Bad input to the hedge search."""


def _snake(text: str) -> str:
    return re.sub(r"[^a-z]+", "_", text.lower()).strip("_")


SECTOR_RISKS = {f"sector_{_snake(s)}": s for s in SECTORS}


def risk_names() -> list[str]:
    return list(SIMPLE_RISKS) + sorted(SECTOR_RISKS) + sorted(FACTOR_RISKS)


def validate(body: dict) -> dict:
    """The search parameters from the request body (400s naming the field)."""
    name = body.get("risk_to_hedge")
    if not isinstance(name, str) or name.strip().lower() not in set(risk_names()):
        raise HedgeInputError("risk_to_hedge", f"{name!r} is not a known risk; use one of {', '.join(risk_names())}")
    budget = body.get("budget")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not math.isfinite(budget) or not 0 < budget <= 1e9:
        raise HedgeInputError("budget", "must be a positive number of dollars (at most 1e9)")
    constraints = body.get("constraints") or {}
    if not isinstance(constraints, dict):
        raise HedgeInputError("constraints", "must be an object")
    k = constraints.get("max_positions", 3)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_POSITIONS:
        raise HedgeInputError("constraints.max_positions", f"must be an integer 1..{MAX_POSITIONS}")
    allowed = constraints.get("allowed_instruments", list(INSTRUMENTS))
    if not isinstance(allowed, list) or not allowed or any(a not in INSTRUMENTS for a in allowed):
        raise HedgeInputError("constraints.allowed_instruments", f"a non-empty list of {', '.join(INSTRUMENTS)}")
    top = body.get("top", 3)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise HedgeInputError("top", f"must be an integer 1..{MAX_TOP}")
    return {"risk_to_hedge": name.strip().lower(), "budget": float(budget), "max_positions": k,
            "allowed_instruments": sorted(set(allowed)), "top": top}


# -- candidates and per-unit effects ---------------------------------------------------------

def candidate_rows(provider, allowed: list[str], today: dt.date) -> list[dict]:
    """One-unit rows (``price_positions`` input) of every candidate instrument."""
    rows = []
    for etf in ETF_CANDIDATES:
        if "etfs" in allowed:
            rows.append({"position_id": etf, "symbol": etf, "underlying": etf, "type": "LONG", "quantity": 1.0,
                         "entry_price": None, "strike": None, "expiry": None, "option_right": None, "multiplier": 1,
                         "strategy": None, "tags": [], "entry_date": None})
        if "options" not in allowed:
            continue
        first = next_monthly_expiry(today + dt.timedelta(days=MIN_DAYS))
        monthlies = [first, next_monthly_expiry(first + dt.timedelta(days=1))][:CHAIN_EXPIRIES]
        try:
            chain = provider.option_chain(etf, expiries=monthlies, strikes=CHAIN_STRIKES)
        except MarketDataError:
            try:  # a source that lists other expiries: all of them, filtered below
                chain = provider.option_chain(etf, expiries="all", strikes=CHAIN_STRIKES)
            except MarketDataError:
                continue
        days = np.array([(pd.Timestamp(e).date() - today).days for e in chain["expiry"]])
        chain = chain[(days >= MIN_DAYS) & (days <= MAX_DAYS)]
        expiries = sorted(set(chain["expiry"]))[:CHAIN_EXPIRIES]
        for expiry in expiries:
            block = chain[chain["expiry"] == expiry]
            spot = float(block["underlying_price"].iloc[0])
            strikes = sorted(set(block["strike"]), key=lambda k: abs(k - spot))[:CHAIN_STRIKES]
            for r in block[block["strike"].isin(strikes)].itertuples(index=False):
                right = str(r.right).upper()[:1]
                rows.append({"position_id": r.symbol, "symbol": r.symbol, "underlying": etf,
                             "type": "LC" if right == "C" else "LP", "quantity": 1.0, "entry_price": None,
                             "strike": float(r.strike), "expiry": pd.Timestamp(expiry).date().isoformat(),
                             "option_right": right, "multiplier": 100, "strategy": None, "tags": [], "entry_date": None})
    return rows


def risk_columns(frame: pd.DataFrame, betas: pd.DataFrame) -> pd.DataFrame:
    """Per-row dollar contribution to every linear risk (rows of a priced frame)."""
    live = ~frame["expired"].fillna(False).astype(bool).to_numpy()
    exposure = np.where(live, pd.to_numeric(frame["delta_exposure"], errors="coerce").fillna(0.0).to_numpy(), 0.0)
    underlying = frame["underlying"].astype(str).to_numpy()
    out = {
        "delta": np.where(live, np.nan_to_num(frame["dollar_delta"].to_numpy(np.float64)), 0.0),
        "gamma": np.where(live, np.nan_to_num(frame["position_gamma"].to_numpy(np.float64)), 0.0),
        "vega": np.where(live, np.nan_to_num(frame["position_vega"].to_numpy(np.float64)), 0.0),
    }
    for risk_name, factor in [("market_beta", "Market Beta")] + list(FACTOR_RISKS.items()):
        if factor in betas.columns:
            b = betas[factor].reindex(underlying).to_numpy(np.float64)
        else:
            b = np.zeros(len(frame))
        out[risk_name] = np.nan_to_num(b) * exposure
    sector = frame["sector"].astype(str).to_numpy()
    for risk_name, name in SECTOR_RISKS.items():
        out[risk_name] = np.where(sector == name, exposure, 0.0)
    return pd.DataFrame(out, index=frame["position_id"].astype(str).to_numpy())


# -- Ray tasks -------------------------------------------------------------------------------

def _evaluate(rows, provider, portfolio_id, cash, include_stress=True):
    from services.proforma import impact

    book = sessions.priced(rows, provider, portfolio_id=portfolio_id, name="hedge", cash=cash)
    return impact.book_figures(book, provider, include_stress=include_stress)


def _remote(fn):
    import ray

    return ray.remote(num_cpus=0.25, max_retries=0)(fn)


# -- the search ------------------------------------------------------------------------------

def search(catalog, provider, user_id: int, params: dict, *, settings=None, progress=None, portfolio_id=None) -> dict:
    """Run the search for the user's book; the job result (see module docs)."""
    import ray

    started = mark = time.perf_counter()
    timings: dict[str, float] = {}
    p = validate(params)
    settings = settings or getattr(provider, "_settings", None)
    pf = portfolio_service.get_portfolio(catalog, user_id, params.get("portfolio_id", portfolio_id))
    book_rows = sessions.rows_from_frame(portfolio_service.load_positions(catalog, pf.id))
    cash = float(pf.cash or 0.0)
    book = sessions.priced(book_rows, provider, portfolio_id=pf.id, name=pf.name, cash=cash)
    today = risk.book_as_of(book)
    cand = candidate_rows(provider, p["allowed_instruments"], today)
    if not cand:
        raise HedgeInputError("constraints.allowed_instruments", "no candidate instruments could be priced")
    cand_frame = price_positions(sessions.frame_from_rows(cand), provider)
    price = cand_frame["price"].to_numpy(np.float64)
    is_option = cand_frame["type"].isin(["LC", "LP"]).to_numpy()
    cost = np.where(is_option, price * 100.0 + OPTION_FEE, price)
    underlyings = list(dict.fromkeys(list(book.positions["underlying"].astype(str)) + list(ETF_CANDIDATES)))
    history = risk.market_history(provider, underlyings, today, risk.DEFAULT_WINDOW + 5)
    betas = risk.regress(history).betas
    book_risk = risk_columns(book.positions, betas).sum() if len(book.positions) else pd.Series(0.0, index=risk_columns(cand_frame, betas).columns)
    unit = risk_columns(cand_frame, betas)
    target = "market_beta" if p["risk_to_hedge"] == "var_95" else p["risk_to_hedge"]
    r0 = float(book_risk[target])
    effect = unit[target].to_numpy(np.float64)
    ok = np.isfinite(cost) & (cost > 0) & (cost <= p["budget"]) & (effect != 0)
    can_short = ~is_option
    timings["candidates_s"] = round(time.perf_counter() - mark, 3)
    mark = time.perf_counter()
    if progress:
        progress(0.2, f"{len(cand)} candidates priced; solving", force=True)
    solve = _remote(solve_subset)
    groups = {}
    for j, u in enumerate(cand_frame["underlying"].astype(str)):
        if ok[j]:
            groups.setdefault(u, []).append(j)
    jobs = [np.flatnonzero(ok)] + [np.asarray(g) for g in groups.values()]
    refs = [solve.remote(r0, effect[g], cost[g], p["budget"], p["max_positions"], can_short[g], g) for g in jobs if len(g)]
    solutions = {}
    for picked, qty, residual, spent, status in ray.get(refs):
        if not picked:
            continue
        key = tuple(sorted(zip(picked, qty)))
        solutions.setdefault(key, (abs(residual), picked, qty, spent, status))
    ranked = sorted(solutions.values(), key=lambda s: (s[0], s[3]))[: max(p["top"] * 2, p["top"])]
    if progress:
        progress(0.6, f"{len(solutions)} distinct hedges; evaluating {len(ranked)}", force=True)
    timings["solve_s"] = round(time.perf_counter() - mark, 3)
    mark = time.perf_counter()

    def hedged_rows(picked, qty):
        rows = [dict(r) for r in book_rows]
        by_symbol = {r["symbol"]: r for r in rows}
        for j, q in zip(picked, qty):
            c = dict(cand[j], position_id=f"hedge_{j}", quantity=float(q))
            held = by_symbol.get(c["symbol"])
            if held is not None:
                held["quantity"] += float(q)
            else:
                c["type"] = ({"LONG": "SHORT"} if q < 0 else {}).get(c["type"], c["type"])
                c["entry_price"] = round(float(price[j]), 4)
                rows.append(c)
        return [r for r in rows if r["quantity"] != 0]

    # Full evaluation of each hedged book here, where the market data is already loaded (a
    # fresh Ray worker would first rebuild its history caches, which costs more than the work).
    before = _evaluate(book_rows, provider, pf.id, cash)
    afters = [_evaluate(hedged_rows(s[1], s[2]), provider, pf.id, cash) for s in ranked]
    timings["evaluate_s"] = round(time.perf_counter() - mark, 3)
    hedges = []
    for (resid, picked, qty, spent, status), after in zip(ranked, afters):
        after_risk = book_risk + sum(unit.iloc[j] * q for j, q in zip(picked, qty))
        trades = []
        for j, q in zip(picked, qty):
            trades.append({"symbol": cand[j]["symbol"], "underlying": cand[j]["underlying"],
                           "instrument": "option" if is_option[j] else "etf",
                           "action": ("BUY_TO_OPEN" if q > 0 else "SELL_TO_OPEN") if is_option[j] else ("BUY" if q > 0 else "SELL_SHORT"),
                           "quantity": abs(q), "signed_quantity": q, "price": round(float(price[j]), 4),
                           "unit_cost": round(float(cost[j]), 4), "cost": round(float(cost[j]) * abs(q), 2)})
        var_before = (before.get("var") or {}).get("historical_95")
        var_after = (after.get("var") or {}).get("historical_95")
        if p["risk_to_hedge"] == "var_95":
            risk_before, risk_after = var_before, var_after
        else:
            risk_before, risk_after = round(r0, 2), round(float(after_risk[target]), 2)
        side = {name: {"before": round(float(book_risk[name]), 4), "after": round(float(after_risk[name]), 4),
                       "change": round(float(after_risk[name] - book_risk[name]), 4)}
                for name in unit.columns if name != target and (book_risk[name] != 0 or after_risk[name] != 0)}
        side["var_95"] = {"before": var_before, "after": var_after,
                          "change": None if var_before is None or var_after is None else round(var_after - var_before, 2)}
        stress = {k: {"before": (before.get("stress") or {}).get(k), "after": v,
                      "change": None if v is None or (before.get("stress") or {}).get(k) is None
                      else round(v - before["stress"][k], 2)} for k, v in (after.get("stress") or {}).items()}
        hedges.append({"trades": trades, "cost": round(float(spent), 2), "risk_before": risk_before, "risk_after": risk_after,
                       "reduction": None if risk_before is None or risk_after is None else round(abs(risk_before) - abs(risk_after), 2),
                       "solver_status": status, "side_effects": side, "scenario_pnl": stress})
    hedges.sort(key=lambda h: (abs(h["risk_after"]) if h["risk_after"] is not None else math.inf, h["cost"]))
    hedges = hedges[: p["top"]]
    for i, h in enumerate(hedges, 1):
        h["rank"] = i
    elapsed = time.perf_counter() - started
    return {
        "risk_to_hedge": p["risk_to_hedge"], "budget": p["budget"], "constraints": {
            "max_positions": p["max_positions"], "allowed_instruments": p["allowed_instruments"]},
        "risk_before": round(r0, 2) if p["risk_to_hedge"] != "var_95" else (before.get("var") or {}).get("historical_95"),
        "candidates": len(cand), "candidates_in_budget": int(ok.sum()), "milp_tasks": len(refs),
        "hedges_evaluated": len(ranked), "search_seconds": round(elapsed, 3), "timings": timings,
        "candidates_per_second": round(len(cand) / elapsed, 1) if elapsed > 0 else None,
        "hedges": hedges,
    }


def hedge_modifications(rows: list[dict], hedge: dict) -> list[dict]:
    """The session modifications that add a hedge's trades to a session's book."""
    by_symbol = {r["symbol"]: r for r in rows}
    mods = []
    for t in hedge["trades"]:
        held = by_symbol.get(t["symbol"])
        if held is None:
            mods.append({"position_id": "new", "ticker": t["symbol"], "quantity": t["signed_quantity"]})
        else:
            mods.append({"position_id": held["position_id"], "new_quantity": held["quantity"] + t["signed_quantity"],
                         "allow_flip": True})
    return mods
