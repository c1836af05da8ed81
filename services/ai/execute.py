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

#: Intents ``/ai/execute`` runs (every intent of ``services.ai.intents.INTENTS``).
EXECUTABLE = ("analyze_risk", "show_exposure", "expiring_options", "what_if_trade", "reduce_exposure", "hedge_risk",
              "generate_report", "set_alert_rule", "show_leaderboard", "run_backtest", "run_sweep")
#: Intents that run as a platform job (the answer is the job to poll).
JOB_INTENTS = {"hedge_risk": ("proforma.hedge", 8000), "generate_report": ("reports.generate", 3000),
               "run_backtest": ("lab.backtest", 3000), "run_sweep": ("lab.sweep", 5000)}
#: ``run_sweep`` with a strategy named and no grid sweeps this grid (compute.strategies names).
STRATEGY_GRIDS = {
    "zscore": {"window": [10, 20, 40, 60], "entry": [1.5, 2.0, 2.5], "exit": [0.0, 0.5]},
    "ma_cross": {"fast": [5, 10, 20], "slow": [50, 100, 200]},
    "rsi": {"window": [7, 14, 21], "lower": [20.0, 30.0], "upper": [70.0, 80.0]},
    "bollinger": {"window": [10, 20, 40], "k": [1.5, 2.0, 2.5]},
    "donchian": {"window": [10, 20, 55], "exit": [0.25, 0.5]},
}
LAB_SUGGESTIONS = ["GET /api/v1/models for your models (model_id)",
                   "POST /api/v1/models {template_id, config: {ticker}} to create one"]
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
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise AIInputError("parameters", "must be an object")
    params = dict(params)
    if intent in ("run_backtest", "run_sweep"):
        return {"intent": intent, "parameters": _lab_params(intent, params)}
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


def _lab_params(intent: str, params: dict) -> dict:
    """``run_backtest`` / ``run_sweep``: ``model_id``, or ``ticker`` (the caller's newest model on
    it); optional ``strategy`` (a built-in name, or ``{name, params}`` for a backtest) and, for a
    sweep, ``grid`` (the strategy's parameter lists) or a full ``sweep`` spec; optional
    ``start_date`` / ``end_date``."""
    from compute.strategies import STRATEGIES

    model_id, ticker = params.get("model_id"), params.get("ticker")
    for key, value in (("model_id", model_id), ("ticker", ticker)):
        if value is not None and not (isinstance(value, str) and 0 < len(value) <= 80):
            raise AIInputError(f"parameters.{key}", "a non-empty string", LAB_SUGGESTIONS)
    if not model_id and not ticker:
        raise AIInputError("parameters.model_id", f"{intent} needs a model: give model_id, or a ticker one of your "
                           "models trades", LAB_SUGGESTIONS)
    strategy = params.get("strategy")
    if strategy is not None:
        name = strategy.get("name") if isinstance(strategy, dict) else strategy
        if name not in STRATEGIES:
            raise AIInputError("parameters.strategy", f"a built-in strategy: one of {', '.join(STRATEGIES)}")
        if isinstance(strategy, dict) and intent == "run_sweep":
            raise AIInputError("parameters.strategy", "a sweep takes the strategy's name; its values go in grid")
    for key in ("grid", "sweep"):
        if params.get(key) is not None and (intent != "run_sweep" or not isinstance(params[key], dict)):
            raise AIInputError(f"parameters.{key}", "an object, for run_sweep only")
    if params.get("grid") is not None and strategy is None:
        raise AIInputError("parameters.grid", "a grid needs a strategy name")
    if params.get("sweep") is not None and strategy is not None:
        raise AIInputError("parameters.sweep", "give either a strategy (with its grid) or a sweep spec")
    return params


def resolve_model(catalog: Catalog, user_id: int, params: dict) -> str:
    """The model a Lab intent runs on: ``model_id`` as given, or the caller's newest model on
    ``ticker`` (400 naming ``parameters.ticker`` when they have none)."""
    from services.lab import models as lab_models

    if params.get("model_id"):
        return params["model_id"]
    ticker = params["ticker"].upper()
    rows, _ = lab_models.list_models(catalog, user_id, limit=500)
    for row in rows:  # newest first
        if str((row.config or {}).get("ticker", "")).upper() == ticker:
            return row.model_id
    raise AIInputError("parameters.ticker", f"you have no model on {ticker}", LAB_SUGGESTIONS)


def backtest_body(params: dict) -> dict:
    """``POST /backtest``'s body for a checked ``run_backtest`` (``model_id`` resolved)."""
    body = {k: params[k] for k in ("model_id", "start_date", "end_date", "risk_profile") if params.get(k)}
    strategy = params.get("strategy")
    if strategy is not None:
        body["strategy"] = strategy if isinstance(strategy, dict) else {"name": strategy}
    return body


def sweep_body(params: dict) -> dict:
    """``POST /backtest_sweep``'s body for a checked ``run_sweep``: the strategy's grid (given, or
    ``STRATEGY_GRIDS``), a sweep spec as given, or the model's pack's default grid."""
    body = {k: params[k] for k in ("model_id", "start_date", "end_date", "risk_profile") if params.get(k)}
    if params.get("strategy") is not None:
        name = params["strategy"]
        body["sweep"] = {"strategy": {"name": name, "grid": params.get("grid") or STRATEGY_GRIDS[name]}}
    elif params.get("sweep") is not None:
        body["sweep"] = params["sweep"]
    return body


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
    elif intent in ("run_backtest", "run_sweep"):
        params["model_id"] = resolve_model(catalog, user_id, params)
        what = (f"the {params['strategy'] if isinstance(params['strategy'], str) else params['strategy'].get('name')} strategy"
                if params.get("strategy") else "its walk-forward scores")
        out["summary"] = f"start a {JOB_INTENTS[intent][0]} job: model {params['model_id']}, {what}"
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
