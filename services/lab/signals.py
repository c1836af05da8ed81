"""Live signals: a trained model's call on the latest complete bar (Lab spec "Signals API",
docs/spec/reference.md "Live signals").

``generate_signal`` scores the newest bar of the model's ticker with the weights of its latest
completed training, on features built exactly as the training matrix's were (the same
``compute.features`` code over the market-data provider's bars, with warm-up history):

- **Direction and confidence.** The score is the model's P(up) (``TrainedModel.score``). BUY when
  it is at or above the entry threshold (the model's ``config.thresholds.entry``, default 0.60),
  SELL when it is at or below 1 - entry; confidence = max(score, 1 - score), and no signal under
  ``CONFIDENCE_MIN`` (0.60). Options packs BUY a call for up and a put for down; the contract is
  the chain's same-day (else nearest) expiry nearest |delta| 0.35, ties to the lower IV, among
  contracts with open interest of at least ``MIN_OPEN_INTEREST`` (``details.option``).
- **Order.** Entry at the next bar's open (the next session's open for daily packs); reference
  ``price`` = the scored bar's close. Bracket: stop = price -/+ 1.2 x ATR14, target = price +/-
  2.0 x ATR14 (Wilder, on the same bars; floored at 0.05 % of price); time stop 120 minutes
  after entry (``expires_at``). ``quantity``: shares risking ``RISK_PER_TRADE`` of the
  capital at the stop (capped at the capital's worth of shares); options: contracts whose
  premium is that risk budget. The capital is ``CAPITAL`` (100,000) for ``POST
  /signals/generate``; scheduled signals (``services.lab.subscriptions``) use the user's
  portfolio value when they have one (``details.capital``, ``details.capital_source``).
- **Expected return** (fraction of price, in the signal's direction): confidence x target
  distance - (1 - confidence) x stop distance, the bracket's expectancy at the model's odds.

One signal per model and bar: generating again for the same bar returns the stored signal.
Statuses (the spec's): ``active``; ``filled`` once the time stop has passed and the trade is
settled on the provider's 1-minute bars (``settle_outcome``: entry at the entry bar's open, exit
at the stop or the target when a bar reaches it -- the stop first when one bar spans both,
at the bar's open when it gaps through -- else at the last close before the time stop;
``realized_return`` is the underlying's move in the signal's direction, options signals
included); ``cancelled`` by the owner. ``signals_leaderboard`` ranks models by these outcomes.
A new signal is announced with the ``signal.generated`` webhook event. The model may be a
built-in trainer's or your own estimator's (``compute.estimators``): both score the same way.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Optional

import numpy as np
import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from cluster.artifacts import ArtifactStore
from cluster.catalog import Catalog, Signal
from cluster.catalog.models import utcnow
from services.lab import common, events, models
from services.lab.training import latest_training, load_weights
from services.lab.common import LabInputError
from compute import packs as packs_mod
from compute.jsonsafe import json_safe

CONFIDENCE_MIN = 0.60
STOP_ATR = 1.2
TARGET_ATR = 2.0
ATR_WINDOW = 14
ATR_FLOOR = 0.0005  # of price
TIME_STOP_MINUTES = 120
CAPITAL = 100_000.0
RISK_PER_TRADE = 0.01  # of capital, lost if the stop is hit
TARGET_DELTA = 0.35
MIN_OPEN_INTEREST = 100
#: Calendar days of bars fetched before the scored bar (the features' own warm-up is added).
LOOKBACK_DAYS = {"daily": 30, "hourly": 10}
STATUSES = ("active", "filled", "cancelled")
#: Live Sharpe: mean / sd of per-signal returns, annualised as one signal per session.
SIGNALS_PER_YEAR = 252.0


def _next_entry(bar_time: pd.Timestamp, cadence: str) -> pd.Timestamp:
    """Open of the bar after ``bar_time`` (UTC): the next session's open for daily bars, the
    next hourly bar within the session, else the next session's open."""
    from compute.marketdata import calendar

    local_day = bar_time.tz_convert("America/New_York").date()
    if cadence != "daily":
        nxt = bar_time + pd.Timedelta(hours=1)
        if nxt < calendar.session_close(local_day):
            return nxt
    following = calendar.next_sessions(local_day + dt.timedelta(days=1), 1)
    if len(following) == 0:
        raise LabInputError("as_of", "no exchange session follows the scored bar in the calendar")
    return calendar.session_open(following[0])


def _option_overlay(provider, ticker: str, direction: int, when: pd.Timestamp, budget: float) -> dict:
    from compute.backtest import select_contract

    try:
        chain = provider.option_chain(ticker, as_of=when)
    except Exception as exc:  # noqa: BLE001 - the equity part of the signal stands without it
        return {"error": f"no option chain: {exc}"}
    right = "call" if direction > 0 else "put"
    chain = chain[(chain["right"].str.lower().str.startswith(right[0])) & (chain["open_interest"] >= MIN_OPEN_INTEREST)]
    if chain.empty:
        return {"error": f"no {right} with open interest >= {MIN_OPEN_INTEREST}"}
    expiries = pd.to_datetime(chain["expiry"])
    nearest = expiries.min()
    chain = chain[expiries == nearest]
    pick = chain.iloc[select_contract(chain["delta"].abs().to_numpy(), chain["iv"].to_numpy(), TARGET_DELTA)]
    premium = float(pick["ask"] if np.isfinite(pick["ask"]) and pick["ask"] > 0 else pick["mid"])
    contracts = int(budget // (premium * 100.0)) if premium > 0 else 0
    return {"symbol": str(pick["symbol"]), "type": right, "expiry": str(pd.Timestamp(pick["expiry"]).date()),
            "strike": float(pick["strike"]), "delta": float(pick["delta"]), "iv": float(pick["iv"]),
            "premium": premium, "open_interest": int(pick["open_interest"]), "contracts": contracts}


def generate_signal(catalog: Catalog, store: ArtifactStore, provider, user_id: int, model_id: str,
                    as_of=None, *, at=None, capital: Optional[float] = None, capital_source: str = "default",
                    allowed_modules=None) -> tuple[Optional[dict], bool, dict]:
    """Score the model's newest complete bar (on or before ``as_of``, default today; or, with
    ``at``, the newest bar that has closed by that instant: the scheduler's bar close).

    ``capital`` sizes the order (default ``CAPITAL``; the scheduler passes the user's portfolio
    value, ``capital_source`` saying where it came from). Returns ``(signal view or None,
    created, decision)``; ``decision`` explains the call (score, thresholds, reason when there
    is no signal). ``LookupError`` for a model that is not the user's; ``LabInputError`` naming
    the field for what the model cannot do yet (no training, weights of other library versions).
    """
    from compute.features import build_matrix_from_provider
    from compute.indicators import atr

    model = models.get_model(catalog, user_id, model_id)
    pack = packs_mod.get_pack(model.pack_id)
    training = latest_training(catalog, model.id)
    if training is None:
        raise LabInputError("model_id", f"{model_id} has no completed training; POST /train first")
    today = dt.datetime.now(dt.timezone.utc).date()
    if at is not None:
        at = _utc(at)
        end = at.tz_convert("America/New_York").date()
    else:
        end = common.parse_date(as_of, "as_of") if as_of is not None else today
    if end > today:
        raise LabInputError("as_of", "must not be in the future")
    weights = load_weights(store, training, allowed_modules)
    names = list((model.config or {}).get("indicators") or pack.default_features)
    ticker = str((model.config or {}).get("ticker") or pack.default_ticker)
    start = end - dt.timedelta(days=LOOKBACK_DAYS[pack.cadence])
    try:
        frame, _ = build_matrix_from_provider(provider, pack, [ticker], start, end, names)
    except ValueError as exc:
        raise LabInputError("model_id", f"cannot build {model_id}'s features: {exc}") from None
    missing = [c for c in weights.feature_names if c not in frame.columns]
    if missing:
        raise LabInputError("model_id", f"features {missing} of the training are not in the model's config; retrain")
    frame = frame.dropna(subset=list(weights.feature_names))
    if at is not None and not frame.empty:  # only bars that have closed by ``at``
        from compute.marketdata import calendar

        closed = np.array([calendar.bar_close(t, pack.cadence) <= at for t in frame["timestamp"]], dtype=bool)
        frame = frame[closed]
    if frame.empty:
        raise LabInputError("as_of", f"no {pack.cadence} bar with complete features up to {end}")
    last = frame.iloc[-1]
    bar_time = pd.Timestamp(last["timestamp"])
    bar_time = bar_time.tz_localize("UTC") if bar_time.tzinfo is None else bar_time.tz_convert("UTC")
    score = float(weights.score(frame[list(weights.feature_names)].iloc[[-1]])[0])
    entry_threshold = float(((model.config or {}).get("thresholds") or {}).get("entry", CONFIDENCE_MIN))
    confidence = max(score, 1.0 - score)
    decision: dict[str, Any] = {"model_id": model.model_id, "ticker": ticker, "bar_time": bar_time.isoformat(),
                                "score": score, "confidence": confidence, "entry_threshold": entry_threshold,
                                "confidence_min": CONFIDENCE_MIN, "training_id": training.id}
    if at is not None:
        from compute.marketdata import calendar

        if calendar.bar_close(bar_time, pack.cadence) < at:  # the provider lags: no bar closing at ``at`` yet
            decision["reason"] = f"the market data has no bar closing at {at.isoformat()} yet (newest: {bar_time.isoformat()})"
            decision["waiting_for_bar"] = at.isoformat()
            return None, False, decision
    direction = 1 if score >= entry_threshold else -1 if score <= 1.0 - entry_threshold else 0
    if direction == 0:
        decision["reason"] = f"score {score:.4f} is between {1 - entry_threshold:.2f} and the entry threshold {entry_threshold:.2f}"
        return None, False, decision
    if confidence < CONFIDENCE_MIN:
        decision["reason"] = f"confidence {confidence:.4f} is below {CONFIDENCE_MIN:.2f}"
        return None, False, decision
    entry_at = _next_entry(bar_time, pack.cadence)
    allowed = (model.config or {}).get("allowed_hours")
    if allowed and pack.cadence != "daily" and entry_at.tz_convert("America/New_York").hour not in allowed:
        decision["reason"] = f"the entry bar's hour {entry_at.tz_convert('America/New_York').hour} is not in allowed_hours {allowed}"
        return None, False, decision

    existing = _stored(catalog, model.id, bar_time)
    if existing is not None:
        return signal_view(existing), False, decision

    # the bracket, on the bars the features were built from
    bars = (provider.intraday_bars(ticker, start - dt.timedelta(days=LOOKBACK_DAYS[pack.cadence]), end, freq="1h")
            if pack.cadence == "hourly" else
            provider.daily_bars(ticker, start - dt.timedelta(days=3 * LOOKBACK_DAYS[pack.cadence]), end))
    stamps = pd.DatetimeIndex(bars.index)
    stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
    bars = bars[stamps <= bar_time]
    price = float(last["close"])
    atr_now = float(np.asarray(atr(bars["high"], bars["low"], bars["close"], ATR_WINDOW))[-1]) if len(bars) else math.nan
    atr_used = max(atr_now if math.isfinite(atr_now) else 0.0, ATR_FLOOR * price)
    stop = price - direction * STOP_ATR * atr_used
    target = price + direction * TARGET_ATR * atr_used
    expected = confidence * TARGET_ATR * atr_used / price - (1.0 - confidence) * STOP_ATR * atr_used / price
    capital = CAPITAL if capital is None else float(capital)
    budget = capital * RISK_PER_TRADE
    details: dict[str, Any] = {"atr": atr_now, "atr_used": atr_used, "entry_threshold": entry_threshold,
                               "time_stop_minutes": TIME_STOP_MINUTES, "risk_budget": budget,
                               "capital": capital, "capital_source": capital_source,
                               "features": {c: float(last[c]) for c in weights.feature_names}}
    if pack.instrument == "options":
        details["option"] = _option_overlay(provider, ticker, direction, bar_time, budget)
        action = "BUY"
        quantity = float(details["option"].get("contracts", 0))
    else:
        action = "BUY" if direction > 0 else "SELL"
        quantity = float(min(math.floor(budget / (STOP_ATR * atr_used)), math.floor(capital / price)))
    row = Signal(user_id=user_id, model_pk=model.id, model_id=model.model_id, pack_id=model.pack_id,
                 training_id=training.id, ticker=ticker, action=action, quantity=quantity, price=price,
                 bar_time=bar_time.to_pydatetime(), entry_at=entry_at.to_pydatetime(),
                 expires_at=(entry_at + pd.Timedelta(minutes=TIME_STOP_MINUTES)).to_pydatetime(),
                 status="active", score=score, confidence=confidence, expected_return=expected, stop=stop,
                 target=target, details=json_safe({"direction": "long" if direction > 0 else "short",
                                                            **details}))
    try:
        with catalog.session() as s:
            s.add(row)
            s.flush()
            view = signal_view(row)
    except IntegrityError:  # the same bar raced us: the other request stored it
        return signal_view(_stored(catalog, model.id, bar_time)), False, decision
    events.emit_event(catalog, user_id, "signal.generated", view)
    return view, True, decision


def _stored(catalog: Catalog, model_pk: int, bar_time: pd.Timestamp) -> Optional[Signal]:
    with catalog.session() as s:
        return s.scalar(select(Signal).where(Signal.model_pk == model_pk, Signal.bar_time == bar_time.to_pydatetime()))


def settle_outcome(bars: pd.DataFrame, direction: int, stop: float, target: float) -> Optional[dict]:
    """The bracket's outcome on bars from the entry bar to the time stop (open/high/low/close,
    time-indexed): ``{entry_price, exit_price, exit_at, exit_reason, realized_return}``, or None
    without bars. The stop is checked first within a bar (the conservative reading of a bar
    that spans both); a bar opening beyond a level exits at its open."""
    if bars is None or len(bars) == 0:
        return None
    entry = float(bars["open"].iloc[0])
    exit_price, exit_at, reason = float(bars["close"].iloc[-1]), bars.index[-1], "time"
    for when, o, hi, lo in zip(bars.index, bars["open"].to_numpy(), bars["high"].to_numpy(), bars["low"].to_numpy()):
        if direction > 0 and lo <= stop:
            exit_price, exit_at, reason = min(float(o), stop), when, "stop"
            break
        if direction < 0 and hi >= stop:
            exit_price, exit_at, reason = max(float(o), stop), when, "stop"
            break
        if direction > 0 and hi >= target:
            exit_price, exit_at, reason = max(float(o), target), when, "target"
            break
        if direction < 0 and lo <= target:
            exit_price, exit_at, reason = min(float(o), target), when, "target"
            break
    return {"entry_price": entry, "exit_price": exit_price, "exit_at": pd.Timestamp(exit_at),
            "exit_reason": reason, "realized_return": direction * (exit_price / entry - 1.0)}


def _settle(catalog: Catalog, provider, user_id: int) -> None:
    """Settle the user's active signals whose time stop has passed (once market data covers it)."""
    with catalog.session() as s:
        due = s.scalars(select(Signal).where(Signal.user_id == user_id, Signal.status == "active",
                                             Signal.expires_at <= utcnow())).all()
    for row in due:
        entry_at, expires_at = pd.Timestamp(row.entry_at), pd.Timestamp(row.expires_at)
        try:
            bars = provider.intraday_bars(row.ticker, entry_at.tz_convert("America/New_York").date(),
                                          expires_at.tz_convert("America/New_York").date(), freq="1min")
        except Exception:  # noqa: BLE001 - no data yet: it stays active and is settled later
            continue
        stamps = pd.DatetimeIndex(bars.index)
        stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
        bars = bars.set_axis(stamps)[(stamps >= entry_at) & (stamps < expires_at)]
        direction = 1 if (row.details or {}).get("direction", "long") == "long" else -1
        outcome = settle_outcome(bars, direction, row.stop, row.target)
        if outcome is None:
            continue
        with catalog.session() as s:
            s.execute(update(Signal).where(Signal.id == row.id, Signal.status == "active").values(
                status="filled", exit_price=outcome["exit_price"], exit_at=outcome["exit_at"].to_pydatetime(),
                exit_reason=outcome["exit_reason"], realized_return=outcome["realized_return"],
                details={**(row.details or {}), "entry_price": outcome["entry_price"]}))


def settle_due(catalog: Catalog, provider, user_id: int) -> None:
    """Settle the user's active signals whose time stop has passed (the scheduler's step)."""
    _settle(catalog, provider, user_id)


def signal_view(row: Signal) -> dict:
    def iso(value):
        return value.isoformat() if value is not None else None

    return {"signal_id": row.id, "model_id": row.model_id, "pack_id": row.pack_id, "ticker": row.ticker,
            "action": row.action, "quantity": row.quantity, "price": row.price, "timestamp": iso(row.bar_time),
            "entry_at": iso(row.entry_at), "expires_at": iso(row.expires_at), "status": row.status,
            "confidence": row.confidence, "score": row.score, "expected_return": row.expected_return,
            "stop": row.stop, "target": row.target, "training_id": row.training_id, "details": row.details,
            "exit_price": row.exit_price, "exit_at": iso(row.exit_at), "exit_reason": row.exit_reason,
            "realized_return": row.realized_return, "created_at": iso(row.created_at)}


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def list_signals(catalog: Catalog, provider, user_id: int, *, model_id: Optional[str] = None,
                 status: Optional[str] = None, start=None, end=None, limit: int = 50, offset: int = 0) -> dict:
    """The user's signals, newest bar first; ``start``/``end`` bound the scored bar's time."""
    if status is not None and status not in STATUSES:
        raise LabInputError("status", f"must be one of {list(STATUSES)}")
    _settle(catalog, provider, user_id)
    query = select(Signal).where(Signal.user_id == user_id)
    if model_id is not None:
        query = query.where(Signal.model_id == model_id)
    if status is not None:
        query = query.where(Signal.status == status)
    if start is not None:
        query = query.where(Signal.bar_time >= _utc(start).to_pydatetime())
    if end is not None:
        query = query.where(Signal.bar_time <= _utc(end).to_pydatetime())
    with catalog.session() as s:
        total = int(s.scalar(select(func.count()).select_from(query.subquery())) or 0)
        rows = s.scalars(query.order_by(Signal.bar_time.desc(), Signal.id).limit(limit).offset(offset)).all()
    return {"items": [signal_view(r) for r in rows], "total": total, "limit": limit, "offset": offset}


def _owned_signal(s, user_id: int, signal_id: str) -> Signal:
    row = s.scalar(select(Signal).where(Signal.id == signal_id, Signal.user_id == user_id))
    if row is None:
        raise LookupError(f"signal {signal_id} not found")
    return row


def get_signal(catalog: Catalog, provider, user_id: int, signal_id: str) -> dict:
    _settle(catalog, provider, user_id)
    with catalog.session() as s:
        return signal_view(_owned_signal(s, user_id, signal_id))


def cancel_signal(catalog: Catalog, provider, user_id: int, signal_id: str) -> dict:
    """Cancel an active signal; ``ValueError`` when it is no longer active."""
    _settle(catalog, provider, user_id)
    with catalog.session() as s:
        row = _owned_signal(s, user_id, signal_id)
        if row.status != "active":
            raise ValueError(f"signal {signal_id} is {row.status}")
        row.status = "cancelled"
        s.flush()
        return signal_view(row)


def active_signals(catalog: Catalog, user_id: int, pack_id: str) -> int:
    """Active signals of the user's models in the pack whose time stop is still ahead (the pack
    health figure)."""
    with catalog.session() as s:
        return int(s.scalar(select(func.count()).select_from(Signal).where(
            Signal.user_id == user_id, Signal.pack_id == pack_id, Signal.status == "active",
            Signal.expires_at > utcnow())) or 0)


def signals_leaderboard(catalog: Catalog, provider, user_id: int, *, pack_id: Optional[str] = None,
                        risk_profile: Optional[str] = None, start: Optional[dt.date] = None,
                        end: Optional[dt.date] = None) -> dict:
    """The user's models ranked by their settled signals' live record (Lab spec "Signals
    leaderboard"): ``total_signals`` (every signal whose bar is in the period), ``filled``,
    ``success_rate`` (share of filled signals with a positive return), ``avg_return`` and
    ``sharpe_live`` (mean / sd of per-signal returns x sqrt(252), at least 2 filled)."""
    from cluster.catalog import LabModel

    if pack_id is not None:
        try:
            packs_mod.get_pack(pack_id)
        except ValueError as exc:
            raise LabInputError("pack", str(exc)) from None
    _settle(catalog, provider, user_id)
    query = select(Signal, LabModel.risk_profile).join(LabModel, LabModel.id == Signal.model_pk).where(
        Signal.user_id == user_id)
    if pack_id is not None:
        query = query.where(Signal.pack_id == pack_id)
    if risk_profile is not None:
        query = query.where(LabModel.risk_profile == risk_profile)
    if start is not None and end is not None and start > end:
        raise LabInputError("end", "must not be before start")
    if start is not None:  # dates, inclusive: bars from start's midnight to the end of end (UTC)
        query = query.where(Signal.bar_time >= _utc(start).to_pydatetime())
    if end is not None:
        query = query.where(Signal.bar_time < (_utc(end) + pd.Timedelta(days=1)).to_pydatetime())
    with catalog.session() as s:
        rows = s.execute(query).all()
    by_model: dict[str, list] = {}
    for row, profile in rows:
        by_model.setdefault(row.model_id, []).append((row, profile))
    items = []
    for model_id, group in by_model.items():
        returns = np.array([r.realized_return for r, _ in group if r.status == "filled" and r.realized_return is not None])
        sd = float(returns.std(ddof=1)) if returns.size >= 2 else math.nan
        items.append({
            "model_id": model_id, "pack_id": group[0][0].pack_id, "risk_profile": group[0][1],
            "metrics": {"total_signals": len(group), "filled": int(returns.size),
                        "success_rate": float((returns > 0).mean()) if returns.size else None,
                        "avg_return": float(returns.mean()) if returns.size else None,
                        "sharpe_live": float(returns.mean() / sd * math.sqrt(SIGNALS_PER_YEAR))
                        if returns.size >= 2 and sd > 0 else None},
            "period": {"start": min(r.bar_time for r, _ in group).isoformat(),
                       "end": max(r.bar_time for r, _ in group).isoformat()},
        })
    items.sort(key=lambda i: (i["metrics"]["sharpe_live"] is None, -(i["metrics"]["sharpe_live"] or 0.0), i["model_id"]))
    return {"items": items}

