"""JSON-ready portfolio figures built from a ``PricedBook`` (the routes only shape requests).

Every figure comes from the priced book (``compute.book.price_positions``); nothing is
invented: a figure whose inputs are missing is null, and ``warnings`` say why.
"""

from __future__ import annotations

import datetime as dt
import functools
import math

import numpy as np
import pandas as pd

from services.portfolio.service import PricedBook
from compute.exposure import (
    DEFAULT_GROSS_LIMIT,
    DEFAULT_NET_TARGET_RANGE,
    Grouping,
    TagMembership,
    aggregate_exposures,
    exposure_visuals,
)
from compute.greeks import bsm_price
from compute.marketdata import calendar
from compute.marketdata.base import MarketDataError
from compute.jsonsafe import finite_or_none

STRATEGY_TAG_PREFIX = "#strategy:"
GROUP_BY = ("type", "strategy", "tag", "sector")
#: ai_insights thresholds (documented in docs/portfolio.md)
SECTOR_CONCENTRATION = 0.40        # a sector's share of gross notional exposure
SINGLE_NAME_CONCENTRATION = 0.20   # one underlying's |delta exposure| / equity
GAMMA_WARNING = 0.0005             # |second-order P&L of a 1 % move| / equity
GAMMA_DANGER = 0.002
PERFORMANCE_HORIZONS = {"1d": 1, "1w": 5, "1m": 21}


MEMO_ENTRIES = 64


def memoized(book: PricedBook, key: tuple, build):
    """``build()`` once per cached book and key: a cache hit on the book serves its figures
    without recomputing them (the book is immutable while cached)."""
    memo = book.extras.setdefault("views", {})
    if key in memo:
        return memo[key]
    value = build()
    if len(memo) >= MEMO_ENTRIES:
        memo.clear()
    memo[key] = value
    return value


def _hashable(value):
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def memoize_on_book(fn):
    """Decorator: memoize a view of a book on (function, arguments); see ``memoized``."""
    @functools.wraps(fn)
    def wrapper(book, *args, **kwargs):
        key = (fn.__name__, _hashable(args), _hashable(kwargs))
        return memoized(book, key, lambda: fn(book, *args, **kwargs))
    return wrapper



def _r(value, digits: int = 2) -> float | None:
    x = finite_or_none(value)
    return None if x is None else round(x, digits)


def strategies(frame: pd.DataFrame) -> list[str | None]:
    """Strategy per position: the ``strategy`` column, else a ``#strategy:<name>`` tag."""
    out = []
    for strategy, tags in zip(frame["strategy"], frame["tags"]):
        if isinstance(strategy, str) and strategy:
            out.append(strategy)
            continue
        tagged = [t[len(STRATEGY_TAG_PREFIX):] for t in (tags or []) if str(t).lower().startswith(STRATEGY_TAG_PREFIX)]
        out.append(tagged[0] if tagged else None)
    return out


def position_record(row: dict, fields: list[str] | None = None) -> dict:
    """One priced position as the API shows it (spec 5.1 names plus Greeks and exposures)."""
    record = {
        "id": row["position_id"],
        "ticker": row["symbol"],
        "underlying": row["underlying"],
        "name": row.get("name"),
        "type": row["type"],
        "quantity": finite_or_none(row["quantity"]),
        "price": _r(row["price"], 4),
        "value": _r(row["market_value"]),
        "entry_price": finite_or_none(row["entry_price"]),
        "cost_basis": _r(row["cost_basis"]),
        "pnl": _r(row["pnl"]),
        "pnl_percent": _r(row["pnl_percent"]),
        "daily_change": _r(row.get("daily_change")),
        "tags": list(row.get("tags") or []),
        "strategy": row.get("strategy_resolved", row.get("strategy")),
        "sector": row.get("sector"),
        "asset_class": row.get("asset_class"),
        "underlying_price": _r(row["underlying_price"], 4),
        "notional_exposure": _r(row["notional_exposure"]),
        "delta_exposure": _r(row["delta_exposure"]),
        "strike": finite_or_none(row.get("strike")),
        "expiration": row["expiry"].isoformat() if isinstance(row.get("expiry"), dt.date) else None,
        "time_to_expiry": _r(row.get("time_to_expiry"), 6),
        "expired": bool(row.get("expired")),
        "iv": _r(row.get("iv"), 6),
        "vol_source": row.get("vol_source") if isinstance(row.get("vol_source"), str) else None,
        "greeks": {g: _r(row[g], 6) for g in ("delta", "gamma", "theta", "vega", "rho")},
        "position_greeks": {g: _r(row[f"position_{g}"], 4) for g in ("delta", "gamma", "theta", "vega", "rho")},
        "dollar_delta": _r(row.get("dollar_delta")),
    }
    if fields:
        keep = set(fields) | {"id"}
        record = {k: v for k, v in record.items() if k in keep}
    return record


@memoize_on_book
def book_frame(book: PricedBook) -> pd.DataFrame:
    frame = book.positions.copy()
    if len(frame):
        frame["strategy_resolved"] = strategies(frame)
    else:
        frame["strategy_resolved"] = pd.Series(dtype=object)
    return frame


def filter_by_tags(frame: pd.DataFrame, tags: list[str], mode: str = "any") -> pd.DataFrame:
    """Positions with any (or all) of ``tags``."""
    if not tags:
        return frame
    wanted = set(tags)
    if mode == "all":
        mask = [wanted <= set(t or []) for t in frame["tags"]]
    else:
        mask = [bool(wanted & set(t or [])) for t in frame["tags"]]
    return frame[np.asarray(mask, dtype=bool)] if len(frame) else frame


def exposure_report(frame: pd.DataFrame, groupings=("type", "strategy", "sector"), with_tags: bool = True):
    """``compute.exposure.aggregate_exposures`` over type, strategy, sector and tags in one pass.

    Notional = market value (premium for options), delta-adjusted = ``delta_exposure``.
    """
    columns = {"type": "type", "strategy": "strategy_resolved", "sector": "sector"}
    groups = {name: Grouping.from_values(frame[columns[name]].to_numpy(object) if len(frame) else []) for name in groupings}
    tags = TagMembership.from_lists([list(t or []) for t in frame["tags"]]) if with_tags else None
    return aggregate_exposures(
        frame["market_value"].to_numpy(np.float64), frame["delta_exposure"].to_numpy(np.float64),
        groupings=groups, tags=tags,
    )


def _totals(report) -> dict:
    return {measure: {f"{stat}_exposure": _r(report.total[measure][stat]) for stat in ("long", "short", "gross", "net")}
            for measure in ("delta", "notional")}


def _group_summaries(report, name: str) -> list[dict]:
    out = []
    for label, row in report.group_dict(name).items():
        out.append({"group": label, "count": row["count"],
                    "notional": {k: _r(v) for k, v in row["notional"].items()},
                    "delta": {k: _r(v) for k, v in row["delta"].items()}})
    return out


def _pnl_totals(frame: pd.DataFrame) -> tuple[float | None, float | None]:
    pnl = frame["pnl"].to_numpy(np.float64)
    basis = np.abs(frame["cost_basis"].to_numpy(np.float64))
    ok = np.isfinite(pnl) & np.isfinite(basis)
    total = float(pnl[ok].sum()) if len(frame) else 0.0
    denom = float(basis[ok].sum())
    return total, (100.0 * total / denom if denom > 0 else None)


def _dollar_gamma_1pct(frame: pd.DataFrame) -> float:
    gamma = frame["position_gamma"].to_numpy(np.float64)
    spot = frame["underlying_price"].to_numpy(np.float64)
    value = 0.5 * gamma * (0.01 * spot) ** 2
    return float(np.nansum(value))


def ai_insights(frame: pd.DataFrame, report, equity: float, gross_limit: float) -> dict:
    """Rule-based flags from the book's own numbers, each with its evidence (see docs)."""
    risks, opportunities, evidence = [], [], {}
    gross = report.total["notional"]["gross"]
    if len(frame) and gross > 0:
        sectors = report.group_dict("sector")
        for sector, row in sectors.items():
            share = row["notional"]["gross"] / gross
            if share > SECTOR_CONCENTRATION:
                key = f"high_{str(sector).lower().replace(' ', '_')}_concentration"
                risks.append(key)
                evidence[key] = {"sector": sector, "share_of_gross": round(share, 4), "threshold": SECTOR_CONCENTRATION}
    if len(frame) and equity > 0:
        by_name = frame.groupby("underlying")["delta_exposure"].sum().abs() / equity
        big = by_name[by_name > SINGLE_NAME_CONCENTRATION]
        if len(big):
            risks.append("single_name_concentration")
            evidence["single_name_concentration"] = {"underlyings": {k: round(float(v), 4) for k, v in big.items()},
                                                     "threshold": SINGLE_NAME_CONCENTRATION}
        gamma_ratio = abs(_dollar_gamma_1pct(frame)) / equity
        if gamma_ratio > GAMMA_WARNING:
            risks.append("gamma_exposure")
            evidence["gamma_exposure"] = {"second_order_pnl_1pct_over_equity": round(gamma_ratio, 6), "threshold": GAMMA_WARNING}
        if gross / equity > gross_limit:
            risks.append("gross_limit_breach")
            evidence["gross_limit_breach"] = {"gross_over_equity": round(gross / equity, 4), "limit": gross_limit}
    if len(frame):
        stocks = frame[frame["type"] == "LONG"]
        written = set(frame.loc[frame["type"] == "SC", "underlying"])
        optionable = set(stocks.loc[stocks["asset_class"].isin(["equity", "etf"]), "underlying"])
        candidates = sorted(u for u, q in stocks.groupby("underlying")["quantity"].sum().items()
                            if q >= 100 and u not in written and u in optionable)
        if candidates:
            opportunities.append("income_generation")
            evidence["income_generation"] = {"covered_call_candidates": candidates,
                                             "rule": "long >= 100 shares with no calls written"}
        has_hedge = bool(((frame["type"] == "LP") | ((frame["type"] == "LC") & (frame["underlying"] == "VIX"))).any())
        if report.total["delta"]["net"] > 0 and not has_hedge:
            opportunities.append("volatility_hedge")
            evidence["volatility_hedge"] = {"rule": "net long delta and no long puts or VIX calls"}
    return {"primary_risks": risks, "opportunities": opportunities, "evidence": evidence}


@memoize_on_book
def portfolio_overview(book: PricedBook, gross_limit: float = DEFAULT_GROSS_LIMIT,
                       net_target: tuple[float, float] = DEFAULT_NET_TARGET_RANGE) -> dict:
    """Spec 4.1: value, P&L, exposures with visual blocks, both exposure measures, insights."""
    frame = book_frame(book)
    report = exposure_report(frame)
    total_pl, total_pl_percent = _pnl_totals(frame)
    visuals = exposure_visuals(report.total["notional"], equity=book.equity, gross_limit=gross_limit,
                               net_target_range=net_target)
    delta_visuals = exposure_visuals(report.total["delta"], equity=book.equity, gross_limit=gross_limit,
                                     net_target_range=net_target)
    exposures = {stat: {"value": _r(report.total["notional"][stat]), "visual": visuals[stat],
                        "delta_adjusted": {"value": _r(report.total["delta"][stat]), "visual": delta_visuals[stat]}}
                 for stat in ("long", "short", "gross", "net")}
    return {
        "portfolio_id": book.portfolio.id,
        "name": book.portfolio.name,
        "as_of": book.as_of,
        "total_value": _r(book.equity),
        "cash": _r(book.cash),
        "positions_value": _r(book.equity - book.cash),
        "total_pl": _r(total_pl),
        "total_pl_percent": _r(total_pl_percent),
        "position_count": int(len(frame)),
        "exposures": exposures,
        "exposure_calculations": _totals(report),
        "limits": {"gross_limit": gross_limit, "net_target_range": list(net_target)},
        "ai_insights": ai_insights(frame, report, book.equity, gross_limit),
    }


@memoize_on_book
def portfolio_summary(book: PricedBook, top: int = 5, active_alerts: int | None = None) -> dict:
    """Spec 4.3: value, P&L and the largest positions by |market value|."""
    frame = book_frame(book)
    total_pl, total_pl_percent = _pnl_totals(frame)
    order = np.argsort(-np.abs(np.nan_to_num(frame["market_value"].to_numpy(np.float64))), kind="stable")[:top]
    rows = frame.iloc[order].to_dict(orient="records")
    return {
        "portfolio_id": book.portfolio.id,
        "as_of": book.as_of,
        "total_value": _r(book.equity),
        "cash": _r(book.cash),
        "total_pl": _r(total_pl),
        "total_pl_percent": _r(total_pl_percent),
        "position_count": int(len(frame)),
        "top_positions": [{"id": r["position_id"], "ticker": r["symbol"], "type": r["type"], "value": _r(r["market_value"]),
                           "pnl": _r(r["pnl"]), "pnl_percent": _r(r["pnl_percent"])} for r in rows],
        "active_alerts": active_alerts,
    }


@memoize_on_book
def portfolio_exposures(book: PricedBook, gross_limit: float = DEFAULT_GROSS_LIMIT,
                        net_target: tuple[float, float] = DEFAULT_NET_TARGET_RANGE) -> dict:
    """Totals and groups by type, strategy, sector and tag (one aggregation pass)."""
    frame = book_frame(book)
    report = exposure_report(frame)
    return {
        "portfolio_id": book.portfolio.id,
        "as_of": book.as_of,
        "equity": _r(book.equity),
        "totals": _totals(report),
        "visual": {"notional": exposure_visuals(report.total["notional"], equity=book.equity, gross_limit=gross_limit, net_target_range=net_target),
                   "delta": exposure_visuals(report.total["delta"], equity=book.equity, gross_limit=gross_limit, net_target_range=net_target)},
        "by_type": _group_summaries(report, "type"),
        "by_strategy": _group_summaries(report, "strategy"),
        "by_sector": _group_summaries(report, "sector"),
        "by_tag": _group_summaries(report, "tag"),
    }


@memoize_on_book
def list_positions(book: PricedBook, *, tags: list[str] | None = None, tag_mode: str = "any",
                   group_by: str | None = None, fields: list[str] | None = None,
                   page: int = 1, limit: int = 50) -> tuple[dict, dict]:
    """Spec 5.1 positions (filtered, paginated) with a summary; returns (data, pagination meta)."""
    frame = filter_by_tags(book_frame(book), tags or [], tag_mode)
    report = exposure_report(frame, groupings=("type", "strategy", "sector"), with_tags=True)
    total = int(len(frame))
    pages = max(1, math.ceil(total / limit)) if limit else 1
    start = (page - 1) * limit
    rows = frame.iloc[start:start + limit].to_dict(orient="records")
    data = {
        "positions": [position_record(r, fields) for r in rows],
        "summary": {
            "total_positions": total,
            "total_value": _r(frame["market_value"].sum()) if total else 0.0,
            "gross_exposure": _r(report.total["notional"]["gross"]),
            "net_exposure": _r(report.total["notional"]["net"]),
            "delta_gross_exposure": _r(report.total["delta"]["gross"]),
            "delta_net_exposure": _r(report.total["delta"]["net"]),
        },
    }
    if group_by:
        data["groups"] = grouped(frame, report, group_by, with_positions=False)
    return data, {"page": page, "limit": limit, "total": total, "pages": pages}


def grouped(frame: pd.DataFrame, report, by: str, *, with_positions: bool = True) -> list[dict]:
    """Groups of positions with their exposure sums; position records or ids per group."""
    column = {"type": "type", "strategy": "strategy_resolved", "sector": "sector"}.get(by)
    members: dict = {}
    if by == "tag":
        for i, tag_list in enumerate(frame["tags"]):
            for t in tag_list or []:
                members.setdefault(t, []).append(i)
    else:
        for i, value in enumerate(frame[column]):
            members.setdefault(value if isinstance(value, str) and value else None, []).append(i)
    sums = {row["group"]: row for row in _group_summaries(report, by)}
    records = frame.to_dict(orient="records")
    out = []
    for label in sorted(members, key=lambda x: (x is None, str(x))):
        idx = members[label]
        value = float(np.nansum([records[i]["market_value"] for i in idx]))
        pnl = float(np.nansum([records[i]["pnl"] for i in idx]))
        entry = {"group": label, "count": len(idx), "total_value": _r(value), "total_pnl": _r(pnl),
                 "exposure": {k: sums[label][k] for k in ("notional", "delta")} if label in sums else None}
        if label is None:
            delta = frame.iloc[idx]["delta_exposure"].to_numpy(np.float64)
            mv = frame.iloc[idx]["market_value"].to_numpy(np.float64)
            entry["exposure"] = {name: {"long": _r(v[v > 0].sum()), "short": _r(v[v < 0].sum()), "gross": _r(np.abs(v).sum()), "net": _r(v.sum())}
                                 for name, v in (("notional", np.nan_to_num(mv)), ("delta", np.nan_to_num(delta)))}
        entry["positions"] = [position_record(records[i]) for i in idx] if with_positions else [records[i]["position_id"] for i in idx]
        out.append(entry)
    return out


@memoize_on_book
def positions_grouped(book: PricedBook, by: str = "type", tags=None, tag_mode: str = "any") -> dict:
    frame = filter_by_tags(book_frame(book), tags or [], tag_mode)
    report = exposure_report(frame)
    return {"group_by": by, "groups": grouped(frame, report, by), "total_positions": int(len(frame))}


@memoize_on_book
def strategies_view(book: PricedBook) -> dict:
    frame = book_frame(book)
    report = exposure_report(frame)
    groups = grouped(frame, report, "strategy")
    named = [g for g in groups if g["group"] is not None]
    unassigned = next((g for g in groups if g["group"] is None), None)
    return {"strategies": [{"name": g.pop("group"), **g} for g in named],
            "unassigned": {"count": unassigned["count"], "positions": unassigned["positions"]} if unassigned else {"count": 0, "positions": []}}


# -- performance -----------------------------------------------------------------------------

def _history(provider, tickers, start: dt.date, end: dt.date) -> pd.DataFrame:
    closes = {}
    for t in tickers:
        try:
            bars = provider.daily_bars(t, start, end)
        except MarketDataError:
            continue
        if bars is not None and len(bars):
            sessions = bars.index.tz_convert(calendar.NEW_YORK).tz_localize(None).normalize()
            closes[t] = pd.Series(bars["close"].to_numpy(np.float64), index=sessions)
    return pd.DataFrame(closes).sort_index()


@memoize_on_book
def portfolio_performance(book: PricedBook, provider, rate: float = 0.045) -> dict:
    """P&L versus cost basis, and constant-holdings returns over 1d, 1w, 1m and YTD.

    Constant holdings: today's positions valued at each past session's closes (options
    revalued with BSM at that close, their time to expiry then and today's volatility);
    return over a horizon = (value now - value then) / (value then + cash), both valued the
    same way. It is what the current book would have earned, not an account's time-weighted
    return (no transaction history is kept).
    """
    frame = book_frame(book)
    total_pl, total_pl_percent = _pnl_totals(frame)
    out = {
        "portfolio_id": book.portfolio.id,
        "as_of": book.as_of,
        "total_value": _r(book.equity),
        "cost_basis": _r(frame["cost_basis"].sum()) if len(frame) else 0.0,
        "total_pl": _r(total_pl),
        "total_pl_percent": _r(total_pl_percent),
        "daily_change": _r(np.nansum(frame["daily_change"].to_numpy(np.float64))) if len(frame) else 0.0,
        "method": "constant_holdings",
        "returns": {},
        "warnings": [],
    }
    if not len(frame):
        return out
    today = pd.Timestamp(book.as_of).tz_convert(calendar.NEW_YORK).tz_localize(None).normalize()
    year_start = pd.Timestamp(today.year, 1, 1)
    start = min(year_start - pd.Timedelta(days=10), today - pd.Timedelta(days=45))
    hist = _history(provider, sorted(set(frame["underlying"])), start.date(), today.date())
    hist = hist[hist.index <= today]
    if hist.empty:
        out["warnings"].append("no price history for the holdings")
        return out
    dates = hist.index
    is_option = frame["type"].isin(["LC", "LP", "SC", "SP"]).to_numpy()
    qty = frame["quantity"].to_numpy(np.float64) * frame["multiplier"].to_numpy(np.float64)
    missing = [u for u in frame["underlying"] if u not in hist.columns]
    if missing:
        out["warnings"].append(f"no price history for {', '.join(sorted(set(missing)))}: excluded")
    usable = frame["underlying"].isin(hist.columns).to_numpy().copy()
    unpriced = is_option & ~np.isfinite(frame["iv"].to_numpy(np.float64)) & ~frame["expired"].to_numpy(bool)
    if unpriced.any():
        out["warnings"].append(f"{int(unpriced.sum())} option(s) without volatility excluded")
    usable &= ~unpriced
    values = np.zeros(len(dates))
    session_close_ns = calendar.utc_ns(calendar.all_sessions()["close"].reindex(dates)).astype(np.float64)
    for i in np.flatnonzero(usable):
        row = frame.iloc[i]
        s = hist[row["underlying"]].to_numpy(np.float64)
        if not is_option[i]:
            values += qty[i] * np.nan_to_num(s)
            continue
        expiry_close = calendar.session_close(calendar.session_on_or_before(pd.Timestamp(row["expiry"])))
        T = np.maximum((expiry_close.value - session_close_ns) / 1e9 / (365.0 * 86400.0), 0.0)
        sigma = float(row["iv"]) if np.isfinite(row["iv"]) else 0.2
        price = bsm_price(s, float(row["strike"]), T, rate, float(row["dividend_yield"]), sigma, row["option_right"] == "C")
        values += qty[i] * np.nan_to_num(np.asarray(price, np.float64))
    cash = book.cash
    now_value = values[-1]
    horizons = dict(PERFORMANCE_HORIZONS)
    for name, back in horizons.items():
        if len(dates) > back:
            then = values[-1 - back]
            base = then + cash
            out["returns"][name] = {"from": dates[-1 - back].date().isoformat(), "change": _r(now_value - then),
                                    "return_percent": _r(100.0 * (now_value - then) / base, 4) if base > 0 else None}
    ytd_idx = np.flatnonzero(dates < year_start)
    if ytd_idx.size:
        then = values[ytd_idx[-1]]
        base = then + cash
        out["returns"]["ytd"] = {"from": dates[ytd_idx[-1]].date().isoformat(), "change": _r(now_value - then),
                                 "return_percent": _r(100.0 * (now_value - then) / base, 4) if base > 0 else None}
    out["history_end"] = dates[-1].date().isoformat()
    return out


# -- Greeks (spec 6.2) -----------------------------------------------------------------------

def _greek_totals(frame: pd.DataFrame) -> dict:
    totals = {g: _r(np.nansum(frame[f"position_{g}"].to_numpy(np.float64)), 4) if len(frame) else 0.0
              for g in ("delta", "gamma", "theta", "vega", "rho")}
    totals["dollar_delta"] = _r(np.nansum(frame["dollar_delta"].to_numpy(np.float64))) if len(frame) else 0.0
    totals["dollar_gamma_1pct"] = _r(_dollar_gamma_1pct(frame)) if len(frame) else 0.0
    return totals


def gamma_visual(frame: pd.DataFrame, equity: float) -> dict:
    """Gamma status from the second-order P&L of a 1 % move relative to equity."""
    if not (equity > 0) or not len(frame):
        return {"gamma_status": "info", "gamma_message": "No equity to measure gamma against" if len(frame) else "No positions"}
    ratio = abs(_dollar_gamma_1pct(frame)) / equity
    if ratio > GAMMA_DANGER:
        status, message = "danger", "High gamma concentration"
    elif ratio > GAMMA_WARNING:
        status, message = "warning", "Elevated gamma exposure"
    else:
        status, message = "success", "Gamma exposure within limits"
    return {"gamma_status": status, "gamma_message": message, "gamma_pnl_1pct_over_equity": round(ratio, 6)}


@memoize_on_book
def risk_greeks(book: PricedBook, view: str = "portfolio", include_after_expiry: bool = True) -> dict:
    """Spec 6.2: Greek totals now and after the nearest option expiry (those contracts gone)."""
    frame = book.positions
    if view == "longs":
        frame = frame[frame["quantity"] > 0]
    elif view == "shorts":
        frame = frame[frame["quantity"] < 0]
    options = frame[frame["type"].isin(["LC", "LP", "SC", "SP"])]
    live = options[~options["expired"].astype(bool)] if len(options) else options
    warnings = []
    missing = live[live["vol_source"].isna()] if len(live) else live
    if len(missing):
        warnings.append(f"{len(missing)} option(s) without implied or realised volatility: their Greeks are null and left out of the totals")
    current = _greek_totals(frame)
    current["visual"] = gamma_visual(frame, book.equity)
    data = {"portfolio_id": book.portfolio.id, "as_of": book.as_of, "view": view, "current": current,
            "option_count": int(len(live)),
            "vol_sources": {str(k): int(v) for k, v in live["vol_source"].value_counts(dropna=False).items()} if len(live) else {},
            "warnings": warnings}
    if include_after_expiry:
        if len(live):
            nearest = min(pd.Timestamp(e).date() for e in live["expiry"])
            rest = frame[~(frame["type"].isin(["LC", "LP", "SC", "SP"]) & frame["expiry"].map(lambda e: e is not None and pd.Timestamp(e).date() == nearest))]
            after = _greek_totals(rest)
            changes = {g: _r((after[g] or 0.0) - (current[g] or 0.0), 4) for g in ("delta", "gamma", "theta", "vega", "rho")}
            cg = current["gamma"] or 0.0
            changes["gamma_percent"] = _r(100.0 * changes["gamma"] / abs(cg), 2) if cg else None
            after.update({"expiry": nearest.isoformat(), "contracts_expiring": int(len(frame) - len(rest)), "changes": changes})
            data["after_expiry"] = after
        else:
            data["after_expiry"] = None
    return data


def hypothetical_greeks(frame: pd.DataFrame) -> dict:
    """Spec 6.3: per-contract Greeks of hypothetical positions and their totals."""
    warnings = []
    contracts = []
    for row in frame.to_dict(orient="records"):
        rec = position_record(row, ["ticker", "underlying", "type", "quantity", "strike", "expiration", "price",
                                    "underlying_price", "iv", "vol_source", "time_to_expiry", "expired", "greeks",
                                    "position_greeks", "dollar_delta", "notional_exposure", "delta_exposure"])
        rec.pop("id", None)
        if row["type"] in ("LC", "LP", "SC", "SP") and not row["expired"] and not isinstance(row.get("vol_source"), str):
            warnings.append(f"{row['symbol']}: no implied or realised volatility; Greeks are null")
        if not (finite_or_none(row["underlying_price"]) or 0) > 0:
            warnings.append(f"{row['symbol']}: no underlying price; Greeks are null")
        contracts.append(rec)
    return {"positions": contracts, "totals": _greek_totals(frame), "warnings": warnings}
