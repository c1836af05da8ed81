"""The deterministic intent parser behind ``POST /ai/interpret`` (portfolio spec 9.1).

Pure: no HTTP, no catalog, no market data. The route hands it the query, the tickers it may
recognise (the reference universe plus the user's book) and the user's tag names; it returns
an :class:`Interpretation`: intent, confidence, parameters, UI actions and, when the query
is unclear, a clarifying question instead of a guess.

Grammar (docs/ai.md lists it with examples):

1. **Entities** are extracted first: percentages (``15 %``, ``15 percent``, ``0.15`` after
   "to"), money (``$50k``, ``50,000 dollars``, ``2m usd``), dates and windows (``today``,
   ``tomorrow``, ``this week``, ``next 5 days``, ``2027-01-15``), sectors (aliases:
   ``tech`` -> Technology, ``banks`` -> Financials, ...), tags (``tag hedges``, ``#core``, or a
   word that is one of the user's tag names), tickers (an upper-case symbol or ``$symbol``
   that is in the reference universe or the book; a lower-case word only when it is a ticker
   of the book) and quantities (``buy 100 AAPL``).
2. **Intent scoring**: every intent has cue patterns with weights (2 = a strong cue such as
   "expir", 1 = a weak one such as "risk"); an intent's score is the sum of its matched cues
   plus entity bonuses (a sector or tag with "exposure", a ticker and a quantity with
   buy/sell). ``confidence = (1 - exp(-top/2)) * (1 - second / (2 top))`` where ``top`` and
   ``second`` are the two best scores: one strong cue alone gives 0.63, two 0.86, and a tie
   between two intents halves it.
3. **Clarify or refuse**: below :data:`CONFIDENCE_THRESHOLD` (0.6), or when an intent lacks a
   required parameter (``reduce_exposure`` without a target, ``what_if_trade`` without a
   ticker), or names a ticker that is not in the universe, the answer is intent
   ``clarify`` with a question; requests the platform does not do (placing orders at a
   broker, moving money, deleting the account) are intent ``unsupported`` with the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from typing import Any, Callable, Iterable

CONFIDENCE_THRESHOLD = 0.6

INTENTS = ("analyze_risk", "show_exposure", "expiring_options", "what_if_trade", "reduce_exposure", "hedge_risk",
           "run_backtest", "run_sweep", "show_leaderboard", "generate_report", "set_alert_rule")
#: Answers that are not a platform intent.
NON_INTENTS = ("clarify", "unsupported")

SECTOR_ALIASES: dict[str, str] = {
    "technology": "Technology", "tech": "Technology", "information technology": "Technology",
    "semiconductors": "Technology", "semis": "Technology", "software": "Technology",
    "financials": "Financials", "financial": "Financials", "banks": "Financials", "banking": "Financials",
    "health care": "Health Care", "healthcare": "Health Care", "pharma": "Health Care", "biotech": "Health Care",
    "energy": "Energy", "oil and gas": "Energy",
    "industrials": "Industrials", "industrial": "Industrials",
    "consumer discretionary": "Consumer Discretionary", "discretionary": "Consumer Discretionary",
    "consumer staples": "Consumer Staples", "staples": "Consumer Staples",
    "utilities": "Utilities", "materials": "Materials", "real estate": "Real Estate", "reits": "Real Estate",
    "communication services": "Communication Services", "communications": "Communication Services",
    "telecom": "Communication Services", "media": "Communication Services",
}

#: Words that look like tickers but are English (never read as a ticker unless ``$``-prefixed).
STOPWORDS = frozenset("""A I AM AN AND ARE AS AT BE BY DO FOR GO HE IF IN IS IT ME MY NO OF ON OR SO TO UP US WE
ALL ANY BUY CAN DAY GET HOW NOW OUT PUT RUN SEE SET THE TOP WHY YOU VAR PDF HTML CSV ETF ETFS USD PM AM OK""".split())

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9.\-]{0,9}")
_PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:%|percent\b|pct\b|per\s*cent\b)", re.I)
_FRACTION_TARGET = re.compile(r"\bto\s+(0?\.\d+)\b", re.I)
_MONEY = re.compile(r"(?:\$\s*(\d[\d,]*(?:\.\d+)?)\s*(k|m|mm|bn|b|thousand|million|billion)?\b"
                    r"|(?<![\w.$])(\d[\d,]*(?:\.\d+)?)\s*(k|m|mm|bn|b|thousand|million|billion)?\s*(?:dollars|usd|bucks)\b)",
                    re.I)
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mm": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9}
_ISO_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_DAYS = re.compile(r"\b(?:next|within|in(?: the next)?|coming)\s+(\d{1,3})\s+(?:trading\s+)?days?\b", re.I)
_TRADE = re.compile(r"\b(buy|sell|short|add|trim)\s+(\d[\d,]*)\s*(?:shares?\s+(?:of\s+)?|contracts?\s+(?:of\s+)?)?\$?([A-Za-z][A-Za-z.\-]{0,9})\b", re.I)
_TRADE_REV = re.compile(r"\b(buy|sell|short)\s+\$?([A-Za-z][A-Za-z.\-]{0,9})\s+(\d[\d,]*)\b", re.I)
_TAG = re.compile(r"(?:\btag(?:ged)?\s+(?:as\s+)?[\"']?|#)([A-Za-z0-9_\-]{1,40})", re.I)

# (pattern, weight): 2 strong, 1 weak. Patterns run on the lower-cased query.
CUES: dict[str, list[tuple[str, float]]] = {
    "analyze_risk": [(r"\brisks?\b", 1), (r"\bbiggest risks?\b|\bmain risks?\b|\btop risks?\b", 2), (r"\bvar\b|value at risk", 2),
                     (r"\bgreeks\b|\bgamma\b|\bdelta\b|\bvega\b", 1), (r"\banaly[sz]e\b", 1), (r"\bhow risky\b|\bam i safe\b", 2),
                     (r"\bstress\b|\bscenarios?\b|\bcrash\b|\bdrawdown\b", 2), (r"\bwhat could go wrong\b|\bworr", 2)],
    "show_exposure": [(r"\bexposures?\b|\bexposed\b", 2), (r"\bconcentrat", 2), (r"\bbreak ?down\b|\bby sector\b|\bby tag\b|\ballocation\b|\bweights?\b", 1),
                      (r"\bhow much\b.*\b(in|to)\b", 1)],
    "expiring_options": [(r"\bexpir", 2), (r"\boptions?\b|\bcalls?\b|\bputs?\b|\bcontracts?\b", 1), (r"\bpin risk\b|\brolls?\b", 1)],
    "what_if_trade": [(r"\bwhat if\b|\bwhat happens if\b|\bwhat would happen\b|\bsimulate\b|\bimpact of\b", 2),
                      (r"\bbuy(ing)?\b|\bsell(ing)?\b|\bshort(ing)?\b", 1)],
    "reduce_exposure": [(r"\breduce\b|\bcut\b|\blower\b|\btrim\b|\bbring down\b|\bdecrease\b|\bshrink\b|\bscale back\b", 2),
                        (r"\bbelow\b|\bunder\b|\bat most\b|\bdown to\b", 1)],
    "hedge_risk": [(r"\bhedg", 2), (r"\bprotect\b|\bprotection\b|\binsurance\b|\bdownside\b|\boffset\b", 1)],
    "run_backtest": [(r"\bback-?test", 2), (r"\bhistorical(ly)? (performance|simulation)\b", 1)],
    "run_sweep": [(r"\bsweep\b|\bgrid search\b|\bparameter search\b|\boptimi[sz]e (the )?param", 2), (r"\btune\b|\btuning\b", 1)],
    "show_leaderboard": [(r"\bleaderboard\b|\bleader board\b", 2), (r"\bbest (models?|strateg)|\btop (\d+ )?(models?|strateg)|\branking\b|\brank\b", 2)],
    "generate_report": [(r"\breports?\b", 2), (r"\bpdf\b|\bsummary document\b", 1), (r"\btear ?sheet\b", 2), (r"\bgenerate\b|\bcreate\b|\bmake\b|\bprepare\b", 0.5)],
    "set_alert_rule": [(r"\balert\b|\balerts\b|\bnotify\b|\bwarn me\b|\blet me know\b|\bping me\b", 2),
                       (r"\bwhen\b|\bif\b|\babove\b|\bexceeds?\b|\bgoes over\b|\bover\b", 0.5)],
}
_CUES = {k: [(re.compile(p), w) for p, w in v] for k, v in CUES.items()}

#: Requests the platform does not carry out, and why.
REFUSALS = [
    (re.compile(r"\b(place|send|submit|route)\b.*\b(orders?|to (my |the )?broker)\b|\bexecute (the )?(trades?|orders?) (at|with|on) (the |my )?(broker|exchange|market)\b"),
     "Sigma models trades and exports trade lists; it does not send orders to a broker. Export the session's trade list (GET /modeling/sessions/{id}/export) for your broker."),
    (re.compile(r"\b(transfer|wire|withdraw|deposit)\b.*\b(money|funds|cash|\$)"),
     "Sigma does not move money between accounts."),
    (re.compile(r"\b(delete|drop|wipe|erase)\b.*\b(account|all (my )?(data|positions)|everything|database)\b"),
     "Deleting accounts or the whole book is not an agent action; an admin does it (DELETE /admin/users/{id})."),
    (re.compile(r"\b(guarantee|insider|pump)\b"),
     "Sigma gives figures about your book, not guarantees or non-public information."),
]

#: The UI elements and targets actions name (portfolio spec section 10).
TARGETS = {"analyze_risk": "risk_tab", "show_exposure": "portfolio_tab", "expiring_options": "positions_tab",
           "what_if_trade": "modeling_tab", "reduce_exposure": "modeling_tab", "hedge_risk": "modeling_tab",
           "run_backtest": "lab_tab", "run_sweep": "lab_tab", "show_leaderboard": "lab_tab",
           "generate_report": "reports_tab", "set_alert_rule": "portfolio_tab"}


@dataclasses.dataclass
class Entities:
    percentages: list[float] = dataclasses.field(default_factory=list)
    money: list[float] = dataclasses.field(default_factory=list)
    dates: list[str] = dataclasses.field(default_factory=list)
    timeframe: str | None = None
    days_ahead: int | None = None
    sectors: list[str] = dataclasses.field(default_factory=list)
    tags: list[str] = dataclasses.field(default_factory=list)
    tickers: list[str] = dataclasses.field(default_factory=list)
    unknown_tickers: list[str] = dataclasses.field(default_factory=list)
    trade: dict | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, [])}


@dataclasses.dataclass
class Interpretation:
    intent: str
    confidence: float
    parameters: dict
    actions: list[dict]
    entities: dict
    scores: dict
    question: str | None = None
    reason: str | None = None
    backend: str = "rules"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# -- entities --------------------------------------------------------------------------------

def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _add(seq: list, value) -> None:
    if value not in seq:
        seq.append(value)


def extract_entities(query: str, *, known_tickers: Iterable[str] = (), book_tickers: Iterable[str] = (),
                     tag_names: Iterable[str] = (), today: dt.date | None = None) -> Entities:
    """Every entity of the query (see the module docs for the forms read)."""
    today = today or dt.date.today()
    known = {t.upper() for t in known_tickers}
    book = {t.upper() for t in book_tickers}
    tags_lower = {t.lower(): t for t in tag_names}
    low = query.lower()
    ent = Entities()
    money_spans = []
    for m in _MONEY.finditer(query):
        amount = _number(m.group(1) or m.group(3)) * _SCALE.get((m.group(2) or m.group(4) or "").lower(), 1.0)
        _add(ent.money, amount)
        money_spans.append(m.span())
    for m in _PERCENT.finditer(query):
        _add(ent.percentages, round(_number(m.group(1)) / 100.0, 6))
    for m in _FRACTION_TARGET.finditer(query):
        _add(ent.percentages, round(float(m.group(1)), 6))
    for m in _ISO_DATE.finditer(query):
        try:
            _add(ent.dates, dt.date.fromisoformat(m.group(1)).isoformat())
        except ValueError:
            pass
    if re.search(r"\btoday\b|\bthis (morning|afternoon)\b|\b0dte\b", low):
        ent.timeframe, ent.days_ahead = "today", 0
    elif re.search(r"\btomorrow\b", low):
        ent.timeframe, ent.days_ahead = "tomorrow", 1
    elif re.search(r"\bthis week\b", low):
        ent.timeframe, ent.days_ahead = "this_week", max(0, 4 - today.weekday())
    elif re.search(r"\bnext week\b", low):
        ent.timeframe, ent.days_ahead = "next_week", 11 - today.weekday()
    elif re.search(r"\bthis month\b", low):
        ent.timeframe, ent.days_ahead = "this_month", 30
    m = _DAYS.search(query)
    if m:
        ent.timeframe, ent.days_ahead = "days", int(m.group(1))
    padded = f" {low} "
    found = []
    for alias in sorted(SECTOR_ALIASES, key=len, reverse=True):
        m = re.search(rf"(?<![a-z]){re.escape(alias)}(?![a-z])", padded)
        if m:
            found.append((m.start(), SECTOR_ALIASES[alias]))
            padded = padded[:m.start()] + " " * len(alias) + padded[m.end():]
    for _, sector in sorted(found):
        _add(ent.sectors, sector)
    for m in _TAG.finditer(query):
        name = m.group(1)
        # "#name" and "tagged name" always name a tag; "tag name" only one of the user's tags
        if m.group(0).startswith("#") or m.group(0).lower().startswith("tagged") or name.lower() in tags_lower:
            _add(ent.tags, tags_lower.get(name.lower(), name))
    for word in re.findall(r"[a-z0-9_\-]+", low):
        if word in tags_lower and word not in SECTOR_ALIASES:
            _add(ent.tags, tags_lower[word])
    # tickers: $SYM anywhere; an upper-case symbol in the universe or the book; a lower-case
    # word only when it is one of the book's tickers
    for m in re.finditer(r"\$([A-Za-z][A-Za-z.\-]{0,9})", query):
        sym = m.group(1).upper().rstrip(".")
        (_add(ent.tickers, sym) if sym in known or sym in book else _add(ent.unknown_tickers, sym))
    for m in _WORD.finditer(query):
        raw = m.group(0).rstrip(".-")
        if m.start() > 0 and query[m.start() - 1] == "$":
            continue
        sym = raw.upper()
        if sym in STOPWORDS or sym.lower() in tags_lower:
            continue
        if raw.isupper() and (sym in known or sym in book):
            _add(ent.tickers, sym)
        elif not raw.isupper() and sym in book and len(sym) >= 2 and sym.lower() not in SECTOR_ALIASES:
            _add(ent.tickers, sym)
    trade = _TRADE.search(query)
    if trade:
        side, qty, sym = trade.group(1).lower(), _number(trade.group(2)), trade.group(3).upper()
    else:
        rev = _TRADE_REV.search(query)
        side, qty, sym = (rev.group(1).lower(), _number(rev.group(3)), rev.group(2).upper()) if rev else (None, None, None)
    if side is not None and sym not in STOPWORDS and sym.lower() not in SECTOR_ALIASES:
        if sym in known or sym in book:
            _add(ent.tickers, sym)
            signed = qty if side in ("buy", "add") else -qty
            ent.trade = {"side": "buy" if signed > 0 else "sell", "ticker": sym, "quantity": signed}
        elif sym.isalpha() and trade is not None:
            _add(ent.unknown_tickers, sym)
    return ent


# -- scoring ---------------------------------------------------------------------------------

def score(query: str, ent: Entities) -> dict[str, float]:
    low = query.lower()
    for tag in ent.tags:  # a tag named "hedges" is not a request to hedge
        low = re.sub(rf"(?<![a-z0-9_\-]){re.escape(tag.lower())}(?![a-z0-9_\-])", " ", low)
    out = {}
    for intent, cues in _CUES.items():
        out[intent] = sum(w for pattern, w in cues if pattern.search(low))
    subject = bool(ent.sectors or ent.tags or ent.tickers)
    if subject and out["show_exposure"] > 0:
        out["show_exposure"] += 1
    if out["reduce_exposure"] >= 2 and (ent.percentages or ent.money):
        out["reduce_exposure"] += 1
    if out["reduce_exposure"] >= 2 and subject:
        out["reduce_exposure"] += 1
    if out["reduce_exposure"] >= 2:
        out["show_exposure"] = max(0.0, out["show_exposure"] - 2)  # "reduce my exposure" is not "show"
        out["analyze_risk"] = max(0.0, out["analyze_risk"] - 1)
    if ent.trade:
        out["what_if_trade"] += 2
    if out["hedge_risk"] >= 2:
        out["analyze_risk"] = max(0.0, out["analyze_risk"] - 1)
        out["show_exposure"] = max(0.0, out["show_exposure"] - 2)
    if out["set_alert_rule"] >= 2:
        out["show_exposure"] = max(0.0, out["show_exposure"] - 3)
        out["reduce_exposure"] = max(0.0, out["reduce_exposure"] - 1)
        out["analyze_risk"] = max(0.0, out["analyze_risk"] - 1)
        out["expiring_options"] = max(0.0, out["expiring_options"] - 1)
    if out["expiring_options"] >= 2:
        out["analyze_risk"] = max(0.0, out["analyze_risk"] - 1)
    if out["generate_report"] >= 2:
        for other in ("analyze_risk", "show_exposure", "run_backtest", "run_sweep"):
            out[other] = max(0.0, out[other] - 2)
    if out["run_sweep"] >= 2:
        out["run_backtest"] = max(0.0, out["run_backtest"] - 1)
    return out


def confidence_of(scores: dict[str, float]) -> tuple[str | None, float]:
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], INTENTS.index(kv[0])))
    top_intent, top = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    if top <= 0:
        return None, 0.0
    return top_intent, round((1 - math.exp(-top / 2)) * (1 - 0.5 * second / top), 2)


# -- parameters, actions ---------------------------------------------------------------------

def _snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _subject(ent: Entities) -> dict:
    if ent.sectors:
        return {"sector": ent.sectors[0]}
    if ent.tags:
        return {"tag": ent.tags[0]}
    if ent.tickers:
        return {"ticker": ent.tickers[0]}
    return {}


#: built-in strategy names as people say them (compute.strategies.STRATEGIES)
STRATEGY_WORDS = (("zscore", r"\bz-?\s?score|mean[- ]reversion"), ("ma_cross", r"moving[- ]average|\bma[- ]cross|\bsma cross|golden cross"),
                  ("rsi", r"\brsi\b"), ("bollinger", r"bollinger"), ("donchian", r"donchian|channel breakout"))


def _lab_parameters(query: str, low: str, ent: Entities) -> dict:
    """A backtest or sweep: the model by id (``model mdl_x``) or by ticker (the caller's newest
    model on it, resolved by ``/ai/execute``), and a built-in strategy when one is named."""
    params: dict[str, Any] = {}
    m = re.search(r"\bmodel\s+([A-Za-z0-9_\-]+)", query)
    if m:
        params["model_id"] = m.group(1)
    elif ent.tickers:
        params["ticker"] = ent.tickers[0]
    for name, pattern in STRATEGY_WORDS:
        if re.search(pattern, low):
            params["strategy"] = name
            break
    return params


def parameters_for(intent: str, query: str, ent: Entities) -> tuple[dict, str | None]:
    """(parameters, clarifying question or None when complete)."""
    low = query.lower()
    if intent == "analyze_risk":
        focus = "var" if re.search(r"\bvar\b|value at risk", low) else "greeks" if re.search(r"greeks|gamma|delta|vega", low) \
            else "stress" if re.search(r"stress|scenario|crash", low) else "immediate_risks"
        return {"focus": focus, "timeframe": ent.timeframe or "today"}, None
    if intent == "show_exposure":
        params: dict[str, Any] = {"group_by": "tag" if (ent.tags or "by tag" in low) else "sector"}
        params.update(_subject(ent))
        params["measure"] = "delta" if "delta" in low else "notional"
        return params, None
    if intent == "expiring_options":
        days = ent.days_ahead if ent.days_ahead is not None else 5 if not ent.dates else None
        params = {"timeframe": ent.timeframe or ("date" if ent.dates else "days"), "days_ahead": days}
        if ent.dates:
            params["date"] = ent.dates[0]
        if ent.tickers:
            params["ticker"] = ent.tickers[0]
        return params, None
    if intent == "what_if_trade":
        if ent.unknown_tickers:
            return {}, f"I don't know the ticker {ent.unknown_tickers[0]}. Which listed ticker do you mean?"
        if not ent.trade:
            if ent.tickers:
                return {"ticker": ent.tickers[0]}, f"How many {ent.tickers[0]} shares, and buy or sell?"
            return {}, "Which trade should I model? For example: 'what if I buy 100 AAPL'."
        return {"ticker": ent.trade["ticker"], "quantity": ent.trade["quantity"], "side": ent.trade["side"]}, None
    if intent == "reduce_exposure":
        subject = _subject(ent)
        if ent.unknown_tickers and not subject:
            return {}, f"I don't know the ticker {ent.unknown_tickers[0]}. Which sector, tag or ticker should I reduce?"
        method = "largest_first" if re.search(r"largest|biggest first", low) else "proportional"
        params = {**subject, "method": method}
        if ent.percentages:
            params["target_exposure"] = ent.percentages[0]
        elif ent.money:
            params["target_notional"] = ent.money[0]
        if not subject:
            return params, "Which sector, tag or ticker should I reduce the exposure of?"
        if "target_exposure" not in params and "target_notional" not in params:
            what = subject.get("sector") or subject.get("tag") or subject.get("ticker")
            return params, f"To what level should I reduce {what}? Give a share of the portfolio (e.g. 15 %) or an amount."
        if params.get("target_exposure") is not None and not 0 <= params["target_exposure"] < 1:
            return params, "The target must be a share of the portfolio between 0 % and 100 %."
        return params, None
    if intent == "hedge_risk":
        if ent.sectors:
            risk = "sector_" + _snake(ent.sectors[0])
        elif re.search(r"\bgamma\b", low):
            risk = "gamma"
        elif re.search(r"\bvega\b|\bvol(atility)?\b", low):
            risk = "vega"
        elif re.search(r"\bdelta\b", low):
            risk = "delta"
        elif re.search(r"\brates?\b|\binterest\b", low):
            risk = "interest_rate"
        else:
            risk = "market_beta"
        params = {"risk": risk, "instruments": ["etfs"] if re.search(r"\betfs?\b", low) and not re.search(r"option", low)
                  else ["options", "etfs"]}
        if ent.money:
            params["budget"] = ent.money[0]
        return params, None
    if intent in ("run_backtest", "run_sweep"):
        return _lab_parameters(query, low, ent), None
    if intent == "show_leaderboard":
        metric = "sharpe" if "sharpe" in low else "sortino" if "sortino" in low else "return" if "return" in low else "sharpe"
        m = re.search(r"\btop\s+(\d{1,3})\b", low)
        return {"metric": metric, "limit": int(m.group(1)) if m else 10}, None
    if intent == "generate_report":
        kind = "backtest_tearsheet" if re.search(r"tear ?sheet|backtest", low) else "sweep_report" if "sweep" in low \
            else "portfolio_overview" if re.search(r"overview|portfolio report|holdings", low) else "risk_summary"
        fmt = "html" if re.search(r"\bhtml\b|\bweb\b", low) else "pdf"
        return {"type": kind, "format": fmt}, None
    if intent == "set_alert_rule":
        subject = _subject(ent)
        op = "less_than" if re.search(r"\bbelow\b|\bunder\b|\bless than\b|\bdrops?\b|\bfalls?\b", low) else "greater_than"
        if "sector" in subject:
            metric = "sector_exposure"
        elif "tag" in subject:
            metric = "tag_exposure"
        elif "ticker" in subject:
            metric = "position_weight"
        elif re.search(r"\bgross\b|\bleverage\b", low):
            metric = "gross_exposure"
        elif re.search(r"\bnet\b", low):
            metric = "net_exposure"
        else:
            metric = None
        params = {**subject, "metric": metric, "operator": op}
        if ent.percentages:
            params["threshold"] = ent.percentages[0]
        if metric is None:
            return params, "What should the alert watch: a sector's, tag's or ticker's exposure, or gross/net exposure?"
        if "threshold" not in params:
            return params, "At what level should the alert trigger? Give a share of the portfolio, e.g. 20 %."
        return params, None
    raise ValueError(f"unknown intent {intent!r}")


def ui_actions(intent: str, params: dict) -> list[dict]:
    """The UI actions of an intent, each the body of the ``/ui/*`` route it names (spec 10), so a
    dashboard (or an agent) can replay them: ``{"type", "route", "body"}``. Targets, presets,
    sorts, element ids and styles are the dashboard's (``services.ui_sync``)."""
    target = TARGETS[intent]
    nav = {"target": target, "params": {}, "ai_context": {"reason": intent}}
    actions = [{"type": "navigate_ui", "route": "/ui/navigate", "body": nav}]
    if intent == "expiring_options":
        preset = "expiring_today" if params.get("days_ahead") == 0 else "expiring_this_week"
        nav["params"] = {"filter": preset, "sort": "gamma_risk_desc"}
        actions.append({"type": "apply_filter", "route": "/ui/apply-filter",
                        "body": {"view": "positions", "filter": {"preset": preset, "sort": {"field": "gamma_risk", "order": "desc"}},
                                 "highlight_reason": "expiration_risk"}})
        actions.append({"type": "highlight_elements", "route": "/ui/highlight",
                        "body": {"elements": [{"id": "gamma_metric", "style": "warning", "pulse": True},
                                              {"id": "alerts_panel", "style": "critical", "reason": "expiring"}]}})
    elif intent == "analyze_risk":
        actions.append({"type": "highlight_elements", "route": "/ui/highlight",
                        "body": {"elements": [{"id": "gamma_metric", "style": "warning", "pulse": True},
                                              {"id": "var_panel", "style": "warning"},
                                              {"id": "alerts_panel", "style": "critical"}]}})
    elif intent == "show_exposure":
        nav["params"] = {"group_by": params.get("group_by", "sector")}
        if params.get("tag"):
            actions.append({"type": "apply_filter", "route": "/ui/apply-filter",
                            "body": {"view": "positions", "filter": {"preset": f"tag:{params['tag']}",
                                                                     "sort": {"field": "value", "order": "desc"}},
                                     "highlight_reason": f"tag {params['tag']}"}})
        elif params.get("sector"):
            actions.append({"type": "highlight_elements", "route": "/ui/highlight",
                            "body": {"elements": [{"id": "exposures_panel", "style": "info",
                                                   "reason": f"sector {params['sector']}"}]}})
    elif intent == "reduce_exposure" and params.get("sector"):
        actions.append({"type": "highlight_elements", "route": "/ui/highlight",
                        "body": {"elements": [{"id": "exposures_panel", "style": "warning",
                                               "reason": f"reduce {params['sector']} exposure", "pulse": True}]}})
    elif intent == "show_leaderboard":
        nav["params"] = {"section": "leaderboard", "sort": f"{params.get('metric', 'sharpe')}_desc"}
    elif intent in ("run_backtest", "run_sweep"):
        nav["params"] = {"section": "backtests" if intent == "run_backtest" else "sweeps"}
    return actions


# -- the parser ------------------------------------------------------------------------------

#: ``ranker(query, candidates) -> intent | None``: an optional model that picks among intents.
Ranker = Callable[[str, list[str]], "str | None"]


def interpret(query: str, *, known_tickers: Iterable[str] = (), book_tickers: Iterable[str] = (),
              tag_names: Iterable[str] = (), today: dt.date | None = None, threshold: float = CONFIDENCE_THRESHOLD,
              ranker: Ranker | None = None) -> Interpretation:
    """The interpretation of one query (module docs). ``ranker`` (the optional LLM backend) may
    choose the intent; its answer is used only when it names a platform intent, and any error
    it raises leaves the deterministic result in place (``backend`` says which decided)."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError("query: must be a non-empty string")
    text = " ".join(query.split())[:2000]
    ent = extract_entities(text, known_tickers=known_tickers, book_tickers=book_tickers, tag_names=tag_names, today=today)
    low = text.lower()
    for pattern, reason in REFUSALS:
        if pattern.search(low):
            return Interpretation("unsupported", 1.0, {}, [], ent.as_dict(), {}, reason=reason)
    scores = score(text, ent)
    intent, confidence = confidence_of(scores)
    backend = "rules"
    if ranker is not None:
        candidates = [k for k, v in sorted(scores.items(), key=lambda kv: -kv[1])]
        try:
            choice = ranker(text, candidates)
        except Exception:  # noqa: BLE001 - the deterministic parser is the fallback
            choice = None
        if choice in INTENTS:
            backend = "llm"
            if choice != intent:
                intent, confidence = choice, max(threshold, round(confidence, 2))
            else:
                confidence = max(confidence, threshold)
    shown = {k: v for k, v in scores.items() if v > 0}
    if intent is None or confidence < threshold:
        options = sorted(shown, key=lambda k: -shown[k])[:3]
        question = ("Did you mean: " + ", ".join(o.replace("_", " ") for o in options) + "?") if options else \
            "I can analyse risk, show exposure, list expiring options, model a trade, reduce exposure, hedge, run a " \
            "backtest or sweep, show the leaderboard, generate a report or set an alert. What would you like?"
        return Interpretation("clarify", confidence, {"candidates": options}, [], ent.as_dict(), shown, question=question,
                              backend=backend)
    params, question = parameters_for(intent, text, ent)
    if question:
        return Interpretation("clarify", confidence, {"candidate": intent, **params}, [], ent.as_dict(), shown,
                              question=question, backend=backend)
    return Interpretation(intent, confidence, params, ui_actions(intent, params), ent.as_dict(), shown, backend=backend)
