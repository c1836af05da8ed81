"""The numbers of the user's book an AI answer quotes, and the answer text built from them.

``book_facts(book, intent, parameters)`` reads the priced book (the same ``PricedBook`` every
portfolio route reads) and returns only figures; ``answer(interpretation, facts)`` words them.
Both are deterministic, so the text of ``POST /ai/interpret`` equals what ``GET /portfolio/*``
shows for the same minute.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def _today(book) -> dt.date:
    ts = pd.Timestamp(book.as_of)
    return (ts.tz_convert("America/New_York") if ts.tzinfo else ts).date()


def _expiry_window(book, params: dict) -> tuple[dt.date, dt.date]:
    today = _today(book)
    if params.get("date"):
        day = dt.date.fromisoformat(params["date"])
        return day, day
    days = params.get("days_ahead")
    days = 5 if days is None else int(days)
    if params.get("timeframe") == "tomorrow":
        return today + dt.timedelta(days=1), today + dt.timedelta(days=1)
    return today, today + dt.timedelta(days=days)


def sector_gross(frame: pd.DataFrame) -> dict[str, float]:
    """Gross notional exposure (sum of |notional|) by sector, as ``GET /portfolio/exposures``
    groups it."""
    if not len(frame):
        return {}
    notional = np.abs(np.nan_to_num(frame["notional_exposure"].to_numpy(np.float64)))
    out: dict[str, float] = {}
    for sector, value in zip(frame["sector"].astype(str), notional):
        out[sector] = out.get(sector, 0.0) + float(value)
    return out


def subject_mask(frame: pd.DataFrame, params: dict) -> np.ndarray:
    """Positions of the parameters' sector, tag or ticker (all False when none is given)."""
    if not len(frame):
        return np.zeros(0, dtype=bool)
    if params.get("sector"):
        return (frame["sector"].astype(str).str.lower() == str(params["sector"]).lower()).to_numpy()
    if params.get("tag"):
        return np.array([params["tag"] in (t or []) for t in frame["tags"]], dtype=bool)
    if params.get("ticker"):
        return (frame["underlying"].astype(str).str.upper() == str(params["ticker"]).upper()).to_numpy()
    return np.zeros(len(frame), dtype=bool)


def book_facts(book, intent: str, params: dict) -> dict:
    """The figures the answer to ``intent`` quotes."""
    frame = book.positions
    equity = float(book.equity)
    facts: dict = {"equity": round(equity, 2), "positions": int(len(frame)), "as_of": pd.Timestamp(book.as_of).isoformat()}
    if not len(frame):
        return facts
    notional = np.nan_to_num(frame["notional_exposure"].to_numpy(np.float64))
    gamma = np.abs(np.nan_to_num(frame["position_gamma"].to_numpy(np.float64))) if "position_gamma" in frame else np.zeros(len(frame))
    gross = float(np.abs(notional).sum())
    facts["gross_exposure"] = round(gross, 2)
    if intent in ("show_exposure", "reduce_exposure", "set_alert_rule", "hedge_risk"):
        mask = subject_mask(frame, params)
        if mask.any():
            g = float(np.abs(notional[mask]).sum())
            facts["subject_gross"] = round(g, 2)
            facts["subject_share_of_equity"] = round(g / equity, 4) if equity > 0 else None
            facts["subject_positions"] = [str(i) for i in frame.loc[mask, "position_id"]]
        by_sector = sector_gross(frame)
        facts["by_sector_share_of_equity"] = {k: round(v / equity, 4) for k, v in sorted(by_sector.items(), key=lambda kv: -kv[1])} \
            if equity > 0 else {}
    if intent in ("expiring_options", "analyze_risk"):
        start, end = _expiry_window(book, params if intent == "expiring_options" else {"days_ahead": 0})
        live = frame["expiry"].notna().to_numpy() & ~frame["expired"].astype(bool).to_numpy()
        expiry = pd.to_datetime(frame["expiry"]).dt.date.to_numpy()
        hit = np.array([bool(live[i]) and start <= expiry[i] <= end for i in range(len(frame))], dtype=bool)
        if params.get("ticker"):
            hit &= (frame["underlying"].astype(str).str.upper() == params["ticker"]).to_numpy()
        total_gamma = float(gamma.sum())
        facts["expiring"] = {"from": start.isoformat(), "to": end.isoformat(), "count": int(hit.sum()),
                             "position_ids": [str(i) for i in frame.loc[hit, "position_id"]],
                             "gamma_share": round(float(gamma[hit].sum()) / total_gamma, 4) if total_gamma > 0 else None}
    if intent == "analyze_risk":
        facts["net_delta_exposure"] = round(float(np.nansum(frame["delta_exposure"].to_numpy(np.float64))), 2)
        facts["gross_over_equity"] = round(gross / equity, 4) if equity > 0 else None
        top = int(np.argmax(np.abs(notional)))
        facts["largest_position"] = {"position_id": str(frame["position_id"].iloc[top]), "symbol": str(frame["symbol"].iloc[top]),
                                     "share_of_equity": round(abs(float(notional[top])) / equity, 4) if equity > 0 else None}
    return facts


def _pct(x) -> str:
    return "n/a" if x is None else f"{x * 100:.1f} %"


def _money(x) -> str:
    return f"${x:,.0f}"


def _sessions_label(facts: dict) -> str:
    e = facts["expiring"]
    return "today" if e["from"] == e["to"] else f"between {e['from']} and {e['to']}"


def answer(intent: str, params: dict, facts: dict, *, question: str | None = None, reason: str | None = None) -> str:
    """The text answer: the question or refusal as is, else a sentence from ``facts``."""
    if intent == "clarify":
        return question or "Could you rephrase that?"
    if intent == "unsupported":
        return reason or "That is not something Sigma does."
    if not facts.get("positions"):
        if intent in ("run_backtest", "run_sweep", "show_leaderboard"):
            pass
        else:
            return "Your portfolio has no positions yet; upload one (POST /portfolio/upload) or add positions first."
    if intent == "expiring_options":
        e = facts["expiring"]
        n = e["count"]
        if not n:
            return f"No option positions expire {_sessions_label(facts)}."
        share = f", {e['gamma_share'] * 100:.0f} % of portfolio gamma" if e["gamma_share"] is not None else ""
        return f"{n} position{'s' if n != 1 else ''} expire{'s' if n == 1 else ''} {_sessions_label(facts)}{share}."
    if intent == "analyze_risk":
        e = facts.get("expiring", {})
        parts = [f"Gross exposure is {_money(facts['gross_exposure'])} ({_pct(facts.get('gross_over_equity'))} of equity "
                 f"{_money(facts['equity'])}), net delta exposure {_money(facts['net_delta_exposure'])}."]
        lp = facts.get("largest_position")
        if lp:
            parts.append(f"The largest position is {lp['symbol']} at {_pct(lp['share_of_equity'])} of equity.")
        if e.get("count"):
            share = f" ({e['gamma_share'] * 100:.0f} % of portfolio gamma)" if e.get("gamma_share") is not None else ""
            parts.append(f"{e['count']} option position{'s' if e['count'] != 1 else ''} expire today{share}.")
        return " ".join(parts)
    subject = params.get("sector") or params.get("tag") or params.get("ticker")
    if intent == "show_exposure":
        if subject:
            if "subject_gross" not in facts:
                return f"You hold no positions in {subject}."
            return (f"{subject}: gross exposure {_money(facts['subject_gross'])}, {_pct(facts['subject_share_of_equity'])} "
                    f"of equity, over {len(facts['subject_positions'])} position(s).")
        top = list(facts.get("by_sector_share_of_equity", {}).items())[:3]
        return "Largest sectors by gross exposure: " + ", ".join(f"{k} {_pct(v)}" for k, v in top) + " of equity."
    if intent == "reduce_exposure":
        if "subject_gross" not in facts:
            return f"You hold no positions in {subject}; there is nothing to reduce."
        target = params.get("target_exposure")
        now = facts["subject_share_of_equity"]
        if target is not None and now is not None and now <= target:
            return f"{subject} is already at {_pct(now)} of equity, at or below the {_pct(target)} target."
        goal = _pct(target) if target is not None else _money(params.get("target_notional", 0))
        return (f"{subject} is {_pct(now)} of equity ({_money(facts['subject_gross'])}). I can model {params.get('method', 'proportional')} "
                f"sales across its {len(facts['subject_positions'])} position(s) to bring it to {goal}: "
                "POST /ai/execute with confirmation_required to see the trades.")
    if intent == "hedge_risk":
        budget = f" within {_money(params['budget'])}" if params.get("budget") else ""
        return f"I can search hedges for {params['risk'].replace('_', ' ')}{budget} (a job; POST /ai/execute runs it)."
    if intent == "what_if_trade":
        return (f"Modeling {params['side']} {abs(params['quantity']):g} {params['ticker']} on your book of "
                f"{facts['positions']} positions (equity {_money(facts['equity'])}); POST /ai/execute returns the impact.")
    if intent == "set_alert_rule":
        now = facts.get("subject_share_of_equity")
        tail = f" (now {_pct(now)})" if now is not None else ""
        return (f"Alert when {params['metric'].replace('_', ' ')}{' of ' + subject if subject else ''} is "
                f"{params['operator'].replace('_', ' ')} {_pct(params['threshold'])}{tail}; POST /ai/execute creates the rule.")
    if intent == "generate_report":
        return f"I can generate a {params['type'].replace('_', ' ')} report as {params['format'].upper()} (a job)."
    if intent == "show_leaderboard":
        return f"Showing the top {params.get('limit', 10)} models by {params.get('metric', 'sharpe')}."
    if intent in ("run_backtest", "run_sweep"):
        what = "backtest" if intent == "run_backtest" else "parameter sweep"
        return f"Opening the Lab to run a {what}" + (f" of model {params['model_id']}." if params.get("model_id") else ".")
    return "Done."
