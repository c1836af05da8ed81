"""Daily P&L attribution and the daily portfolio snapshot record.

Attribution for a date: each position's P&L = quantity x multiplier x (price_t - price_{t-1}),
with price the instrument's own close (the option premium for options, per share; multiplier
100 for options, 1 for stocks). ``contribution_percent`` = P&L / total P&L x 100, so the
position contributions add up to 100 % (and may exceed +/-100 % individually when gains and
losses offset). ``pnl_percent`` = P&L / |previous market value| x 100, the position's own return.

Tags are many-to-many: a position carrying two tags counts *in full* in each tag's row (its P&L
is not split), so tag rows can add up to more than the total; positions without tags are
grouped under ``"Untagged"``. Position-type rows (LONG/SHORT/LC/LP/SC/SP) partition the book
and add up to the total.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from compute.exposure import aggregate_exposures
from compute.scenarios import OPTION_MULTIPLIER, OPTION_TYPES, POSITION_TYPES

GROUP_BY = ("position", "tag", "type")
UNTAGGED = "Untagged"
GREEK_NAMES = ("delta", "gamma", "theta", "vega", "rho")


def position_pnl(quantity, multiplier, previous_price, price) -> np.ndarray:
    """Daily P&L in dollars: quantity x multiplier x (price - previous_price), elementwise."""
    return (
        np.asarray(quantity, dtype=np.float64)
        * np.asarray(multiplier, dtype=np.float64)
        * (np.asarray(price, dtype=np.float64) - np.asarray(previous_price, dtype=np.float64))
    )


def _multipliers(positions: pd.DataFrame) -> np.ndarray:
    types = positions["position_type"].astype(str).str.upper()
    default = np.where(types.isin(OPTION_TYPES), OPTION_MULTIPLIER, 1.0)
    if "multiplier" not in positions.columns:
        return default
    given = pd.to_numeric(positions["multiplier"], errors="coerce").to_numpy(np.float64)
    return np.where(np.isnan(given), default, given)


def _percent(part: float, whole: float) -> float | None:
    if whole == 0 or not math.isfinite(whole) or not math.isfinite(part):
        return None
    return part / whole * 100.0


def _tags(value) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, Iterable):
        return [str(t) for t in value]
    return []


def pnl_attribution(positions: pd.DataFrame, group_by: str = "position", date=None) -> dict:
    """P&L attribution of one day (``GET /attribution/positions``), JSON-ready.

    ``positions`` columns: ``position_id``, ``position_type``, ``quantity``,
    ``previous_price``, ``price``; optional ``symbol``, ``multiplier``, ``tags`` (list or
    comma string). Returns ``date``, ``group_by``, ``total_pl``, ``positions`` (id, symbol,
    position_type, pnl, pnl_percent, contribution_percent; largest |pnl| first), ``by_type``
    and, for ``group_by="tag"``, ``by_tag`` ({name: {pnl, contribution_percent, positions}}).
    Positions with a missing price have pnl None and are left out of the total.
    """
    if group_by not in GROUP_BY:
        raise ValueError(f"groupBy: expected one of {GROUP_BY}, got {group_by!r}")
    for col in ("position_id", "position_type", "quantity", "previous_price", "price"):
        if col not in positions.columns:
            raise ValueError(f"positions: column {col!r} is required")
    types = positions["position_type"].astype(str).str.upper().to_numpy()
    multiplier = _multipliers(positions)
    quantity = pd.to_numeric(positions["quantity"], errors="coerce").to_numpy(np.float64)
    prev = pd.to_numeric(positions["previous_price"], errors="coerce").to_numpy(np.float64)
    price = pd.to_numeric(positions["price"], errors="coerce").to_numpy(np.float64)
    pnl = position_pnl(quantity, multiplier, prev, price)
    previous_value = np.abs(quantity * multiplier * prev)
    total = float(np.nansum(pnl))
    ids = positions["position_id"].astype(str).to_numpy()
    symbols = positions["symbol"].astype(str).to_numpy() if "symbol" in positions.columns else ids

    rows = []
    for i in np.argsort(-np.abs(np.nan_to_num(pnl, nan=0.0)), kind="stable"):
        ok = math.isfinite(pnl[i])
        rows.append(
            {
                "id": ids[i],
                "ticker": symbols[i],
                "position_type": types[i],
                "pnl": float(pnl[i]) if ok else None,
                "pnl_percent": _percent(pnl[i], previous_value[i]) if ok else None,
                "contribution_percent": _percent(pnl[i], total) if ok else None,
            }
        )
    by_type = {}
    for t in POSITION_TYPES:
        mask = types == t
        if mask.any():
            value = float(np.nansum(pnl[mask]))
            by_type[t] = {"pnl": value, "contribution_percent": _percent(value, total)}
    result = {
        "date": None if date is None else str(date),
        "group_by": group_by,
        "total_pl": total,
        "positions": rows,
        "by_type": by_type,
    }
    if group_by == "tag":
        tag_lists = [_tags(v) for v in positions["tags"]] if "tags" in positions.columns else [[] for _ in ids]
        by_tag: dict[str, dict] = {}
        for i, tags in enumerate(tag_lists):
            for tag in dict.fromkeys(tags) or [UNTAGGED]:
                entry = by_tag.setdefault(tag, {"pnl": 0.0, "positions": 0})
                entry["positions"] += 1
                if math.isfinite(pnl[i]):
                    entry["pnl"] += float(pnl[i])
        for entry in by_tag.values():
            entry["contribution_percent"] = _percent(entry["pnl"], total)
        result["by_tag"] = by_tag
    return result


def daily_snapshot(
    positions: pd.DataFrame,
    greeks: pd.DataFrame | None = None,
    cash: float = 0.0,
    date=None,
) -> dict:
    """Daily portfolio snapshot record (for history and ``GET /portfolio/timeline``), JSON-ready.

    ``positions`` columns: ``position_id``, ``position_type``, ``quantity``, ``price`` (the
    instrument's close: option premium per share for options), ``underlying_price`` (needed
    for options), optional ``previous_price`` (for the day's P&L) and ``multiplier``.
    ``greeks``: position-level Greeks (per-share Greek x contracts x multiplier), indexed by
    position_id, columns delta/gamma/theta/vega/rho; rows for stocks may be absent.

    Record fields: ``date``, ``equity`` (cash + sum of signed market values), ``cash``,
    ``exposure`` = :func:`compute.exposure.aggregate_exposures` totals: ``notional`` (market
    value; options at premium) and ``delta`` (stocks their market value, options position
    delta x underlying price), each with long / short (negative) / gross / net, and
    ``count``. ``daily_pnl`` (None
    without previous prices) and ``daily_return`` (pnl / previous equity), ``greeks`` (sums
    of the position-level Greeks), ``position_count`` (total, by type, stocks, options).
    """
    for col in ("position_id", "position_type", "quantity", "price"):
        if col not in positions.columns:
            raise ValueError(f"positions: column {col!r} is required")
    types = positions["position_type"].astype(str).str.upper().to_numpy()
    is_option = np.isin(types, list(OPTION_TYPES))
    multiplier = _multipliers(positions)
    quantity = pd.to_numeric(positions["quantity"], errors="coerce").to_numpy(np.float64)
    price = pd.to_numeric(positions["price"], errors="coerce").to_numpy(np.float64)
    market_value = quantity * multiplier * price
    ids = positions["position_id"].astype(str)

    underlying_price = (
        pd.to_numeric(positions["underlying_price"], errors="coerce").to_numpy(np.float64)
        if "underlying_price" in positions.columns
        else np.full(len(positions), np.nan)
    )
    if is_option.any() and np.isnan(underlying_price[is_option]).any():
        raise ValueError("positions.underlying_price: required for every option position")

    greek_table = (
        greeks.reindex(ids.to_numpy())
        if greeks is not None
        else pd.DataFrame(index=ids.to_numpy(), columns=list(GREEK_NAMES), dtype=float)
    )
    option_delta = (
        pd.to_numeric(greek_table["delta"], errors="coerce").to_numpy(np.float64)
        if "delta" in greek_table.columns
        else np.full(len(ids), np.nan)
    )
    delta_adjusted = np.where(is_option, option_delta * underlying_price, market_value)
    if is_option.any() and np.isnan(delta_adjusted[is_option]).any():
        missing = ids.to_numpy()[is_option & np.isnan(delta_adjusted)].tolist()
        raise ValueError(f"greeks.delta: required for every option position, missing {missing}")

    total_value = float(np.nansum(market_value))
    equity = float(cash) + total_value
    daily_pnl = None
    daily_return = None
    if "previous_price" in positions.columns:
        prev = pd.to_numeric(positions["previous_price"], errors="coerce").to_numpy(np.float64)
        daily_pnl = float(np.nansum(position_pnl(quantity, multiplier, prev, price)))
        previous_equity = equity - daily_pnl
        daily_return = daily_pnl / previous_equity if previous_equity > 0 else None

    portfolio_greeks = {
        g: float(np.nansum(pd.to_numeric(greek_table[g], errors="coerce").to_numpy(np.float64)))
        if g in greek_table.columns
        else 0.0
        for g in GREEK_NAMES
    }
    counts = {t: int((types == t).sum()) for t in POSITION_TYPES}
    return {
        "date": None if date is None else str(date),
        "equity": equity,
        "cash": float(cash),
        "exposure": aggregate_exposures(market_value, delta_adjusted).total,
        "daily_pnl": daily_pnl,
        "daily_return": daily_return,
        "greeks": portfolio_greeks,
        "position_count": {
            "total": int(len(types)),
            "stocks": int((~is_option).sum()),
            "options": int(is_option.sum()),
            "by_type": counts,
        },
    }
