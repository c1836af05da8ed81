"""Broker-ready trade lists: position changes become orders, written as CSV, JSON or FIX 4.4.

Orders (spec 7.7, 13.2):

- **Equities** (ETFs too): a long that grows is ``BUY``, one that shrinks ``SELL``; a short
  opened or grown is ``SELL_SHORT``, one reduced or closed ``BUY_TO_COVER``. A position that
  flips side is two orders: close the old side, open the new one. ``MARKET``, ``DAY``.
- **Options** (OCC symbols): ``BUY_TO_OPEN`` / ``SELL_TO_CLOSE`` for longs, ``SELL_TO_OPEN`` /
  ``BUY_TO_CLOSE`` for shorts (a flip is again two orders). ``LIMIT`` at the mid, ``DAY``.
  Quantities are contracts.

Formats:

- **CSV**, the basket file a broker's import takes, one order a row, columns ``CSV_COLUMNS``:
  ``action, symbol, quantity, order_type, limit_price, time_in_force, security_type,
  underlying, put_call, strike, expiry`` (options fields empty for equities).
- **JSON**: the same fields per order.
- **FIX 4.4**: one NewOrderSingle (35=D) per order, built with simplefix (which writes
  BodyLength 9 and CheckSum 10): ClOrdID 11, Symbol 55, Side 54 (1 buy, 2 sell, 5 sell short),
  OrderQty 38, OrdType 40 (1 market, 2 limit), Price 44 (limit orders), TimeInForce 59 (0 day),
  TransactTime 60, PositionEffect 77 (O open, C close); options add SecurityType 167=OPT,
  PutOrCall 201 (0 put, 1 call), StrikePrice 202, MaturityDate 541, UnderlyingSymbol 311.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import asdict, dataclass
from typing import Iterable, Optional

from compute.instruments import normalize_ticker, parse_occ

EQUITY_ACTIONS = ("BUY", "SELL", "SELL_SHORT", "BUY_TO_COVER")
OPTION_ACTIONS = ("BUY_TO_OPEN", "SELL_TO_CLOSE", "SELL_TO_OPEN", "BUY_TO_CLOSE")
ACTIONS = EQUITY_ACTIONS + OPTION_ACTIONS
FORMATS = ("csv", "json", "fix")
CSV_COLUMNS = ("action", "symbol", "quantity", "order_type", "limit_price", "time_in_force", "security_type",
               "underlying", "put_call", "strike", "expiry")

#: FIX 4.4 Side (54) and PositionEffect (77) of each action.
FIX_SIDE = {"BUY": "1", "BUY_TO_COVER": "1", "BUY_TO_OPEN": "1", "BUY_TO_CLOSE": "1",
            "SELL": "2", "SELL_TO_CLOSE": "2", "SELL_TO_OPEN": "2", "SELL_SHORT": "5"}
FIX_POSITION_EFFECT = {"BUY": "O", "SELL_SHORT": "O", "BUY_TO_OPEN": "O", "SELL_TO_OPEN": "O",
                       "SELL": "C", "BUY_TO_COVER": "C", "SELL_TO_CLOSE": "C", "BUY_TO_CLOSE": "C"}


@dataclass(frozen=True)
class Order:
    """One order of a trade list (quantity positive; the action carries the direction)."""

    action: str
    symbol: str
    quantity: float
    order_type: str = "MARKET"
    limit_price: Optional[float] = None
    time_in_force: str = "DAY"
    security_type: str = "EQUITY"
    underlying: Optional[str] = None
    put_call: Optional[str] = None          # "CALL" | "PUT"
    strike: Optional[float] = None
    expiry: Optional[str] = None            # ISO date

    def as_dict(self) -> dict:
        return asdict(self)


def _is_option(symbol: str) -> bool:
    try:
        parse_occ(symbol)
    except ValueError:
        return False
    return True


def _legs(before: float, after: float, option: bool) -> list[tuple[str, float]]:
    """(action, positive quantity) legs that take a position from ``before`` to ``after``."""
    if option:
        open_long, close_long, open_short, close_short = OPTION_ACTIONS[0], OPTION_ACTIONS[1], OPTION_ACTIONS[2], OPTION_ACTIONS[3]
    else:
        open_long, close_long, open_short, close_short = "BUY", "SELL", "SELL_SHORT", "BUY_TO_COVER"
    legs: list[tuple[str, float]] = []
    if before > 0 and after < before:                       # reduce or close a long
        legs.append((close_long, before - max(after, 0.0)))
    if before < 0 and after > before:                       # reduce or close a short
        legs.append((close_short, min(after, 0.0) - before))
    if after > 0 and after > max(before, 0.0):              # open or grow a long
        legs.append((open_long, after - max(before, 0.0)))
    if after < 0 and after < min(before, 0.0):              # open or grow a short
        legs.append((open_short, min(before, 0.0) - after))
    return [(a, q) for a, q in legs if q > 0]


def order_legs(symbol: str, before: float, after: float, mid: Optional[float] = None) -> list[Order]:
    """The orders that take ``symbol`` (a ticker or OCC option symbol) from ``before`` to
    ``after`` (shares or contracts, signed). Options need the ``mid`` for their limit price."""
    if _is_option(symbol):
        occ = parse_occ(symbol)
        if mid is None or not mid > 0:
            raise ValueError(f"{symbol}: an option order needs a positive mid price for its limit")
        common = dict(order_type="LIMIT", limit_price=round(float(mid), 2), security_type="OPTION",
                      underlying=occ.root, put_call="CALL" if occ.is_call else "PUT", strike=float(occ.strike),
                      expiry=occ.expiry.isoformat())
        return [Order(action, occ.occ, float(qty), **common) for action, qty in _legs(before, after, True)]
    ticker = normalize_ticker(symbol)
    return [Order(action, ticker, float(qty)) for action, qty in _legs(before, after, False)]


def orders_csv(orders: Iterable[Order]) -> str:
    """The basket file: a header row of ``CSV_COLUMNS`` and one order a row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for o in orders:
        row = o.as_dict()
        writer.writerow(["" if row[c] is None else _plain(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def _plain(value) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def orders_fix(orders: Iterable[Order], *, sender: str = "SIGMA", target: str = "BROKER",
               cl_ord_prefix: str = "SIGMA", transact_time: Optional[dt.datetime] = None,
               first_seq: int = 1) -> list[bytes]:
    """One FIX 4.4 NewOrderSingle per order (encoded bytes, SOH-separated)."""
    import simplefix

    when = transact_time or dt.datetime.now(dt.timezone.utc)
    messages = []
    for i, o in enumerate(orders):
        msg = simplefix.FixMessage()
        msg.append_pair(8, "FIX.4.4", header=True)
        msg.append_pair(35, "D", header=True)
        msg.append_pair(49, sender, header=True)
        msg.append_pair(56, target, header=True)
        msg.append_pair(34, first_seq + i, header=True)
        msg.append_utc_timestamp(52, when, precision=3, header=True)
        msg.append_pair(11, f"{cl_ord_prefix}-{i + 1:04d}")
        msg.append_pair(55, o.underlying if o.security_type == "OPTION" else o.symbol)
        msg.append_pair(54, FIX_SIDE[o.action])
        msg.append_utc_timestamp(60, when, precision=3)
        msg.append_pair(38, _plain(float(o.quantity)))
        msg.append_pair(40, "2" if o.order_type == "LIMIT" else "1")
        if o.order_type == "LIMIT":
            msg.append_pair(44, f"{o.limit_price:.2f}")
        msg.append_pair(59, "0")
        msg.append_pair(77, FIX_POSITION_EFFECT[o.action])
        if o.security_type == "OPTION":
            msg.append_pair(167, "OPT")
            msg.append_pair(201, "1" if o.put_call == "CALL" else "0")
            msg.append_pair(202, _plain(float(o.strike)))
            msg.append_pair(541, o.expiry.replace("-", ""))
            msg.append_pair(311, o.underlying)
        messages.append(msg.encode())
    return messages
