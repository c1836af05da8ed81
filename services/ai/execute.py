"""``POST /ai/execute`` (portfolio spec 9.2): an intent run through the platform's own services.

``plan(...)`` works out what an intent would do without doing it (the trades of a
``reduce_exposure``, the rule of a ``set_alert_rule``, ...); ``run(...)`` does it. With
``confirmation_required`` the route stores the plan under a confirmation id (per user, single
use, expiring: :func:`confirm`); an intent whose plan changes positions (``reduce_exposure``
with ``apply_to: "portfolio"``) is never run without that confirmation.

``reduce_exposure`` (sector, tag or ticker; ``target_exposure`` as a share of the book's total
value, or ``target_notional`` in dollars): the subject's exposure is its gross notional
(sum of |notional exposure|, as ``GET /portfolio/exposures`` groups it: market value for
stocks, quantity x multiplier x underlying price for options), over the book's total value
before the trades (the sales raise cash, so the value does not move at today's prices).

- ``method: proportional`` scales every position of the subject by ``k = target / current``;
  quantities are rounded to whole shares or contracts (0 closes the position).
- ``method: largest_first`` sells the largest positions first, the last one partly.

``apply_to: "session"`` (default) opens a ProForma modeling session with those trades (the
book itself is not changed: ``GET /modeling/sessions/{id}`` shows before and after);
``apply_to: "portfolio"`` changes the positions themselves and needs a confirmation.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np

from cluster.catalog import AIConfirmation, Catalog
from cluster.catalog.models import utcnow
from cluster.errors import InputError
from services.ai import facts as facts_mod
from services.ai.intents import INTENTS

#: Intents ``/ai/execute`` runs here; the Lab intents need a model and its own routes.
EXECUTABLE = ("analyze_risk", "show_exposure", "expiring_options", "what_if_trade", "reduce_exposure", "hedge_risk",
              "generate_report", "set_alert_rule", "show_leaderboard")
#: Intents that run as a platform job (the answer is the job to poll).
JOB_INTENTS = {"hedge_risk": ("proforma.hedge", 8000), "generate_report": ("reports.generate", 3000)}
METHODS = ("proportional", "largest_first")


class AIInputError(InputError):
    """Bad intent or parameters (400 naming the field); ``suggestions`` are the next steps an
    agent can take (the error's ``ai_suggestions``, spec 15.1)."""

    def __init__(self, field: str, reason: str, suggestions: list[str] | None = None):
        super().__init__(field, reason)
        self.suggestions = suggestions or []


class ConfirmationRequired(Exception):
    """The plan changes positions: resend with ``confirmation_required: true``."""


def _num(params: dict, key: str, lo: float, hi: float) -> float | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not lo <= value <= hi:
        raise AIInputError(f"parameters.{key}", f"a number in [{lo:g}, {hi:g}]")
    return float(value)


def _subject(params: dict) -> dict:
    subject = {k: params[k] for k in ("sector", "tag", "ticker") if params.get(k)}
    if len(subject) != 1 or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in subject.values()):
        raise AIInputError("parameters.sector", "give exactly one of sector, tag or ticker",
                           ["POST /ai/interpret to extract the subject", "GET /portfolio/exposures for the sectors held"])
    return subject


def check(intent: Any, params: Any) -> dict:
    """The parameters, checked for the intent (``AIInputError`` naming the field)."""
    if intent == "reduce_tech_exposure":  # the spec's example name (9.2)
        intent, params = "reduce_exposure", {"sector": "Technology", **(params or {})}
    if intent not in INTENTS:
        raise AIInputError("intent", f"unknown intent {intent!r}; one of {', '.join(INTENTS)}",
                           ["POST /ai/interpret to turn a request into an intent"])
    if intent not in EXECUTABLE:
        raise AIInputError("intent", f"{intent} needs a model: run it from the Lab",
                           ["POST /lab/backtests" if intent == "run_backtest" else "POST /lab/sweeps", "GET /lab/models"])
    if not isinstance(params, dict):
        raise AIInputError("parameters", "must be an object")
    params = dict(params)
    if intent == "reduce_exposure":
        params.update(_subject(params))
        target = _num(params, "target_exposure", 0.0, 0.9999)
        notional = _num(params, "target_notional", 0.0, 1e12)
        if (target is None) == (notional is None):
            raise AIInputError("parameters.target_exposure", "give target_exposure (a share, e.g. 0.15) or target_notional",
                               ["ask the user for the target level"])
        method = params.setdefault("method", "proportional")
        if method not in METHODS:
            raise AIInputError("parameters.method", f"one of {', '.join(METHODS)}")
        if params.setdefault("apply_to", "session") not in ("session", "portfolio"):
            raise AIInputError("parameters.apply_to", "'session' (a modeling session) or 'portfolio'")
    elif intent == "what_if_trade":
        if not isinstance(params.get("ticker"), str):
            raise AIInputError("parameters.ticker", "is required")
        q = _num(params, "quantity", -1e9, 1e9)
        if not q:
            raise AIInputError("parameters.quantity", "a non-zero number (negative sells)")
    elif intent == "set_alert_rule":
        from services.portfolio import alerts

        alerts.parse_rule(alert_rule_body(params))
    elif intent == "expiring_options":
        if params.get("days_ahead") is not None:
            _num(params, "days_ahead", 0, 366)
    return {"intent": intent, "parameters": params}


def alert_rule_body(params: dict) -> dict:
    cond = {"metric": params.get("metric"), "operator": params.get("operator", "greater_than"), "threshold": params.get("threshold")}
    for key in ("sector", "tag", "ticker"):
        if params.get(key):
            cond[key] = params[key]
    subject = params.get("sector") or params.get("tag") or params.get("ticker") or ""
    name = params.get("name") or f"AI: {str(cond['metric']).replace('_', ' ')} {subject}".strip()
    return {"name": name[:120], "condition": cond, "priority": params.get("priority", "high")}


# -- reduce_exposure ---------------------------------------------------------------------------

def reduction_trades(book, params: dict) -> dict:
    """The trades that bring the subject's gross notional to the target (module docs)."""
    frame = book.positions
    equity = float(book.equity)
    mask = facts_mod.subject_mask(frame, params)
    if not mask.any():
        what = params.get("sector") or params.get("tag") or params.get("ticker")
        raise AIInputError("parameters." + next(k for k in ("sector", "tag", "ticker") if params.get(k)),
                           f"no position in {what}", ["GET /portfolio/exposures for the sectors held"])
    if not equity > 0:
        raise AIInputError("parameters", "the book has no positive total value")
    notional = np.nan_to_num(frame["notional_exposure"].to_numpy(np.float64))
    qty = frame["quantity"].to_numpy(np.float64)
    current = float(np.abs(notional[mask]).sum())
    target = params["target_exposure"] * equity if params.get("target_exposure") is not None else float(params["target_notional"])
    idx = np.flatnonzero(mask)
    trades = []
    if current > target:
        if params.get("method", "proportional") == "proportional":
            k = target / current
            new_q = {i: float(np.round(qty[i] * k)) for i in idx}
        else:
            new_q, excess = {}, current - target
            for i in sorted(idx, key=lambda j: -abs(notional[j])):
                if excess <= 0:
                    break
                per_unit = abs(notional[i] / qty[i]) if qty[i] else 0.0
                if per_unit <= 0:
                    continue
                cut = min(abs(qty[i]), math.ceil(excess / per_unit - 1e-9))
                new_q[i] = float(np.sign(qty[i]) * (abs(qty[i]) - cut))
                excess -= cut * per_unit
        for i, q in new_q.items():
            if q == qty[i]:
                continue
            unit = notional[i] / qty[i] if qty[i] else 0.0
            trades.append({"position_id": str(frame["position_id"].iloc[i]), "symbol": str(frame["symbol"].iloc[i]),
                           "from": float(qty[i]), "to": q, "action": "close" if q == 0 else "modify",
                           "side": "SELL" if qty[i] > 0 else "BUY", "quantity": abs(float(qty[i] - q)),
                           "notional_before": round(float(notional[i]), 2), "notional_after": round(float(unit * q), 2)})
    after = current - sum(abs(t["notional_before"]) - abs(t["notional_after"]) for t in trades)
    return {"subject": {k: params[k] for k in ("sector", "tag", "ticker") if params.get(k)}, "method": params.get("method"),
            "total_value": round(equity, 2), "current_gross": round(current, 2), "target_gross": round(target, 2),
            "current_share": round(current / equity, 6), "expected_gross_after": round(after, 2),
            "expected_share_after": round(after / equity, 6), "trades": trades}


# -- plan and run ------------------------------------------------------------------------------

def changes_positions(intent: str, params: dict) -> bool:
    return intent == "reduce_exposure" and params.get("apply_to") == "portfolio"


def plan(catalog: Catalog, provider, user_id: int, intent: str, params: dict) -> dict:
    """What running the intent would do, without doing it."""
    from services.portfolio import service as portfolio_service

    out: dict[str, Any] = {"intent": intent, "parameters": params, "changes_positions": changes_positions(intent, params)}
    if intent == "reduce_exposure":
        book = portfolio_service.priced_book(catalog, provider, user_id, params.get("portfolio_id"))
        out["reduction"] = reduction_trades(book, params)
        out["summary"] = (f"{len(out['reduction']['trades'])} trade(s) bring {next(iter(out['reduction']['subject'].values()))} "
                          f"from {out['reduction']['current_share']:.1%} to {out['reduction']['expected_share_after']:.1%} "
                          f"of the book's value, applied to a {'modeling session' if params['apply_to'] == 'session' else 'portfolio'}")
    elif intent == "set_alert_rule":
        out["rule"] = alert_rule_body(params)
        out["summary"] = f"create the alert rule {out['rule']['name']!r}"
    elif intent in JOB_INTENTS:
        out["summary"] = f"start a {JOB_INTENTS[intent][0]} job"
    else:
        out["summary"] = f"read-only: {intent.replace('_', ' ')}"
    return out


def hedge_body(params: dict) -> dict:
    return {"risk_to_hedge": params.get("risk", "market_beta"), "budget": params.get("budget", 10_000.0),
            "constraints": {"allowed_instruments": params.get("instruments") or ["options", "etfs"]}}


def report_body(params: dict) -> dict:
    return {k: params[k] for k in ("type", "format", "sections", "period", "backtest_id", "sweep_id", "portfolio_id") if k in params} \
        | {"type": params.get("type", "risk_summary")}


def run(catalog: Catalog, provider, user_id: int, intent: str, params: dict, planned: dict | None = None) -> dict:
    """Run a checked intent (not the job intents: the route starts those). ``planned``: the
    confirmed plan, whose trades are applied as they were shown."""
    from services.portfolio import alerts, service as portfolio_service, views

    if intent == "reduce_exposure":
        reduction = (planned or plan(catalog, provider, user_id, intent, params))["reduction"]
        trades = reduction["trades"]
        if params.get("apply_to") == "portfolio":
            for t in trades:
                if t["to"] == 0:
                    portfolio_service.delete_position(catalog, user_id, t["position_id"])
                else:
                    portfolio_service.update_position(catalog, user_id, t["position_id"], {"quantity": t["to"]})
            return {"applied_to": "portfolio", "reduction": reduction}
        from services.proforma import sessions, service as proforma

        subject = next(iter(reduction["subject"].values()))
        target = params.get("target_exposure")
        name = f"AI: reduce {subject} to " + (f"{target:.1%}" if target is not None else f"${params['target_notional']:,.0f}")
        created = sessions.create_session(catalog, user_id, {"name": name, "base_portfolio": params.get("portfolio_id") or "current"})
        sid = created["session_id"]
        if trades:
            mods = [{"position_id": t["position_id"], "new_quantity": t["to"]} if t["to"] else
                    {"position_id": t["position_id"], "action": "close"} for t in trades]
            sessions.modify_session(catalog, provider, user_id, sid, mods)
        detail = proforma.get_session(catalog, provider, user_id, sid, include_stress=False, with_positions=False)
        return {"applied_to": "session", "session_id": sid, "session_url": f"/api/v1/modeling/sessions/{sid}",
                "reduction": reduction, "changes": detail["changes"],
                "by_sector_after": detail["modified_portfolio"]["by_sector"],
                "total_value_before": detail["original_portfolio"]["total_value"]}
    if intent == "set_alert_rule":
        return {"rule": alerts.create_rule(catalog, user_id, alert_rule_body(params))}
    if intent == "what_if_trade":
        from services.proforma import service as proforma

        q = float(params["quantity"])
        body = {"symbol": params["ticker"], "action": "buy" if q > 0 else "sell", "quantity": abs(q)}
        return {"trade": proforma.trade_whatif(catalog, provider, user_id, body, params.get("portfolio_id"))}
    if intent == "show_leaderboard":
        from services.lab.leaderboard import leaderboard

        return {"leaderboard": leaderboard(catalog, user_id, limit=int(params.get("limit") or 10))}
    book = portfolio_service.priced_book(catalog, provider, user_id, params.get("portfolio_id"))
    figures = facts_mod.book_facts(book, intent, params)
    if intent == "analyze_risk":
        return {"facts": figures, "alerts": alerts.evaluate_alerts(catalog, user_id, book)}
    if intent == "show_exposure":
        exposures = views.portfolio_exposures(book)
        return {"facts": figures, "by_sector": exposures["by_sector"], "by_tag": exposures["by_tag"], "totals": exposures["totals"]}
    if intent == "expiring_options":
        return {"facts": figures}
    raise AIInputError("intent", f"{intent} is not run here")


# -- confirmations -----------------------------------------------------------------------------

def save_confirmation(catalog: Catalog, user_id: int, intent: str, params: dict, planned: dict, ttl_s: int,
                      agent_id: str | None = None) -> dict:
    now = utcnow()
    with catalog.session() as s:
        row = AIConfirmation(user_id=user_id, intent=intent, parameters=params, plan=planned, status="pending",
                             agent_id=agent_id, created_at=now, expires_at=now + dt.timedelta(seconds=ttl_s))
        s.add(row)
        s.flush()
        return {"confirmation_id": row.id, "expires_at": row.expires_at.isoformat()}


class ConfirmationGone(Exception):
    """A confirmation used already or expired (409)."""

    def __init__(self, message: str, field: str = "confirmation_id"):
        super().__init__(message)
        self.field = field


def take_confirmation(catalog: Catalog, user_id: int, confirmation_id: str) -> AIConfirmation:
    """Claim a pending confirmation (single use: the status moves to ``used`` in the same
    transaction that reads it). ``LookupError`` for another user's or an unknown id;
    ``ConfirmationGone`` for a used or expired one."""
    from sqlalchemy import update

    now = utcnow()
    with catalog.session() as s:
        row = s.get(AIConfirmation, confirmation_id)
        if row is None or row.user_id != user_id:
            raise LookupError(f"confirmation {confirmation_id}")
        if row.status != "pending":
            raise ConfirmationGone(f"confirmation {confirmation_id} was used at {row.used_at.isoformat() if row.used_at else '?'}")
        if row.expires_at <= now:
            raise ConfirmationGone(f"confirmation {confirmation_id} expired at {row.expires_at.isoformat()}")
        claimed = s.execute(update(AIConfirmation).where(AIConfirmation.id == confirmation_id, AIConfirmation.status == "pending")
                            .values(status="used", used_at=now)).rowcount
        if claimed != 1:
            raise ConfirmationGone(f"confirmation {confirmation_id} was used")
        s.flush()
        s.refresh(row)
        s.expunge(row)
        return row


def record_result(catalog: Catalog, confirmation_id: str, result: dict) -> None:
    from compute.jsonsafe import json_safe

    with catalog.session() as s:
        s.get(AIConfirmation, confirmation_id).result = json_safe(result)
