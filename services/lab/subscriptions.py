"""Live signals on a schedule: subscribed models scored at each bar close of their cadence.

``POST /signals/subscriptions`` subscribes one of the user's trained models (one subscription
per model). The platform scheduler (``services.risk.batch.PERIODIC_TASKS``, every minute)
calls :func:`scheduled_tick`; :func:`run_due` then, for each active subscription:

1. lists the bar closes of the model's pack cadence between the subscription's
   ``checked_until`` and now on the NYSE calendar (``compute.marketdata.calendar.bar_closes``:
   daily bars close at the session's close, 13:00 ET on half days; hourly bars every hour from
   the open and at the close). No close, no work: nothing happens on weekends and holidays or
   before a bar has closed;
2. claims them by moving ``checked_until`` to now in one conditional update (a second
   scheduler, or a tick that raced this one, finds nothing left to claim);
3. settles the user's open signals whose time stop has passed (``signals.settle_due``);
4. scores the newest closed bar only (``signals.generate_signal`` with ``at`` = that close):
   after downtime the missed closes are counted (``last_result.skipped_closes``), not
   replayed, since their entry times have passed. A signal is stored once per model and bar
   (the signals table's unique key), so no path generates one twice; a new one fires the
   ``signal.generated`` webhook event. When the market data has no bar closing then yet (a
   lagging feed), nothing is scored (an older bar is never signalled late) and the close is
   tried again at the next tick, for up to ``LAG_GRACE`` after it (``last_status`` waiting;
   then no_bar);
5. sizes the order from the user's portfolio value (the subscription's ``portfolio_id``, else
   the user's default portfolio) priced at the bar close, when there is one with a positive
   value; else from the fixed ``signals.CAPITAL`` (100,000).

The outcome of the latest run stays on the subscription (``last_status``: generated,
no_signal, existing, waiting, no_bar or failed; ``last_result``: the decision or the error).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Optional, Sequence

import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from cluster.artifacts import ArtifactStore
from cluster.catalog import Catalog, Portfolio, SignalSubscription
from cluster.catalog.models import utcnow
from compute import packs as packs_mod
from compute.jsonsafe import json_safe
from compute.marketdata import calendar
from services.lab import models, signals
from services.lab.common import LabInputError
from services.lab.training import latest_training

log = logging.getLogger("sigma.lab")

#: Subscriptions per user at the most.
MAX_SUBSCRIPTIONS = 50
#: How long after a bar close a lagging feed is waited for (the close is retried each tick).
LAG_GRACE = dt.timedelta(minutes=30)


class AlreadySubscribed(ValueError):
    """The model already has a subscription (``subscription_id`` names it)."""

    def __init__(self, subscription_id: str, model_id: str):
        super().__init__(f"{model_id} is already subscribed ({subscription_id})")
        self.subscription_id = subscription_id


def _iso(value) -> Optional[str]:
    return value.isoformat() if value is not None else None


def next_bar_close(cadence: str, after: dt.datetime) -> Optional[str]:
    """The next bar close (UTC, ISO) after ``after`` on the NYSE calendar."""
    horizon = pd.Timestamp(after) + pd.Timedelta(days=10)
    try:
        closes = calendar.bar_closes(cadence, after, horizon)
    except ValueError:  # past the calendar's end
        return None
    return closes[0].isoformat() if len(closes) else None


def subscription_view(row: SignalSubscription) -> dict:
    pack = packs_mod.get_pack(row.pack_id)
    return {"subscription_id": row.id, "model_id": row.model_id, "pack_id": row.pack_id,
            "cadence": pack.cadence, "portfolio_id": row.portfolio_id, "active": row.active,
            "created_at": _iso(row.created_at), "checked_until": _iso(row.checked_until),
            "next_bar_close": next_bar_close(pack.cadence, row.checked_until) if row.active else None,
            "last_bar_close": _iso(row.last_bar_close), "last_status": row.last_status,
            "last_signal_id": row.last_signal_id, "last_result": row.last_result, "runs": row.runs,
            "signals_generated": row.signals_generated}


def create_subscription(catalog: Catalog, user_id: int, model_id: str, portfolio_id: Optional[str] = None,
                        now: Optional[dt.datetime] = None) -> SignalSubscription:
    """Subscribe the user's trained model; the first bar close scored is the first after now.
    ``LookupError`` for a model that is not the user's; ``LabInputError`` naming the field
    (no training yet, a portfolio that is not the user's); ``AlreadySubscribed``."""
    model = models.get_model(catalog, user_id, model_id)
    if latest_training(catalog, model.id) is None:
        raise LabInputError("model_id", f"{model_id} has no completed training; POST /train first")
    with catalog.session() as s:
        if portfolio_id is not None:
            pf = s.get(Portfolio, portfolio_id)
            if pf is None or pf.user_id != user_id:
                raise LabInputError("portfolio_id", f"you have no portfolio {portfolio_id}")
        existing = s.scalar(select(SignalSubscription).where(SignalSubscription.user_id == user_id,
                                                             SignalSubscription.model_pk == model.id))
        if existing is not None:
            raise AlreadySubscribed(existing.id, model_id)
        count = len(s.scalars(select(SignalSubscription.id).where(SignalSubscription.user_id == user_id)).all())
        if count >= MAX_SUBSCRIPTIONS:
            raise LabInputError("model_id", f"at most {MAX_SUBSCRIPTIONS} subscriptions per user")
    try:
        with catalog.session() as s:
            row = SignalSubscription(user_id=user_id, model_pk=model.id, model_id=model.model_id,
                                     pack_id=model.pack_id, portfolio_id=portfolio_id, active=True,
                                     checked_until=now or utcnow(), runs=0, signals_generated=0)
            s.add(row)
            s.flush()
            return row
    except IntegrityError:  # a concurrent request subscribed it first
        with catalog.session() as s:
            other = s.scalar(select(SignalSubscription.id).where(SignalSubscription.user_id == user_id,
                                                                 SignalSubscription.model_pk == model.id))
        raise AlreadySubscribed(other or "?", model_id) from None


def list_subscriptions(catalog: Catalog, user_id: int) -> list[SignalSubscription]:
    with catalog.session() as s:
        return list(s.scalars(select(SignalSubscription).where(SignalSubscription.user_id == user_id)
                              .order_by(SignalSubscription.created_at, SignalSubscription.id)))


def get_subscription(catalog: Catalog, user_id: int, subscription_id: str) -> SignalSubscription:
    """The user's subscription; ``LookupError`` when missing or another user's."""
    with catalog.session() as s:
        row = s.get(SignalSubscription, subscription_id)
        if row is None or row.user_id != user_id:
            raise LookupError(f"subscription {subscription_id} not found")
        return row


def delete_subscription(catalog: Catalog, user_id: int, subscription_id: str) -> None:
    """Stop and remove the subscription (its signals stay)."""
    with catalog.session() as s:
        row = s.get(SignalSubscription, subscription_id)
        if row is None or row.user_id != user_id:
            raise LookupError(f"subscription {subscription_id} not found")
        s.delete(row)


# --- the scheduler's work -------------------------------------------------------------------------

def portfolio_capital(catalog: Catalog, provider, user_id: int, portfolio_id: Optional[str],
                      at: pd.Timestamp) -> tuple[float, str]:
    """``(capital, source)``: the portfolio's value (cash plus positions priced at ``at``) when
    the user has that portfolio (or, without ``portfolio_id``, a default one) and it is
    positive; else ``signals.CAPITAL`` and ``"default"``. Never creates a portfolio."""
    from services.portfolio.service import priced_book

    with catalog.session() as s:
        if portfolio_id is not None:
            pf = s.get(Portfolio, portfolio_id)
            pf = pf if pf is not None and pf.user_id == user_id else None
        else:
            pf = s.scalar(select(Portfolio).where(Portfolio.user_id == user_id, Portfolio.is_default.is_(True)))
    if pf is None:
        return signals.CAPITAL, "default"
    try:
        equity = float(priced_book(catalog, provider, user_id, pf.id, as_of=at.to_pydatetime()).equity)
    except Exception as exc:  # noqa: BLE001 - an unpriceable book falls back to the default size
        log.warning("portfolio %s could not be priced for signal sizing: %s", pf.id, exc)
        return signals.CAPITAL, "default"
    if not math.isfinite(equity) or equity <= 0:
        return signals.CAPITAL, "default"
    return equity, f"portfolio:{pf.id}"


def _claim(catalog: Catalog, row: SignalSubscription, now: dt.datetime) -> bool:
    """Move ``checked_until`` from the value read to ``now``; False when another tick did."""
    with catalog.session() as s:
        res = s.execute(update(SignalSubscription).where(SignalSubscription.id == row.id,
                                                         SignalSubscription.active.is_(True),
                                                         SignalSubscription.checked_until == row.checked_until)
                        .values(checked_until=now))
        return res.rowcount == 1


def run_subscription(catalog: Catalog, store: ArtifactStore, provider, row: SignalSubscription,
                     close: pd.Timestamp, skipped: int = 0, allowed_modules: Optional[Sequence[str]] = None,
                     now: Optional[pd.Timestamp] = None) -> dict:
    """Settle the user's open signals, then score the bar that closed at ``close`` (``now``:
    the tick's instant, for the lag grace)."""
    signal_id = None
    created = False
    retry = False
    try:
        signals.settle_due(catalog, provider, row.user_id)
        capital, source = portfolio_capital(catalog, provider, row.user_id, row.portfolio_id, close)
        view, created, decision = signals.generate_signal(
            catalog, store, provider, row.user_id, row.model_id, at=close, capital=capital,
            capital_source=source, allowed_modules=allowed_modules)
        status = "generated" if created else ("no_signal" if view is None else "existing")
        signal_id = view["signal_id"] if view is not None else None
        result = {"decision": decision, "capital": capital, "capital_source": source}
        if view is None and decision.get("waiting_for_bar"):
            retry = now is not None and now - close < LAG_GRACE
            status = "waiting" if retry else "no_bar"
    except Exception as exc:  # noqa: BLE001 - the subscription records what failed; the next close runs
        if not isinstance(exc, (LabInputError, LookupError, ValueError)):
            log.exception("scheduled signal of %s failed", row.id)
        status, result = "failed", {"error": f"{type(exc).__name__}: {exc}"[:500]}
    result["skipped_closes"] = int(skipped)
    result = json_safe(result)
    with catalog.session() as s:
        sub = s.get(SignalSubscription, row.id)
        if sub is not None:
            if retry:  # the next tick finds this close again
                sub.checked_until = (close - pd.Timedelta(microseconds=1)).to_pydatetime()
            sub.last_bar_close = close.to_pydatetime()
            sub.last_status, sub.last_signal_id, sub.last_result = status, signal_id, result
            sub.runs = (sub.runs or 0) + 1
            sub.signals_generated = (sub.signals_generated or 0) + (1 if created else 0)
    return {"subscription_id": row.id, "model_id": row.model_id, "bar_close": close.isoformat(),
            "status": status, "signal_id": signal_id, "skipped_closes": int(skipped)}


def run_due(catalog: Catalog, store: ArtifactStore, provider, now: Optional[dt.datetime] = None,
            allowed_modules: Optional[Sequence[str]] = None) -> list[dict]:
    """Score every active subscription whose cadence had a bar close since it was last
    checked (at most one bar per subscription per call: the newest)."""
    now = pd.Timestamp(now or dt.datetime.now(dt.timezone.utc))
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    with catalog.session() as s:
        rows = s.scalars(select(SignalSubscription).where(SignalSubscription.active.is_(True))
                         .order_by(SignalSubscription.created_at, SignalSubscription.id)).all()
    done = []
    for row in rows:
        try:
            cadence = packs_mod.get_pack(row.pack_id).cadence
            closes = calendar.bar_closes(cadence, row.checked_until, now)
        except ValueError:
            log.exception("subscription %s: no bar closes", row.id)
            continue
        if not len(closes) or not _claim(catalog, row, now.to_pydatetime()):
            continue
        done.append(run_subscription(catalog, store, provider, row, closes[-1], skipped=len(closes) - 1,
                                     allowed_modules=allowed_modules, now=now))
    return done


def scheduled_tick(settings) -> list[dict]:
    """The platform scheduler's hook (``services.risk.batch.PERIODIC_TASKS``)."""
    from cluster.catalog import get_catalog
    from cluster.market import market_provider

    return run_due(get_catalog(settings), ArtifactStore(settings.resolved_storage_url), market_provider(settings),
                   allowed_modules=settings.model_modules)
