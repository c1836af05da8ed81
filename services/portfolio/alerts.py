"""Alerts on the priced book (portfolio spec section 12): the user's rules and built-in checks.

A rule's ``condition`` is ``{"metric", "operator", "threshold"}`` plus the metric's subject:

- ``sector_exposure`` (``sector``) and ``tag_exposure`` (``tag``): the subject's gross exposure,
  sum of |market value|, as a fraction of equity (0.20 = 20 %);
- ``position_weight`` (optional ``ticker``): the largest |market value| of one position (of
  that underlying) as a fraction of equity;
- ``gross_exposure`` and ``net_exposure``: sum of |market value| and sum of market value over
  equity.

Operators: ``greater_than``, ``greater_or_equal``, ``less_than``, ``less_or_equal``. A rule
triggers an alert of its ``priority`` (default high) naming the positions concerned.

Built in, always on: ``expiration_risk``, options expiring today (critical) or on the next
session (high), with their share of the book's absolute position gamma.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Optional

import numpy as np
import pandas as pd
from sqlalchemy import select

from cluster.catalog import AlertRule, Catalog, owned_row
from compute.instruments import InvalidTicker, normalize_ticker
from services.portfolio.service import PortfolioInputError

METRICS = {"sector_exposure": "sector", "tag_exposure": "tag", "position_weight": "ticker",
           "gross_exposure": None, "net_exposure": None}
OPERATORS = {"greater_than": (">", np.greater), "greater_or_equal": (">=", np.greater_equal),
             "less_than": ("<", np.less), "less_or_equal": ("<=", np.less_equal)}
PRIORITIES = ("critical", "high", "medium", "low")
MAX_RULES = 100


def parse_rule(body: Any) -> dict:
    """A validated rule ``{name, condition, priority}``; ``PortfolioInputError`` names the field."""
    if not isinstance(body, dict):
        raise PortfolioInputError("body", "must be an object with name and condition")
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 120:
        raise PortfolioInputError("name", "must be a string of 1 to 120 characters")
    priority = body.get("priority", "high")
    if priority not in PRIORITIES:
        raise PortfolioInputError("priority", f"must be one of {list(PRIORITIES)}")
    cond = body.get("condition")
    if not isinstance(cond, dict):
        raise PortfolioInputError("condition", "must be an object {metric, operator, threshold, ...}")
    metric = cond.get("metric")
    if metric not in METRICS:
        raise PortfolioInputError("condition.metric", f"must be one of {list(METRICS)}")
    if cond.get("operator") not in OPERATORS:
        raise PortfolioInputError("condition.operator", f"must be one of {list(OPERATORS)}")
    threshold = cond.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise PortfolioInputError("condition.threshold", "must be a number (a fraction of equity: 0.20 = 20 %)")
    out = {"metric": metric, "operator": cond["operator"], "threshold": float(threshold)}
    subject = METRICS[metric]
    if subject is not None:
        value = cond.get(subject)
        if value is None and metric != "position_weight":
            raise PortfolioInputError(f"condition.{subject}", f"is required for {metric}")
        if value is not None:
            if not isinstance(value, str) or not 1 <= len(value) <= 80:
                raise PortfolioInputError(f"condition.{subject}", "must be a string of 1 to 80 characters")
            if subject == "ticker":
                try:
                    value = normalize_ticker(value)
                except InvalidTicker:
                    raise PortfolioInputError("condition.ticker", f"{value!r} is not a ticker") from None
            out[subject] = value
    unknown = set(cond) - {"metric", "operator", "threshold", "sector", "tag", "ticker"}
    if unknown:
        raise PortfolioInputError(f"condition.{sorted(unknown)[0]}", "unknown condition key")
    return {"name": name.strip(), "condition": out, "priority": priority}


def rule_view(row: AlertRule) -> dict:
    return {"rule_id": row.id, "name": row.name, "condition": row.condition, "priority": row.priority,
            "active": row.active, "created_at": row.created_at.isoformat() if row.created_at else None}


def create_rule(catalog: Catalog, user_id: int, body: Any) -> dict:
    rule = parse_rule(body)
    with catalog.session() as s:
        count = len(s.scalars(select(AlertRule.id).where(AlertRule.user_id == user_id)).all())
        if count >= MAX_RULES:
            raise PortfolioInputError("name", f"at most {MAX_RULES} alert rules per user")
        row = AlertRule(user_id=user_id, **rule)
        s.add(row)
        s.flush()
        return rule_view(row)


def list_rules(catalog: Catalog, user_id: int) -> list[dict]:
    with catalog.session() as s:
        rows = s.scalars(select(AlertRule).where(AlertRule.user_id == user_id).order_by(AlertRule.created_at)).all()
        return [rule_view(r) for r in rows]


def delete_rule(catalog: Catalog, user_id: int, rule_id: str) -> None:
    with catalog.session() as s:
        row = owned_row(s, AlertRule, rule_id, user_id, "alert rule")
        s.delete(row)


def _metric(frame: pd.DataFrame, equity: float, cond: dict) -> tuple[float, list[str]]:
    """(value as a fraction of equity, ids of the positions it concerns)."""
    if not len(frame):
        return 0.0, []
    mv = np.nan_to_num(frame["market_value"].to_numpy(np.float64))
    ids = frame["position_id"].astype(str).to_numpy(object)
    metric = cond["metric"]
    if metric == "gross_exposure":
        return float(np.abs(mv).sum() / equity), list(ids)
    if metric == "net_exposure":
        return float(mv.sum() / equity), list(ids)
    if metric == "position_weight":
        mask = (frame["underlying"].astype(str).str.upper() == cond["ticker"]).to_numpy() if cond.get("ticker") \
            else np.ones(len(mv), dtype=bool)
        if not mask.any():
            return 0.0, []
        top = int(np.argmax(np.where(mask, np.abs(mv), -1.0)))
        return float(abs(mv[top]) / equity), [ids[top]]
    if metric == "sector_exposure":
        mask = (frame["sector"].astype(str).str.lower() == cond["sector"].lower()).to_numpy()
    else:  # tag_exposure
        mask = np.array([cond["tag"] in (t or []) for t in frame["tags"]], dtype=bool)
    return float(np.abs(mv[mask]).sum() / equity), list(ids[mask])


def _expiration_alerts(frame: pd.DataFrame, as_of: dt.datetime) -> list[dict]:
    from compute.marketdata import calendar

    if not len(frame):
        return []
    options = frame[frame["expiry"].notna() & ~frame["expired"].astype(bool)]
    if not len(options):
        return []
    today = pd.Timestamp(as_of).tz_convert("America/New_York").date() if pd.Timestamp(as_of).tzinfo else pd.Timestamp(as_of).date()
    try:
        upcoming = calendar.next_sessions(today + dt.timedelta(days=1), 1)
        next_day = upcoming[0].date() if len(upcoming) else today + dt.timedelta(days=1)
    except Exception:  # noqa: BLE001 - outside the calendar: the next weekday
        next_day = today + dt.timedelta(days=1)
    expiry = pd.to_datetime(options["expiry"]).dt.date
    gamma_total = float(np.nansum(np.abs(frame["position_gamma"].to_numpy(np.float64))))
    alerts = []
    for label, when, priority in (("TODAY", today, "critical"), ("on the next session", next_day, "high")):
        hit = options[(expiry == when).to_numpy()]
        if not len(hit):
            continue
        gamma = float(np.nansum(np.abs(hit["position_gamma"].to_numpy(np.float64))))
        share = f" ({gamma / gamma_total:.0%} of portfolio Gamma)" if gamma_total > 0 else ""
        alerts.append({
            "id": f"alert_expiration_{when.isoformat()}", "type": "expiration_risk", "priority": priority,
            "title": "Options Expiration Risk",
            "message": f"{len(hit)} position{'s' if len(hit) != 1 else ''} expiring {label}{share}",
            "positions_affected": [str(i) for i in hit["position_id"]], "triggered_at": as_of.isoformat(),
            "actions": ["close_positions", "roll_forward"], "value": gamma / gamma_total if gamma_total > 0 else None,
        })
    return alerts


def evaluate_alerts(catalog: Catalog, user_id: int, book, priority: Optional[str] = None) -> list[dict]:
    """The active alerts of the user's book: built-in checks, then the user's rules that hold."""
    if priority is not None and priority not in PRIORITIES:
        raise PortfolioInputError("priority", f"must be one of {list(PRIORITIES)}")
    frame = book.positions
    equity = float(book.equity)
    as_of = book.as_of if isinstance(book.as_of, dt.datetime) else pd.Timestamp(book.as_of).to_pydatetime()
    alerts = _expiration_alerts(frame, as_of)
    with catalog.session() as s:
        rules = s.scalars(select(AlertRule).where(AlertRule.user_id == user_id, AlertRule.active.is_(True))
                          .order_by(AlertRule.created_at)).all()
    for rule in rules:
        cond = rule.condition
        if not equity or not math.isfinite(equity):
            continue
        value, affected = _metric(frame, equity, cond)
        symbol, op = OPERATORS[cond["operator"]]
        if not op(value, cond["threshold"]):
            continue
        subject = cond.get("sector") or cond.get("tag") or cond.get("ticker")
        what = cond["metric"].replace("_", " ") + (f" ({subject})" if subject else "")
        alerts.append({
            "id": f"alert_{rule.id}", "type": cond["metric"], "priority": rule.priority, "title": rule.name,
            "message": f"{what} is {value:.1%} of equity ({symbol} {cond['threshold']:.1%})",
            "positions_affected": affected, "triggered_at": as_of.isoformat(), "rule_id": rule.id,
            "actions": ["review_positions", "reduce_exposure"], "value": value,
        })
    if priority is not None:
        alerts = [a for a in alerts if a["priority"] == priority]
    return alerts
