"""Trade lists (spec 7.7, 13.2) and portfolio exports (spec 13.1).

Trade lists: a session's changes (or a given list of trades) become orders with
``compute.tradelist`` (actions, MARKET for equities, LIMIT at the option's mid, DAY), written
as the broker basket CSV (``compute.tradelist.CSV_COLUMNS``), JSON, or FIX 4.4 NewOrderSingle
messages (one per line, SOH-separated fields). The file is stored in the artifact store under
``exports/u<user id>/<sha256>.<ext>``; ``export_url`` downloads it (the caller's own only).

Portfolio exports: ``positions``, ``greeks`` and ``exposures`` sections of the priced book as
CSV (sections one after another, each with a ``# section`` line and a header row) or JSON,
synchronously, or as an .xlsx workbook (openpyxl, one sheet per section) from a job.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re

import pandas as pd

from cluster.artifacts import ArtifactNotFound, ArtifactStore
from cluster.errors import InputError
from compute import tradelist
from compute.book import price_positions
from compute.jsonsafe import finite_or_none
from services.portfolio import views
from services.proforma import sessions

TRADE_FORMATS = tradelist.FORMATS
PORTFOLIO_FORMATS = ("csv", "json", "excel")
SECTIONS = ("positions", "greeks", "exposures")
BROKERS = ("generic",)
MAX_TRADES = 5_000
EXT = {"csv": "csv", "json": "json", "fix": "fix", "excel": "xlsx"}
MEDIA = {"csv": "text/csv", "json": "application/json", "fix": "application/octet-stream",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_FILE = re.compile(r"^[0-9a-f]{64}\.(csv|json|fix|xlsx)$")
INSTRUCTIONS = {
    "csv": "Import this file into your broker's basket trading tool (columns: " + ", ".join(tradelist.CSV_COLUMNS) + ")",
    "json": "One object per order, the CSV columns as fields",
    "fix": "FIX 4.4 NewOrderSingle (35=D) messages, one per line; send them on your FIX session",
}
#: Equity actions a trade may name, and the signed change each means.
_TRADE_SIGN = {"BUY": 1, "BUY_TO_COVER": 1, "BUY_TO_OPEN": 1, "BUY_TO_CLOSE": 1,
               "SELL": -1, "SELL_SHORT": -1, "SELL_TO_CLOSE": -1, "SELL_TO_OPEN": -1}


class ExportInputError(InputError):
    """Bad input to an export (format, broker, trades)."""


def check_format(fmt, allowed, field: str = "format") -> str:
    if not isinstance(fmt, str) or fmt.lower() not in allowed:
        raise ExportInputError(field, f"{fmt!r} is not supported; use one of {', '.join(allowed)}")
    return fmt.lower()


# -- orders ----------------------------------------------------------------------------------

def _mids(rows: list[dict], provider) -> dict[str, float]:
    """Mid (model or listed mark) of each option row, priced by the book engine."""
    options = [r for r in rows if r.get("option_right")]
    if not options:
        return {}
    frame = price_positions(sessions.frame_from_rows(options), provider)
    return {s: float(p) for s, p in zip(frame["symbol"], frame["price"]) if finite_or_none(p)}


def session_orders(row, provider) -> list[tradelist.Order]:
    """The orders that take the session's original book to its modified book."""
    changes = sessions.changes(row.original, row.modified)
    by_id = {r["position_id"]: r for r in list(row.original) + list(row.modified)}
    mids = _mids([by_id[c["position_id"]] for c in changes], provider)
    orders = []
    for c in changes:
        orders += tradelist.order_legs(c["symbol"], float(c["from"]), float(c["to"]), mids.get(c["symbol"]))
    return orders


def parse_trades(trades, provider) -> list[tradelist.Order]:
    """``POST /export/trades`` body ``trades`` -> orders; each from a zero position by its
    action (BUY, SELL, SELL_SHORT, BUY_TO_COVER, BUY_TO_OPEN, ...). Errors name
    ``trades[i].<field>``, all of them at once."""
    if not isinstance(trades, list) or not trades:
        raise ExportInputError("trades", "give a non-empty list of trades")
    if len(trades) > MAX_TRADES:
        raise ExportInputError("trades", f"at most {MAX_TRADES} trades")
    errors: list[tuple[str, str]] = []
    parsed: list[tuple[str, str, float]] = []
    for i, t in enumerate(trades):
        at = f"trades[{i}]"
        if not isinstance(t, dict):
            errors.append((at, "expected an object"))
            continue
        action = str(t.get("action") or "").strip().upper()
        if action not in _TRADE_SIGN:
            errors.append((f"{at}.action", f"{t.get('action')!r} is not one of {', '.join(_TRADE_SIGN)}"))
            continue
        qty = t.get("quantity")
        if isinstance(qty, bool) or not isinstance(qty, (int, float)) or not math.isfinite(qty) or not 0 < qty <= 1e9:
            errors.append((f"{at}.quantity", "must be a positive number (at most 1e9)"))
            continue
        symbol = str(t.get("symbol") or "").strip().upper()
        is_option = tradelist._is_option(symbol)
        if is_option != (action in tradelist.OPTION_ACTIONS):
            errors.append((f"{at}.action", f"{action} is an {'option' if action in tradelist.OPTION_ACTIONS else 'equity'} "
                                           f"action but {symbol or 'the symbol'} is {'an option' if is_option else 'not an OCC option symbol'}"))
            continue
        if not is_option:
            try:
                symbol = tradelist.normalize_ticker(symbol)
            except ValueError:
                errors.append((f"{at}.symbol", f"{t.get('symbol')!r} is not a ticker or OCC option symbol"))
                continue
        else:
            occ = tradelist.parse_occ(symbol)
            if occ.expiry < dt.date.today():
                errors.append((f"{at}.symbol", f"{symbol} has expired"))
                continue
            symbol = occ.occ
        parsed.append((action, symbol, float(qty)))
        # a trade from zero: opening actions only make sense as such, closing ones close that much
    if errors:
        raise sessions.SessionInputError(errors[0][0], errors[0][1], errors)
    option_rows = []
    for _, symbol, _ in parsed:
        if tradelist._is_option(symbol):
            occ = tradelist.parse_occ(symbol)
            option_rows.append({"position_id": symbol, "symbol": symbol, "underlying": occ.root,
                                "type": "LC" if occ.is_call else "LP", "quantity": 1.0, "entry_price": None,
                                "strike": occ.strike, "expiry": occ.expiry.isoformat(), "option_right": occ.right,
                                "multiplier": 100, "strategy": None, "tags": [], "entry_date": None})
    mids = _mids(option_rows, provider)
    orders = []
    for i, (action, symbol, qty) in enumerate(parsed):
        if tradelist._is_option(symbol) and symbol not in mids:
            errors.append((f"trades[{i}].symbol", f"no market data to price {symbol}"))
            continue
        common = tradelist.order_legs(symbol, 0.0, 1.0, mids.get(symbol))[0]
        orders.append(tradelist.Order(action, symbol, qty, common.order_type, common.limit_price, common.time_in_force,
                                      common.security_type, common.underlying, common.put_call, common.strike, common.expiry))
    if errors:
        raise sessions.SessionInputError(errors[0][0], errors[0][1], errors)
    return orders


def render_orders(orders: list[tradelist.Order], fmt: str, *, cl_ord_prefix: str = "SIGMA") -> bytes:
    if fmt == "csv":
        return tradelist.orders_csv(orders).encode()
    if fmt == "json":
        return json.dumps([o.as_dict() for o in orders], indent=1).encode()
    return b"\n".join(tradelist.orders_fix(orders, cl_ord_prefix=cl_ord_prefix)) + (b"\n" if orders else b"")


def store_file(store: ArtifactStore, user_id: int, data: bytes, ext: str) -> dict:
    ref = store.put(data, prefix=f"exports/u{int(user_id)}", ext=ext)
    name = ref.path.rsplit("/", 1)[-1]
    return {"file": name, "sha256": ref.sha, "size": ref.size, "export_url": f"/api/v1/export/files/{name}"}


def read_file(store: ArtifactStore, user_id: int, name: str) -> tuple[bytes, str]:
    """(bytes, media type) of the caller's export ``name``; LookupError when not theirs."""
    if not _FILE.match(name or ""):
        raise LookupError(f"export {name} not found")
    try:
        data = store.get(f"exports/u{int(user_id)}/{name}", name.split(".")[0])
    except (ArtifactNotFound, FileNotFoundError):
        raise LookupError(f"export {name} not found") from None
    return data, MEDIA[name.rsplit(".", 1)[1]]


def trade_list(orders: list[tradelist.Order], fmt: str, store: ArtifactStore, user_id: int, label: str) -> dict:
    data = render_orders(orders, fmt, cl_ord_prefix=re.sub(r"[^A-Za-z0-9]", "", label)[:20] or "SIGMA")
    out = {"format": fmt, "trades": [o.as_dict() for o in orders], "order_count": len(orders),
           "instructions": INSTRUCTIONS[fmt], **store_file(store, user_id, data, EXT[fmt])}
    if fmt == "fix":
        out["messages"] = [m.decode().replace("\x01", "|") for m in data.split(b"\n") if m]
    return out


def session_trade_list(catalog, provider, store, user_id: int, session_id: str, fmt) -> dict:
    fmt = check_format(fmt, TRADE_FORMATS)
    row = sessions.load_session(catalog, user_id, session_id)
    return dict(trade_list(session_orders(row, provider), fmt, store, user_id, row.id), session_id=row.id)


def export_trades(provider, store, user_id: int, body: dict) -> dict:
    fmt = check_format(body.get("format", "csv"), TRADE_FORMATS)
    broker = body.get("broker", "generic")
    if broker not in BROKERS:
        raise ExportInputError("broker", f"{broker!r} is not supported; use one of {', '.join(BROKERS)}")
    orders = parse_trades(body.get("trades"), provider)
    return dict(trade_list(orders, fmt, store, user_id, "SIGMA"), broker=broker)


# -- portfolio export ------------------------------------------------------------------------

def parse_include(raw) -> list[str]:
    if raw in (None, ""):
        return list(SECTIONS)
    items = [x.strip() for x in str(raw).split(",") if x.strip()]
    bad = [x for x in items if x not in SECTIONS]
    if bad or not items:
        raise ExportInputError("include", f"unknown section {bad[0] if bad else raw!r}; use some of {', '.join(SECTIONS)}")
    return list(dict.fromkeys(items))


POSITION_COLUMNS = ("id", "ticker", "underlying", "type", "quantity", "price", "value", "entry_price", "cost_basis", "pnl",
                    "pnl_percent", "sector", "strike", "expiration", "tags")


def portfolio_sections(book, include: list[str]) -> dict[str, list[dict]]:
    """Each section as a list of flat rows (column -> value)."""
    out: dict[str, list[dict]] = {}
    if "positions" in include:
        records = [views.position_record(r) for r in views.book_frame(book).to_dict(orient="records")]
        out["positions"] = [{c: (";".join(r[c]) if c == "tags" else r.get(c)) for c in POSITION_COLUMNS} for r in records]
    if "greeks" in include:
        rows = []
        for r in views.book_frame(book).to_dict(orient="records"):
            rec = views.position_record(r)
            rows.append({"id": rec["id"], "ticker": rec["ticker"], **{g: rec["position_greeks"][g] for g in
                                                                       ("delta", "gamma", "theta", "vega", "rho")},
                         "dollar_delta": rec["dollar_delta"]})
        totals = views.risk_greeks(book, include_after_expiry=False)["current"]
        rows.append({"id": "TOTAL", "ticker": None, **{g: totals[g] for g in ("delta", "gamma", "theta", "vega", "rho")},
                     "dollar_delta": totals["dollar_delta"]})
        out["greeks"] = rows
    if "exposures" in include:
        report = views.portfolio_exposures(book)
        rows = [{"group_by": "total", "group": "total", "measure": m, **{s: report["totals"][m][f"{s}_exposure"]
                                                                          for s in ("long", "short", "gross", "net")}}
                for m in ("notional", "delta")]
        for by in ("by_type", "by_sector", "by_strategy", "by_tag"):
            for g in report[by]:
                for m in ("notional", "delta"):
                    rows.append({"group_by": by[3:], "group": g["group"], "measure": m,
                                 **{s: g[m][s] for s in ("long", "short", "gross", "net")}})
        out["exposures"] = rows
    return out


def portfolio_csv(sections_: dict[str, list[dict]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for name, rows in sections_.items():
        writer.writerow([f"# {name}"])
        columns = list(rows[0]) if rows else []
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r[c] is None else r[c] for c in columns])
        writer.writerow([])
    return buf.getvalue()


def portfolio_xlsx(sections_: dict[str, list[dict]], as_of) -> bytes:
    """An .xlsx workbook (openpyxl), one sheet per section, a header row then the rows."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sections_.items():
        ws = wb.create_sheet(title=name)
        columns = list(rows[0]) if rows else []
        ws.append(columns)
        for r in rows:
            ws.append([r[c] for c in columns])
    wb.properties.title = f"Sigma portfolio export {as_of}"
    wb.properties.created = dt.datetime(2000, 1, 1)  # fixed: the same book gives the same bytes
    wb.properties.modified = dt.datetime(2000, 1, 1)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def portfolio_export(book, fmt: str, include: list[str]):
    """CSV text or JSON-ready dict of the book's sections."""
    sections_ = portfolio_sections(book, include)
    if fmt == "csv":
        return portfolio_csv(sections_)
    return {"portfolio_id": book.portfolio.id, "as_of": pd.Timestamp(book.as_of).isoformat(), "include": include,
            "sections": sections_}
