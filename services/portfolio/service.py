"""Portfolios, positions and tags in the catalog, and the priced book routes read.

Errors: ``LookupError`` for a row the user does not own or that does not exist (routes answer
404, never 403); ``PortfolioInputError(field, reason)`` for bad input (routes answer 400 naming
the field); ``PortfolioConflict`` for a duplicate (409). Every change is one
``catalog.session()`` unit of work, so a failed request writes nothing.

The priced book (``priced_book``) is cached per process for ``BOOK_TTL_S`` seconds (a live book
no longer than the clock minute it was priced in), keyed by the portfolio id and a version of its rows (portfolio ``updated_at`` and cash, position count
and latest ``updated_at``): any change through this module bumps the portfolio's
``updated_at``, so a cached book is never served after an edit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from cluster.catalog import Catalog, Portfolio, Position, PositionTag, Tag
from cluster.catalog.models import utcnow
from cluster.errors import InputError
from compute.book import INPUT_COLUMNS, empty_positions, price_positions
from compute.instruments import (
    OPTION_MULTIPLIER,
    PositionType,
    format_occ,
    parse_occ,
)
from compute.instruments import InvalidTicker, normalize_ticker
from compute.limits import notional_problem, price_problem, quantity_problem, strike_problem

DEFAULT_PORTFOLIO_NAME = "Main"
BOOK_TTL_S = 30.0
MAX_TAG_NAME = 80


class PortfolioInputError(InputError):
    """Bad input for a portfolio change (positions, tags, uploads, alerts)."""


class PortfolioConflict(Exception):
    """The change collides with an existing row (duplicate symbol or tag name)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# -- portfolios ------------------------------------------------------------------------------

def ensure_default_portfolio(catalog: Catalog, user_id: int) -> Portfolio:
    """The user's default portfolio, created (empty, no cash) on first use."""
    try:
        return _ensure_default_portfolio(catalog, user_id)
    except IntegrityError:  # a concurrent first request created it
        return _ensure_default_portfolio(catalog, user_id)


def _ensure_default_portfolio(catalog: Catalog, user_id: int) -> Portfolio:
    with catalog.session() as s:
        pf = s.scalar(select(Portfolio).where(Portfolio.user_id == user_id, Portfolio.is_default.is_(True)))
        if pf is None:
            pf = s.scalar(select(Portfolio).where(Portfolio.user_id == user_id).order_by(Portfolio.created_at))
            if pf is not None:
                pf.is_default = True
            else:
                pf = Portfolio(user_id=user_id, name=DEFAULT_PORTFOLIO_NAME, is_default=True, cash=0.0)
                s.add(pf)
        s.flush()
        return pf


def get_portfolio(catalog: Catalog, user_id: int, portfolio_id: str | None = None) -> Portfolio:
    """The user's portfolio ``portfolio_id`` (default one when None); LookupError if not theirs."""
    if portfolio_id is None:
        return ensure_default_portfolio(catalog, user_id)
    with catalog.session() as s:
        pf = s.get(Portfolio, portfolio_id)
        if pf is None or pf.user_id != user_id:
            raise LookupError(f"portfolio {portfolio_id} not found")
        return pf


def list_portfolios(catalog: Catalog, user_id: int) -> list[Portfolio]:
    ensure_default_portfolio(catalog, user_id)
    with catalog.session() as s:
        return list(s.scalars(select(Portfolio).where(Portfolio.user_id == user_id).order_by(Portfolio.created_at)))


def _touch_portfolios(s, user_id: int, portfolio_id: str | None = None) -> None:
    stmt = update(Portfolio).where(Portfolio.user_id == user_id)
    if portfolio_id is not None:
        stmt = stmt.where(Portfolio.id == portfolio_id)
    s.execute(stmt.values(updated_at=utcnow()))


# -- positions -------------------------------------------------------------------------------

def _tags_by_position(s, position_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {pid: [] for pid in position_ids}
    if not position_ids:
        return out
    rows = s.execute(
        select(PositionTag.position_id, Tag.name).join(Tag, Tag.id == PositionTag.tag_id)
        .where(PositionTag.position_id.in_(position_ids)).order_by(Tag.name)
    )
    for pid, name in rows:
        out[pid].append(name)
    return out


def position_rows(positions: list[Position], tags: dict[str, list[str]]) -> pd.DataFrame:
    """The input frame of ``compute.book.price_positions`` from catalog rows."""
    if not positions:
        return empty_positions()
    return pd.DataFrame({
        "position_id": [p.id for p in positions],
        "symbol": [p.symbol for p in positions],
        "underlying": [p.underlying for p in positions],
        "type": [p.type for p in positions],
        "quantity": [float(p.quantity) for p in positions],
        "entry_price": [float(p.entry_price) for p in positions],
        "strike": [p.strike for p in positions],
        "expiry": [p.expiry for p in positions],
        "option_right": [p.option_right for p in positions],
        "multiplier": [int(p.multiplier) for p in positions],
        "strategy": [p.strategy for p in positions],
        "tags": [tags.get(p.id, []) for p in positions],
        "entry_date": [p.entry_date for p in positions],
    })


def load_positions(catalog: Catalog, portfolio_id: str) -> pd.DataFrame:
    """Positions of a portfolio as the ``price_positions`` input frame (tags = list of names)."""
    with catalog.session() as s:
        rows = list(s.scalars(select(Position).where(Position.portfolio_id == portfolio_id).order_by(Position.created_at, Position.id)))
        tags = _tags_by_position(s, [p.id for p in rows])
    return position_rows(rows, tags)


def _owned_position(s, user_id: int, position_id: str) -> Position:
    pos = s.get(Position, position_id)
    if pos is None or pos.user_id != user_id:
        raise LookupError(f"position {position_id} not found")
    return pos


@dataclass(frozen=True)
class PositionSpec:
    """A validated position: what the catalog stores."""

    symbol: str
    underlying: str
    type: str
    quantity: float
    entry_price: float | None
    strike: float | None = None
    expiry: dt.date | None = None
    option_right: str | None = None
    multiplier: int = 1

    @property
    def is_option(self) -> bool:
        return self.option_right is not None


def _ticker(raw, field: str) -> str:
    try:
        return normalize_ticker(raw)
    except InvalidTicker:
        raise PortfolioInputError(field, f"{raw!r} is not a ticker (1-10 letters, digits, '.', '-')") from None


def _number(raw, field: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise PortfolioInputError(field, f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise PortfolioInputError(field, "must be a finite number")
    return value


def _check(problem: str | None, field: str) -> None:
    """A bound of ``compute.limits`` broken: the input error naming ``field``."""
    if problem is not None:
        raise PortfolioInputError(field, problem)


def _date(raw, field: str) -> dt.date:
    if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
        return raw
    try:
        return dt.date.fromisoformat(str(raw).strip())
    except ValueError:
        raise PortfolioInputError(field, f"{raw!r} is not a date in YYYY-MM-DD format") from None


def resolve_position(ticker, quantity, type_=None, strike=None, expiration=None, price=None,
                     *, require_price: bool = True, fields: dict | None = None) -> PositionSpec:
    """Validate one position given by stock ticker, OCC symbol, or ticker + option type,
    strike and expiration. The quantity's sign is the direction and must agree with the type
    (LONG/LC/LP positive, SHORT/SC/SP negative). ``fields`` renames fields in errors."""
    names = {"ticker": "ticker", "quantity": "quantity", "type": "type", "strike": "strike",
             "expiration": "expiration", "price": "price", **(fields or {})}
    raw = str(ticker or "").strip().upper()
    if not raw:
        raise PortfolioInputError(names["ticker"], "is required")
    qty = _number(quantity, names["quantity"])
    _check(quantity_problem(qty), names["quantity"])
    ptype = None
    if type_ not in (None, ""):
        try:
            ptype = PositionType(str(type_).strip().upper())
        except ValueError:
            raise PortfolioInputError(names["type"], f"{type_!r} is not one of LONG, SHORT, LC, LP, SC, SP") from None
    option = None
    if len(raw.replace(" ", "")) > 15 and raw[-15:-9].isdigit():
        try:
            option = parse_occ(raw)
        except ValueError as exc:
            raise PortfolioInputError(names["ticker"], str(exc)) from None
    elif ptype is not None and ptype.is_option:
        if strike in (None, ""):
            raise PortfolioInputError(names["strike"], f"is required for {ptype.value} positions given by ticker")
        if expiration in (None, ""):
            raise PortfolioInputError(names["expiration"], f"is required for {ptype.value} positions given by ticker")
        root = _ticker(raw, names["ticker"])
        strike_value = _number(strike, names["strike"])
        _check(strike_problem(strike_value), names["strike"])
        try:
            option = parse_occ(format_occ(root, _date(expiration, names["expiration"]), "C" if ptype.is_call else "P", strike_value))
        except ValueError as exc:
            raise PortfolioInputError(names["strike"], str(exc)) from None
    if option is not None:
        expected = (PositionType.LC if qty > 0 else PositionType.SC) if option.is_call else (PositionType.LP if qty > 0 else PositionType.SP)
        if ptype is not None and ptype != expected:
            if ptype.is_option and ptype.is_call != option.is_call:
                raise PortfolioInputError(names["type"], f"{ptype.value} does not match the option right {option.right}")
            if not ptype.is_option:
                raise PortfolioInputError(names["type"], f"{ptype.value} is a stock type but {raw} is an option")
            raise PortfolioInputError(names["quantity"], f"{ptype.value} positions need a {'positive' if ptype.is_long else 'negative'} quantity")
        ptype = expected
        underlying = _ticker(option.root, names["ticker"])
        symbol = format_occ(underlying, option.expiry, option.right, option.strike)
    else:
        underlying = symbol = _ticker(raw, names["ticker"])
        expected = PositionType.LONG if qty > 0 else PositionType.SHORT
        if ptype is not None and ptype != expected:
            if ptype.is_option:
                raise PortfolioInputError(names["ticker"], f"{ptype.value} needs an OCC symbol or strike and expiration")
            raise PortfolioInputError(names["quantity"], f"{ptype.value} positions need a {'positive' if ptype.is_long else 'negative'} quantity")
        ptype = expected
    entry = None
    if price not in (None, ""):
        entry = _number(price, names["price"])
        _check(price_problem(entry), names["price"])
        _check(notional_problem(qty, entry, OPTION_MULTIPLIER if option else 1), names["quantity"])
    elif require_price:
        raise PortfolioInputError(names["price"], "is required (entry price per share; per contract's share price for options)")
    return PositionSpec(
        symbol=symbol, underlying=underlying, type=ptype.value, quantity=qty, entry_price=entry,
        strike=option.strike if option else None, expiry=option.expiry if option else None,
        option_right=option.right if option else None,
        multiplier=OPTION_MULTIPLIER if option else 1,
    )


def _clean_tag_names(names, field: str = "tags") -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)):
        raise PortfolioInputError(field, "must be a list of tag names")
    out = []
    for raw in names:
        if not isinstance(raw, str):
            raise PortfolioInputError(field, "tag names are strings")
        name = raw.strip()
        if not name:
            continue
        if len(name) > MAX_TAG_NAME:
            raise PortfolioInputError(field, f"tag names have at most {MAX_TAG_NAME} characters")
        if name not in out:
            out.append(name)
    return out


def _tags_for_names(s, user_id: int, names: list[str]) -> list[Tag]:
    """Tags of the user with these names, creating the missing ones."""
    if not names:
        return []
    existing = {t.name: t for t in s.scalars(select(Tag).where(Tag.user_id == user_id, Tag.name.in_(names)))}
    out = []
    for name in names:
        tag = existing.get(name)
        if tag is None:
            tag = Tag(user_id=user_id, name=name)
            s.add(tag)
            s.flush()
            existing[name] = tag
        out.append(tag)
    return out


def _set_tags(s, position: Position, tags: list[Tag]) -> None:
    current = set(s.scalars(select(PositionTag.tag_id).where(PositionTag.position_id == position.id)))
    wanted = {t.id for t in tags}
    for tag_id in current - wanted:
        s.execute(PositionTag.__table__.delete().where(PositionTag.position_id == position.id, PositionTag.tag_id == tag_id))
    for tag_id in wanted - current:
        s.add(PositionTag(position_id=position.id, tag_id=tag_id))
    position.updated_at = utcnow()


def position_dict(p: Position, tags: list[str]) -> dict:
    return {
        "id": p.id, "portfolio_id": p.portfolio_id, "ticker": p.symbol, "underlying": p.underlying,
        "type": p.type, "quantity": p.quantity, "entry_price": p.entry_price,
        "entry_date": p.entry_date.isoformat() if p.entry_date else None,
        "strike": p.strike, "expiration": p.expiry.isoformat() if p.expiry else None,
        "option_right": p.option_right, "multiplier": p.multiplier, "strategy": p.strategy,
        "tags": tags, "ai_metadata": p.ai_metadata,
        "created_at": p.created_at.isoformat() if p.created_at else None,
        "updated_at": p.updated_at.isoformat() if p.updated_at else None,
    }


def add_position(catalog: Catalog, user_id: int, body: dict, portfolio_id: str | None = None) -> dict:
    """Create one position (spec 5.2); tags named in the body are created when missing.

    A symbol already held in the portfolio is a ``PortfolioConflict`` (use PATCH to change it).
    """
    pf = get_portfolio(catalog, user_id, portfolio_id)
    spec = resolve_position(body.get("ticker"), body.get("quantity"), body.get("type"),
                            body.get("strike"), body.get("expiration"), body.get("price"))
    tag_names = _clean_tag_names(body.get("tags"))
    strategy = body.get("strategy")
    if strategy is not None and (not isinstance(strategy, str) or len(strategy) > 120):
        raise PortfolioInputError("strategy", "must be a string of at most 120 characters")
    entry_date = _date(body["entry_date"], "entry_date") if body.get("entry_date") else dt.date.today()
    if entry_date > dt.date.today():
        raise PortfolioInputError("entry_date", "must not be in the future")
    metadata = body.get("ai_metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise PortfolioInputError("ai_metadata", "must be an object")
    with catalog.session() as s:
        if s.scalar(select(Position.id).where(Position.portfolio_id == pf.id, Position.symbol == spec.symbol)):
            raise PortfolioConflict(f"{spec.symbol} is already held in this portfolio; PATCH it instead", field="ticker")
        pos = Position(
            portfolio_id=pf.id, user_id=user_id, symbol=spec.symbol, underlying=spec.underlying,
            type=spec.type, quantity=spec.quantity, entry_price=spec.entry_price, entry_date=entry_date,
            strike=spec.strike, expiry=spec.expiry, option_right=spec.option_right,
            multiplier=spec.multiplier, strategy=strategy or None, ai_metadata=metadata,
        )
        s.add(pos)
        s.flush()
        tags = _tags_for_names(s, user_id, tag_names)
        _set_tags(s, pos, tags)
        _touch_portfolios(s, user_id, pf.id)
        s.flush()
        return position_dict(pos, sorted(t.name for t in tags))


def update_position(catalog: Catalog, user_id: int, position_id: str, body: dict) -> dict:
    """PATCH quantity (sign must stay that of the position's type) and/or strategy."""
    allowed = {"quantity", "strategy", "price", "entry_price"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise PortfolioInputError(unknown[0], "cannot be changed; PATCH accepts quantity, strategy and entry_price")
    if not body:
        raise PortfolioInputError("body", "give quantity, strategy or entry_price")
    with catalog.session() as s:
        pos = _owned_position(s, user_id, position_id)
        if "quantity" in body:
            qty = _number(body["quantity"], "quantity")
            long_type = PositionType(pos.type).is_long
            if qty == 0 or (qty > 0) != long_type:
                raise PortfolioInputError("quantity", f"{pos.type} positions need a {'positive' if long_type else 'negative'} quantity; delete the position to close it")
            _check(quantity_problem(qty), "quantity")
            pos.quantity = qty
        for key in ("entry_price", "price"):
            if key in body:
                value = _number(body[key], key)
                _check(price_problem(value), key)
                pos.entry_price = value
        changed = [k for k in ("quantity", "entry_price", "price") if k in body]
        if changed and pos.entry_price is not None:
            _check(notional_problem(pos.quantity, pos.entry_price, pos.multiplier or 1), changed[0])
        if "strategy" in body:
            strategy = body["strategy"]
            if strategy is not None and (not isinstance(strategy, str) or len(strategy) > 120):
                raise PortfolioInputError("strategy", "must be a string of at most 120 characters or null")
            pos.strategy = strategy or None
        pos.updated_at = utcnow()
        _touch_portfolios(s, user_id, pos.portfolio_id)
        s.flush()
        return position_dict(pos, _tags_by_position(s, [pos.id])[pos.id])


def delete_position(catalog: Catalog, user_id: int, position_id: str) -> None:
    with catalog.session() as s:
        pos = _owned_position(s, user_id, position_id)
        _touch_portfolios(s, user_id, pos.portfolio_id)
        s.delete(pos)


def get_position(catalog: Catalog, user_id: int, position_id: str) -> dict:
    with catalog.session() as s:
        pos = _owned_position(s, user_id, position_id)
        return position_dict(pos, _tags_by_position(s, [pos.id])[pos.id])


# -- tags ------------------------------------------------------------------------------------

def tag_dict(tag: Tag, count: int = 0) -> dict:
    return {"id": tag.id, "name": tag.name, "color": tag.color, "description": tag.description,
            "position_count": int(count), "created_at": tag.created_at.isoformat() if tag.created_at else None}


def list_tags(catalog: Catalog, user_id: int) -> list[dict]:
    with catalog.session() as s:
        counts = dict(s.execute(select(PositionTag.tag_id, func.count()).join(Tag, Tag.id == PositionTag.tag_id)
                                .where(Tag.user_id == user_id).group_by(PositionTag.tag_id)).all())
        return [tag_dict(t, counts.get(t.id, 0)) for t in s.scalars(select(Tag).where(Tag.user_id == user_id).order_by(Tag.name))]


def _tag_fields(body: dict, *, partial: bool) -> dict:
    out = {}
    if "name" in body or not partial:
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise PortfolioInputError("name", "must be a string")
        names = _clean_tag_names([name or ""], "name")
        if not names:
            raise PortfolioInputError("name", "is required")
        out["name"] = names[0]
    if "color" in body:
        color = body["color"]
        if color is not None and (not isinstance(color, str) or len(color) > 16):
            raise PortfolioInputError("color", "must be a string of at most 16 characters, e.g. #4CAF50")
        out["color"] = color
    if "description" in body:
        desc = body["description"]
        if desc is not None and (not isinstance(desc, str) or len(desc) > 2000):
            raise PortfolioInputError("description", "must be a string of at most 2000 characters")
        out["description"] = desc
    return out


def create_tag(catalog: Catalog, user_id: int, body: dict) -> dict:
    values = _tag_fields(body, partial=False)
    with catalog.session() as s:
        if s.scalar(select(Tag.id).where(Tag.user_id == user_id, Tag.name == values["name"])):
            raise PortfolioConflict(f"tag {values['name']!r} already exists", field="name")
        tag = Tag(user_id=user_id, **values)
        s.add(tag)
        s.flush()
        return tag_dict(tag)


def _owned_tag(s, user_id: int, tag_id: str) -> Tag:
    tag = s.get(Tag, tag_id)
    if tag is None or tag.user_id != user_id:
        raise LookupError(f"tag {tag_id} not found")
    return tag


def update_tag(catalog: Catalog, user_id: int, tag_id: str, body: dict) -> dict:
    values = _tag_fields(body, partial=True)
    if not values:
        raise PortfolioInputError("body", "give name, color or description")
    with catalog.session() as s:
        tag = _owned_tag(s, user_id, tag_id)
        if "name" in values and values["name"] != tag.name and s.scalar(
                select(Tag.id).where(Tag.user_id == user_id, Tag.name == values["name"])):
            raise PortfolioConflict(f"tag {values['name']!r} already exists", field="name")
        for key, value in values.items():
            setattr(tag, key, value)
        _touch_portfolios(s, user_id)
        count = s.scalar(select(func.count()).select_from(PositionTag).where(PositionTag.tag_id == tag.id))
        s.flush()
        return tag_dict(tag, count)


def delete_tag(catalog: Catalog, user_id: int, tag_id: str) -> None:
    with catalog.session() as s:
        tag = _owned_tag(s, user_id, tag_id)
        s.execute(PositionTag.__table__.delete().where(PositionTag.tag_id == tag.id))
        s.delete(tag)
        _touch_portfolios(s, user_id)


def position_tags(catalog: Catalog, user_id: int, position_id: str) -> list[dict]:
    with catalog.session() as s:
        pos = _owned_position(s, user_id, position_id)
        tags = s.scalars(select(Tag).join(PositionTag, PositionTag.tag_id == Tag.id)
                         .where(PositionTag.position_id == pos.id).order_by(Tag.name))
        return [tag_dict(t) for t in tags]


def set_position_tags(catalog: Catalog, user_id: int, position_id: str, *, tag_ids=None, names=None) -> list[dict]:
    """Replace a position's tags by tag ids (must be the user's) and/or names (created if new)."""
    if tag_ids is None and names is None:
        raise PortfolioInputError("tag_ids", "give tag_ids and/or tags (names)")
    if tag_ids is not None and (not isinstance(tag_ids, list) or not all(isinstance(t, str) for t in tag_ids)):
        raise PortfolioInputError("tag_ids", "must be a list of tag ids")
    clean_names = _clean_tag_names(names)
    with catalog.session() as s:
        pos = _owned_position(s, user_id, position_id)
        tags = []
        for tag_id in dict.fromkeys(tag_ids or []):
            tag = s.get(Tag, tag_id)
            if tag is None or tag.user_id != user_id:
                raise PortfolioInputError("tag_ids", f"tag {tag_id} not found")
            tags.append(tag)
        tags += [t for t in _tags_for_names(s, user_id, clean_names) if t.id not in {x.id for x in tags}]
        _set_tags(s, pos, tags)
        _touch_portfolios(s, user_id, pos.portfolio_id)
        return [tag_dict(t) for t in sorted(tags, key=lambda t: t.name)]


# -- priced book -----------------------------------------------------------------------------

@dataclass
class PricedBook:
    """A portfolio priced at ``as_of``.

    ``positions``: the ``compute.book.price_positions`` frame (one row per position). It is
    shared by every cache hit: treat it as read-only (``.copy()`` before adding columns).
    ``equity`` = sum of position market values (shorts negative) + cash: the liquidation
    value of the account, the denominator of every exposure ratio.
    """

    portfolio: Portfolio
    positions: pd.DataFrame
    cash: float
    equity: float
    as_of: dt.datetime
    cache_status: str = "miss"
    extras: dict = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        """One line per underlying the market data could not price (the ticker and the
        provider's reason, e.g. the file it could not read): its positions' figures are null
        and left out of every total."""
        missing = self.positions.attrs.get("missing_data") or {}
        return [f"no market data for {u}: {reason}; its positions are left out of totals"
                for u, reason in sorted(missing.items())]


#: The warnings of the books priced for the current request (set to a fresh list per request
#: by the HTTP middleware; ``serve_app.envelope`` puts them in ``meta.warnings``). A list, so
#: appends made in a worker thread of the request reach the response.
BOOK_WARNINGS: ContextVar[list[str] | None] = ContextVar("sigma_book_warnings", default=None)


def _note_warnings(book: PricedBook) -> PricedBook:
    sink = BOOK_WARNINGS.get()
    if sink is not None:
        sink.extend(w for w in book.warnings if w not in sink)
    return book


#: Where the figures of the current request were priced from (set to a fresh dict per request by
#: the HTTP middleware; ``serve_app.envelope`` puts it in ``meta.market_data``): ``source``
#: (synthetic, files, polygon) and ``as_of`` (the pricing instant, UTC ISO 8601; the latest one
#: when a request prices several books, e.g. a day and the day before). A dict, so what a
#: worker thread of the request notes reaches the response.
BOOK_PRICING: ContextVar[dict | None] = ContextVar("sigma_book_pricing", default=None)


def iso_instant(value) -> str | None:
    """An instant as UTC ISO 8601 to the second (``2026-12-03T18:00:00Z``); naive = UTC."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def pricing_stamp(provider, as_of) -> dict:
    """``{"source", "as_of"}`` of figures priced by ``provider`` at the instant ``as_of``."""
    return {"source": str(getattr(provider, "source", "unknown")), "as_of": iso_instant(as_of)}


@contextlib.contextmanager
def recording_pricing():
    """Collect, outside a request (a job body), where the figures computed in the block were
    priced from: yields the dict ``{"source", "as_of"}`` that ``note_pricing`` fills (empty when
    nothing was priced)."""
    sink: dict = {}
    token = BOOK_PRICING.set(sink)
    try:
        yield sink
    finally:
        BOOK_PRICING.reset(token)


def note_pricing(provider, as_of) -> None:
    """Record, for the current request, that figures were priced by ``provider`` at ``as_of``."""
    sink = BOOK_PRICING.get()
    if sink is None:
        return
    stamp = pricing_stamp(provider, as_of)
    if not sink or (stamp["as_of"] or "") >= (sink.get("as_of") or ""):
        sink.update(stamp)


_book_cache: dict[tuple, tuple[float, PricedBook]] = {}
_book_lock = threading.Lock()


def _book_version(s, pf: Portfolio) -> tuple:
    count, latest = s.execute(select(func.count(Position.id), func.max(Position.updated_at))
                              .where(Position.portfolio_id == pf.id)).one()
    return (pf.updated_at, pf.cash, int(count), latest)


def priced_book(catalog: Catalog, provider, user_id: int, portfolio_id: str | None = None,
                as_of: dt.datetime | None = None, *, ttl_s: float = BOOK_TTL_S) -> PricedBook:
    """The user's portfolio priced with ``provider`` (cached ``ttl_s`` seconds per version)."""
    with catalog.session() as s:  # one round of queries on the hot (cached) path
        if portfolio_id is None:
            pf = s.scalar(select(Portfolio).where(Portfolio.user_id == user_id, Portfolio.is_default.is_(True)))
        else:
            pf = s.get(Portfolio, portfolio_id)
            if pf is None or pf.user_id != user_id:
                raise LookupError(f"portfolio {portfolio_id} not found")
        version = _book_version(s, pf) if pf is not None else None
    if pf is None:
        pf = ensure_default_portfolio(catalog, user_id)
        with catalog.session() as s:
            version = _book_version(s, pf)
    # a live book (as_of None) is keyed by the minute it was priced in too: prices move by the
    # minute, so a cached book never outlives its minute and every process agrees within one
    minute = provider.now().floor("min") if as_of is None else None
    key = (pf.id, str(as_of), minute, getattr(provider, "data_version", ""), version)
    now = time.monotonic()
    with _book_lock:
        hit = _book_cache.get(key)
        if hit is not None and hit[0] > now:
            book = hit[1]
            note_pricing(provider, book.as_of)
            return _note_warnings(PricedBook(book.portfolio, book.positions, book.cash, book.equity, book.as_of, "hit",
                                             book.extras))
    frame = load_positions(catalog, pf.id)
    priced = price_positions(frame, provider, as_of=as_of)
    cash = float(pf.cash or 0.0)
    equity = float(pd.to_numeric(priced["market_value"], errors="coerce").fillna(0.0).sum()) + cash if len(priced) else cash
    book = PricedBook(pf, priced, cash, equity, priced.attrs.get("as_of") or dt.datetime.now(dt.timezone.utc), "miss")
    with _book_lock:
        for stale in [k for k, (exp, _) in _book_cache.items() if k[0] == pf.id or exp <= now]:
            _book_cache.pop(stale, None)
        _book_cache[key] = (now + ttl_s, book)
    note_pricing(provider, book.as_of)
    return _note_warnings(book)


def clear_book_cache() -> None:
    with _book_lock:
        _book_cache.clear()


def price_position_specs(provider, specs: list[PositionSpec], as_of=None) -> pd.DataFrame:
    """Price hypothetical positions (no catalog rows): the ``price_positions`` frame."""
    frame = pd.DataFrame({
        "position_id": [f"h{i}" for i in range(len(specs))],
        "symbol": [p.symbol for p in specs], "underlying": [p.underlying for p in specs],
        "type": [p.type for p in specs], "quantity": [p.quantity for p in specs],
        "entry_price": [p.entry_price if p.entry_price is not None else math.nan for p in specs],
        "strike": [p.strike for p in specs], "expiry": [p.expiry for p in specs],
        "option_right": [p.option_right for p in specs], "multiplier": [p.multiplier for p in specs],
        "strategy": [None] * len(specs), "tags": [[] for _ in specs],
    }, columns=list(INPUT_COLUMNS))
    priced = price_positions(frame, provider, as_of=as_of)
    note_pricing(provider, priced.attrs.get("as_of") or provider.now())
    return priced




MAX_HYPOTHETICAL_SYNC = 2_000
MAX_HYPOTHETICAL = 100_000


def parse_hypothetical(positions, limit: int = MAX_HYPOTHETICAL) -> list[PositionSpec]:
    """Spec 6.3 body ``positions`` -> specs; errors name ``positions[i].<field>``."""
    if not isinstance(positions, list) or not positions:
        raise PortfolioInputError("positions", "give a non-empty list of positions")
    if len(positions) > limit:
        raise PortfolioInputError("positions", f"at most {limit} positions per request")
    specs = []
    for i, item in enumerate(positions):
        if not isinstance(item, dict):
            raise PortfolioInputError(f"positions[{i}]", "expected an object")
        names = {k: f"positions[{i}].{k}" for k in ("ticker", "quantity", "type", "strike", "expiration", "price")}
        specs.append(resolve_position(item.get("ticker"), item.get("quantity"), item.get("type"), item.get("strike"),
                                      item.get("expiration"), item.get("price"), require_price=False, fields=names))
    return specs
