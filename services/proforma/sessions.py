"""Modeling sessions (spec 7.1-7.4): catalog rows holding the base book and a modified copy.

A session copies the caller's book (``"current"``: the default portfolio, or a portfolio id)
into two position lists: ``original`` (frozen) and ``modified`` (what PUT changes). Rows have
the ``compute.book.price_positions`` input shape (dates as ISO text), so both books are priced
by the same engine as ``GET /portfolio``; cash is the portfolio's cash when the session opened
and is not changed by modifications (the what-if is on positions; ``cash_required`` in the
impact says what the trades would cost).

Modifications are all-or-nothing: every row is validated first and the request is rejected
with every bad row named (``SessionInputError.errors``); the session is written only when all
rows pass, in one catalog unit of work.

Modification rows (``modifications[i]``):

- ``{position_id, new_quantity}`` (or ``quantity``): change the quantity. The sign must stay
  the position's side unless ``allow_flip: true`` (a long turned short must be said so);
  ``0`` closes.
- ``{position_id, action: "close"}``: close the position.
- ``{position_id: "new", ticker, quantity, type?, strike?, expiration?}``: add a position
  (OCC symbols accepted; an option by ticker needs type LC/LP/SC/SP, strike and expiration).
  A new position enters at the current price (its P&L starts at 0). Expired options and
  tickers without market data are rejected.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from types import SimpleNamespace

import numpy as np
import pandas as pd
from sqlalchemy import select

from cluster.catalog import Catalog, ModelingSession
from cluster.catalog.models import utcnow
from cluster.errors import InputError
from compute.book import INPUT_COLUMNS, price_positions
from services.portfolio import service as portfolio_service

MAX_SESSIONS_PER_USER = 200
MAX_MODIFICATIONS = 1_000
MAX_NAME = 120


class SessionInputError(InputError):
    """Bad input to a modeling session; ``errors`` lists every bad row (field, reason)."""

    def __init__(self, field: str, reason: str, errors: list[tuple[str, str]] | None = None):
        super().__init__(field, reason)
        self.errors = errors or [(field, reason)]


# -- rows ------------------------------------------------------------------------------------

def _iso(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.datetime)):
        return (value.date() if isinstance(value, dt.datetime) else value).isoformat()
    return str(value)


def _num(value) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def rows_from_frame(frame: pd.DataFrame) -> list[dict]:
    """``price_positions`` input rows as JSON-ready dicts (what a session stores)."""
    out = []
    for r in frame.to_dict(orient="records"):
        out.append({
            "position_id": str(r["position_id"]), "symbol": r["symbol"], "underlying": r["underlying"],
            "type": r["type"], "quantity": float(r["quantity"]), "entry_price": _num(r.get("entry_price")),
            "strike": _num(r.get("strike")), "expiry": _iso(r.get("expiry")),
            "option_right": r.get("option_right") if isinstance(r.get("option_right"), str) else None,
            "multiplier": int(r.get("multiplier") or 1),
            "strategy": r.get("strategy") if isinstance(r.get("strategy"), str) else None,
            "tags": list(r.get("tags") or []), "entry_date": _iso(r.get("entry_date")),
        })
    return out


def frame_from_rows(rows: list[dict]) -> pd.DataFrame:
    """Stored rows -> the ``price_positions`` input frame."""
    if not rows:
        from compute.book import empty_positions

        return empty_positions()
    frame = pd.DataFrame(rows)
    frame["expiry"] = pd.Series([dt.date.fromisoformat(e) if isinstance(e, str) else None for e in frame["expiry"]], dtype=object)
    frame["entry_date"] = pd.Series([dt.date.fromisoformat(e) if isinstance(e, str) else None for e in frame["entry_date"]],
                                    dtype=object)
    frame["entry_price"] = pd.to_numeric(frame["entry_price"], errors="coerce")
    return frame[list(INPUT_COLUMNS) + [c for c in frame.columns if c not in INPUT_COLUMNS]]


def priced(rows: list[dict], provider, *, portfolio_id: str, name: str, cash: float, as_of=None):
    """A ``PricedBook`` of stored rows: the same object the portfolio and risk engines read."""
    positions = price_positions(frame_from_rows(rows), provider, as_of=as_of)
    equity = float(pd.to_numeric(positions["market_value"], errors="coerce").fillna(0.0).sum()) + cash if len(positions) else cash
    return portfolio_service.PricedBook(SimpleNamespace(id=portfolio_id, name=name), positions, cash, equity,
                                        positions.attrs.get("as_of") or dt.datetime.now(dt.timezone.utc), "miss")


# -- sessions --------------------------------------------------------------------------------

def session_dict(row: ModelingSession) -> dict:
    return {"session_id": row.id, "name": row.name, "status": row.status, "base_portfolio": row.portfolio_id,
            "created_at": row.created_at.isoformat() if row.created_at else None,
            "updated_at": row.updated_at.isoformat() if row.updated_at else None,
            "position_count": len(row.modified or []), "change_count": len(changes(row.original, row.modified))}


def _owned(s, user_id: int, session_id: str) -> ModelingSession:
    row = s.get(ModelingSession, session_id)
    if row is None or row.user_id != user_id or row.status != "active":
        raise LookupError(f"modeling session {session_id} not found")
    return row


def create_session(catalog: Catalog, user_id: int, body: dict) -> dict:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SessionInputError("name", "is required")
    if len(name) > MAX_NAME:
        raise SessionInputError("name", f"at most {MAX_NAME} characters")
    base = body.get("base_portfolio", "current")
    if base is not None and not isinstance(base, str):
        raise SessionInputError("base_portfolio", "'current' or a portfolio id")
    try:
        pf = portfolio_service.get_portfolio(catalog, user_id, None if base in (None, "", "current") else base)
    except LookupError:
        raise SessionInputError("base_portfolio", f"portfolio {base!r} not found") from None
    rows = rows_from_frame(portfolio_service.load_positions(catalog, pf.id))
    with catalog.session() as s:
        count = len(list(s.scalars(select(ModelingSession.id).where(ModelingSession.user_id == user_id,
                                                                    ModelingSession.status == "active"))))
        if count >= MAX_SESSIONS_PER_USER:
            raise SessionInputError("name", f"at most {MAX_SESSIONS_PER_USER} open sessions; delete one first")
        row = ModelingSession(user_id=user_id, portfolio_id=pf.id, name=name.strip(), status="active",
                              original=rows, modified=[dict(r) for r in rows], cash=float(pf.cash or 0.0))
        s.add(row)
        s.flush()
        return session_dict(row)


def list_sessions(catalog: Catalog, user_id: int) -> list[dict]:
    with catalog.session() as s:
        rows = s.scalars(select(ModelingSession).where(ModelingSession.user_id == user_id, ModelingSession.status == "active")
                         .order_by(ModelingSession.created_at.desc(), ModelingSession.id))
        return [session_dict(r) for r in rows]


def load_session(catalog: Catalog, user_id: int, session_id: str) -> ModelingSession:
    """The caller's open session (detached row); LookupError when missing or not theirs."""
    with catalog.session() as s:
        row = _owned(s, user_id, session_id)
        s.expunge(row)
        return row


def delete_session(catalog: Catalog, user_id: int, session_id: str) -> None:
    with catalog.session() as s:
        s.delete(_owned(s, user_id, session_id))


def reset_session(catalog: Catalog, user_id: int, session_id: str) -> ModelingSession:
    with catalog.session() as s:
        row = _owned(s, user_id, session_id)
        row.modified = [dict(r) for r in row.original]
        row.updated_at = utcnow()
        s.flush()
        s.expunge(row)
        return row


def changes(original: list[dict], modified: list[dict]) -> list[dict]:
    """Quantity changes between two row lists, by position id: modify, close or add."""
    before = {r["position_id"]: r for r in original or []}
    after = {r["position_id"]: r for r in modified or []}
    out = []
    for pid, r in before.items():
        new = after.get(pid)
        if new is None:
            out.append({"action": "close", "position_id": pid, "symbol": r["symbol"], "field": "quantity",
                        "from": r["quantity"], "to": 0.0})
        elif new["quantity"] != r["quantity"]:
            out.append({"action": "modify", "position_id": pid, "symbol": r["symbol"], "field": "quantity",
                        "from": r["quantity"], "to": new["quantity"]})
    for pid, r in after.items():
        if pid not in before:
            out.append({"action": "add", "position_id": pid, "symbol": r["symbol"], "field": "quantity",
                        "from": 0.0, "to": r["quantity"]})
    return out


# -- modifications ---------------------------------------------------------------------------

def _quantity(raw, field: str, errors: list) -> float | None:
    if isinstance(raw, bool):
        errors.append((field, "must be a number"))
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        errors.append((field, f"{raw!r} is not a number"))
        return None
    if not math.isfinite(value) or abs(value) > 1e9:
        errors.append((field, "must be a finite number of at most 1e9 in size"))
        return None
    return value


def apply_modifications(rows: list[dict], modifications, provider, *, today: dt.date | None = None,
                        field_prefix: str = "modifications") -> list[dict]:
    """The modified rows after ``modifications`` (validated all together; see module docs).

    Raises ``SessionInputError`` listing every bad row; ``rows`` is never changed.
    """
    if not isinstance(modifications, list) or not modifications:
        raise SessionInputError(field_prefix, "give a non-empty list of modifications")
    if len(modifications) > MAX_MODIFICATIONS:
        raise SessionInputError(field_prefix, f"at most {MAX_MODIFICATIONS} modifications per request")
    today = today or dt.date.today()
    out = {r["position_id"]: dict(r) for r in rows}
    symbols = {r["symbol"]: r["position_id"] for r in rows}
    errors: list[tuple[str, str]] = []
    new_specs: list[tuple[int, str, object]] = []
    touched: set[str] = set()
    for i, mod in enumerate(modifications):
        at = f"{field_prefix}[{i}]"
        if not isinstance(mod, dict):
            errors.append((at, "expected an object"))
            continue
        pid = mod.get("position_id")
        if not isinstance(pid, str) or not pid:
            errors.append((f"{at}.position_id", "is required: a position id of the session or 'new'"))
            continue
        if pid == "new":
            names = {k: f"{at}.{k}" for k in ("ticker", "quantity", "type", "strike", "expiration", "price")}
            try:
                spec = portfolio_service.resolve_position(mod.get("ticker"), mod.get("quantity"), mod.get("type"),
                                                          mod.get("strike"), mod.get("expiration"), None,
                                                          require_price=False, fields=names)
            except InputError as exc:
                errors.append((exc.field, exc.reason))
                continue
            if spec.expiry is not None and spec.expiry < today:
                errors.append((f"{at}.expiration", f"{spec.expiry.isoformat()} has expired"))
                continue
            if abs(spec.quantity) > 1e9:
                errors.append((f"{at}.quantity", "at most 1e9 in size"))
                continue
            if spec.symbol in symbols:
                errors.append((f"{at}.ticker", f"{spec.symbol} is already in the session as {symbols[spec.symbol]}; "
                                               "modify it by position_id"))
                continue
            new_id = f"new_{uuid.uuid4().hex[:12]}"
            symbols[spec.symbol] = new_id
            new_specs.append((i, new_id, spec))
            continue
        if pid not in out:
            errors.append((f"{at}.position_id", f"position {pid} is not in this session"))
            continue
        if pid in touched:
            errors.append((f"{at}.position_id", f"position {pid} is modified twice in one request"))
            continue
        touched.add(pid)
        row = out[pid]
        action = mod.get("action")
        if action not in (None, "modify", "close"):
            errors.append((f"{at}.action", "use 'modify' or 'close' (or omit it)"))
            continue
        if action == "close":
            out.pop(pid)
            continue
        raw = mod.get("new_quantity", mod.get("quantity"))
        if raw is None:
            errors.append((f"{at}.new_quantity", "is required (or action: 'close')"))
            continue
        qty = _quantity(raw, f"{at}.new_quantity", errors)
        if qty is None:
            continue
        if qty == 0:
            out.pop(pid)
            continue
        if (qty > 0) != (row["quantity"] > 0):
            if mod.get("allow_flip") is not True:
                side = "long" if row["quantity"] > 0 else "short"
                errors.append((f"{at}.new_quantity", f"{qty:g} flips a {side} position to the other side; "
                                                     "send allow_flip: true to mean it"))
                continue
            row["type"] = _flipped_type(row["type"])
        row["quantity"] = qty
    if new_specs and not errors:
        frame = portfolio_service.price_position_specs(provider, [spec for _, _, spec in new_specs])
        for (i, new_id, spec), price, underlying_price in zip(new_specs, frame["price"], frame["underlying_price"]):
            if not (np.isfinite(underlying_price) and underlying_price > 0) or not (np.isfinite(price) and price > 0):
                errors.append((f"{field_prefix}[{i}].ticker", f"no market data for {spec.symbol}"))
                continue
            out[new_id] = {
                "position_id": new_id, "symbol": spec.symbol, "underlying": spec.underlying, "type": spec.type,
                "quantity": float(spec.quantity), "entry_price": round(float(price), 4),
                "strike": spec.strike, "expiry": _iso(spec.expiry), "option_right": spec.option_right,
                "multiplier": int(spec.multiplier), "strategy": None, "tags": [], "entry_date": today.isoformat(),
            }
    if errors:
        raise SessionInputError(errors[0][0], errors[0][1] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
                                errors)
    return list(out.values())


_FLIP = {"LONG": "SHORT", "SHORT": "LONG", "LC": "SC", "SC": "LC", "LP": "SP", "SP": "LP"}


def _flipped_type(ptype: str) -> str:
    return _FLIP.get(ptype, ptype)


def modify_session(catalog: Catalog, provider, user_id: int, session_id: str, modifications) -> ModelingSession:
    """Apply modifications all-or-nothing; the updated session row (detached)."""
    row = load_session(catalog, user_id, session_id)
    rows = apply_modifications(row.modified, modifications, provider)
    with catalog.session() as s:
        fresh = _owned(s, user_id, session_id)
        fresh.modified = rows
        fresh.updated_at = utcnow()
        s.flush()
        s.expunge(fresh)
        return fresh
