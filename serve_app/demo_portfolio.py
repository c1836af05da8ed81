"""The three demo portfolios of docs/spec/reference.md, seeded by ``sigma serve --demo`` (idempotent).

- Prices come from the configured market data (synthetic by default): each holding's entry
  price is its close ``ENTRY_SESSIONS_AGO`` sessions before today.
- Options keep their right and roll to the next monthly expiry at least 1, 2 or 3 months
  after today (``OPTION_ROLL_MONTHS``). The original strike is kept when the chain lists it
  within 15 % of spot; otherwise the listed strike nearest the same kind of moneyness
  (calls 3 % above spot, puts 5 % below) is used, so contracts stay near the money and are
  marked from the chain. Option entry prices are the BSM value ``ENTRY_SESSIONS_AGO``
  sessions ago at that day's close, its time to expiry and today's chain implied vol.
- The hedge-fund-style book holds the proceeds of its short sales (stocks and written
  options) as cash, as a margin account does; the other two hold no cash.
A user whose default portfolio already has positions is left alone. Holdings the market data
cannot price are left out, logged, and reported by ``/healthz`` (component ``market_data``).
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
from sqlalchemy import select

from cluster.market import market_provider, record_skipped
from cluster.catalog import Catalog, Portfolio, Position, User
from cluster.config import Settings
from services.portfolio import service
from compute.book import pricing_instant
from compute.greeks import bsm_price
from compute.instruments import format_occ, next_monthly_expiry
from compute.marketdata import calendar
from compute.marketdata.base import MarketDataError

log = logging.getLogger("sigma.demo")

ENTRY_SESSIONS_AGO = 60
RATE = 0.045

INDIVIDUAL = [("AAPL", 85), ("MSFT", 45), ("AMZN", 110), ("GOOGL", 115), ("TSLA", 70), ("NVDA", 25), ("JNJ", 105),
              ("JPM", 85), ("V", 50), ("FXNAX", 4365), ("FCNTX", 4853), ("FMAGX", 3880), ("VTIAX", 970),
              ("VTI", 155), ("BND", 315), ("VNQ", 205)]
HNW = [("SPY", 400), ("QQQ", 450), ("AAPL", 400), ("MSFT", 200), ("AMZN", 480), ("GOOGL", 500), ("BRK-B", 180),
       ("JPM", 350), ("JNJ", 310), ("NVDA", 70), ("META", 90), ("UNH", 85), ("V", 170), ("HD", 125), ("PG", 250),
       ("GLD", 325), ("DJP", 1900)]
HF_LONGS = [("NVDA", 800), ("MSFT", 1000), ("AAPL", 1500), ("GOOGL", 1800), ("META", 1000), ("AMZN", 1400),
            ("TSLA", 800), ("AMD", 1200), ("BRK-B", 600), ("JPM", 1000), ("JNJ", 800), ("UNH", 200), ("V", 350)]
HF_SHORTS = [("NFLX", -600), ("SHOP", -1000), ("ZM", -2000), ("PTON", -3000), ("ROKU", -1800), ("XOM", -2000),
             ("F", -10000), ("GE", -800), ("C", -2000)]
#: (underlying, right, original strike, contracts)
HF_OPTIONS = [("SPY", "C", 460, 200), ("QQQ", "C", 420, 150), ("VIX", "C", 25, 300), ("NVDA", "C", 800, 50),
              ("AAPL", "P", 200, -100), ("MSFT", "P", 380, -80), ("META", "P", 450, -50), ("TSLA", "C", 300, -60)]
OPTION_ROLL_MONTHS = {"SPY": 3, "QQQ": 3, "VIX": 1, "NVDA": 2, "AAPL": 1, "MSFT": 2, "META": 2, "TSLA": 1}

DEMO_BOOKS = {
    "demo_individual": ("Individual Investor", [(t, q, []) for t, q in INDIVIDUAL], []),
    "demo_hnw": ("High Net Worth", [(t, q, []) for t, q in HNW], []),
    "demo_hedgefundstyle": (
        "Hedge Fund Style",
        [(t, q, ["Long Momentum"]) for t, q in HF_LONGS] + [(t, q, ["Short Value Traps"]) for t, q in HF_SHORTS],
        HF_OPTIONS,
    ),
}


def _closes(provider, ticker: str, today: dt.date) -> pd.Series:
    bars = provider.daily_bars(ticker, today - dt.timedelta(days=140), today)
    return bars["close"]


def _option_position(provider, underlying: str, right: str, strike: float, contracts: int, today: dt.date) -> dict:
    expiry = next_monthly_expiry(today, OPTION_ROLL_MONTHS.get(underlying, 1))
    # Today's chain at the last close that has happened (before today's close: the previous one).
    instant, _ = pricing_instant(today, provider.now())
    chain = provider.option_chain(underlying, as_of=instant, expiries=[expiry])
    spot = float(chain["underlying_price"].iloc[0])
    listed = chain[chain["right"] == right]
    strikes = listed["strike"].to_numpy(float)
    if not (abs(strike / spot - 1.0) <= 0.15 and (abs(strikes - strike) < 1e-9).any()):
        target = spot * (1.03 if right == "C" else 0.95)
        strike = float(strikes[abs(strikes - target).argmin()])
    row = listed[abs(listed["strike"] - strike) < 1e-9].iloc[0]
    closes = _closes(provider, underlying, today)
    then = closes.index[-1 - ENTRY_SESSIONS_AGO]
    years = (calendar.session_close(calendar.session_on_or_before(pd.Timestamp(expiry))) - calendar.session_close(then.tz_convert(calendar.NEW_YORK).tz_localize(None).normalize())).total_seconds() / (365 * 86400.0)
    from compute.book import dividend_yield

    entry = float(bsm_price(float(closes.iloc[-1 - ENTRY_SESSIONS_AGO]), strike, years, RATE,
                            dividend_yield(provider, underlying), float(row["iv"]), right == "C"))
    return {"symbol": format_occ(underlying, expiry, right, strike), "underlying": underlying, "strike": strike,
            "expiry": expiry, "right": right, "quantity": float(contracts), "entry_price": round(max(entry, 0.01), 2),
            "entry_date": then.date()}


def _unpriceable(ticker: str, exc: Exception) -> dict:
    if isinstance(exc, IndexError):
        reason = f"fewer than {ENTRY_SESSIONS_AGO + 1} daily bars"
    else:
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, MarketDataError) else str(exc)
    return {"ticker": ticker, "reason": reason[:400]}


def build_book(provider, username: str, today: dt.date | None = None,
               skipped: list[dict] | None = None) -> tuple[str, list[dict], float]:
    """(portfolio name, position dicts, cash) of a demo user's book priced off ``provider``.

    A holding the market data cannot price (a ticker the source lacks, a file it cannot read,
    too short a history) is left out and appended to ``skipped`` as ``{ticker, reason}``."""
    today = today or dt.date.today()
    skipped = skipped if skipped is not None else []
    name, stocks, options = DEMO_BOOKS[username]
    rows = []
    for ticker, qty, tags in stocks:
        try:
            closes = _closes(provider, ticker, today)
            rows.append({"symbol": ticker, "underlying": ticker, "quantity": float(qty),
                         "entry_price": round(float(closes.iloc[-1 - ENTRY_SESSIONS_AGO]), 2),
                         "entry_date": closes.index[-1 - ENTRY_SESSIONS_AGO].date(), "tags": tags,
                         "type": "LONG" if qty > 0 else "SHORT", "multiplier": 1})
        except (MarketDataError, ValueError, KeyError, IndexError) as exc:
            skipped.append(_unpriceable(ticker, exc))
    for underlying, right, strike, contracts in options:
        try:
            opt = _option_position(provider, underlying, right, strike, contracts, today)
        except (MarketDataError, ValueError, KeyError, IndexError) as exc:
            skipped.append(_unpriceable(f"{underlying} {right}{strike:g} option", exc))
            continue
        kind = {("C", True): "LC", ("C", False): "SC", ("P", True): "LP", ("P", False): "SP"}[(right, contracts > 0)]
        rows.append({**opt, "type": kind, "option_right": right, "multiplier": 100, "tags": ["Options Overlay"]})
    cash = 0.0
    if username == "demo_hedgefundstyle":
        cash = float(sum(-r["quantity"] * r["entry_price"] * r["multiplier"] for r in rows if r["quantity"] < 0))
    return name, rows, round(cash, 2)


def seed(catalog: Catalog, settings: Settings) -> list[dict]:
    """Seed the demo books; returns what could not be priced (``{user, ticker, reason}``),
    also logged and kept for ``/healthz`` (``cluster.market.record_skipped``)."""
    provider = market_provider(settings)
    report: list[dict] = []
    try:
        return _seed(catalog, provider, report)
    finally:
        for item in report:
            log.warning("demo seeding skipped %s for %s: %s", item["ticker"], item["user"], item["reason"])
        record_skipped(settings, "demo_seed", report)


def _seed(catalog: Catalog, provider, report: list[dict]) -> list[dict]:
    for username in DEMO_BOOKS:
        with catalog.session() as s:
            user = s.scalar(select(User).where(User.username == username))
        if user is None:
            continue
        pf = service.ensure_default_portfolio(catalog, user.id)
        with catalog.session() as s:
            if s.scalar(select(Position.id).where(Position.portfolio_id == pf.id).limit(1)):
                continue
        skipped: list[dict] = []
        name, rows, cash = build_book(provider, username, skipped=skipped)
        report.extend({"user": username, **item} for item in skipped)
        if not rows:
            continue
        with catalog.session() as s:
            portfolio = s.get(Portfolio, pf.id)
            portfolio.name, portfolio.cash = name, cash
            tag_names = sorted({t for r in rows for t in r["tags"]})
            tags = {t.name: t for t in service._tags_for_names(s, user.id, tag_names)}
            for r in rows:
                pos = Position(portfolio_id=pf.id, user_id=user.id, symbol=r["symbol"], underlying=r["underlying"],
                               type=r["type"], quantity=r["quantity"], entry_price=r["entry_price"],
                               entry_date=r["entry_date"], strike=r.get("strike"), expiry=r.get("expiry"),
                               option_right=r.get("option_right"), multiplier=r["multiplier"])
                s.add(pos)
                s.flush()
                service._set_tags(s, pos, [tags[t] for t in r["tags"]])
            service._touch_portfolios(s, user.id, pf.id)
        log.info("seeded demo portfolio %r for %s (%d positions)", name, username, len(rows))
    return report
