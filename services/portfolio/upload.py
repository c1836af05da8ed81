"""Position CSV import: validate every row, then write all of them in one transaction or none.

Format (docs/spec/reference.md): header row, case-insensitive names ``ticker, quantity, entry_price,
entry_date, tags`` (other columns ignored; entry_date and tags optional). Quantity is signed
(contracts for options); options are OCC symbols (``SPY250919C00460000``); 0 < entry_price <= 1e7
(per share; for options the per-share premium); entry_date YYYY-MM-DD and not in the future;
tags a quoted comma list (``"#tech, core"``). A symbol already in the portfolio is updated
(quantity, entry price and date, and its tags when the file has a tags column).
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import select

from cluster.catalog import Catalog, Position
from cluster.catalog.models import utcnow
from compute.limits import price_problem
from services.portfolio import service

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
REQUIRED_COLUMNS = ("ticker", "quantity", "entry_price")
OPTIONAL_COLUMNS = ("entry_date", "tags")


class UploadRejected(Exception):
    """The file was rejected whole; ``errors`` lists every problem with its line and column."""

    def __init__(self, message: str, errors: list[dict]):
        super().__init__(message)
        self.message = message
        self.errors = errors


def _error(line: int, field: str, reason: str) -> dict:
    return {"code": "INVALID_FILE", "line": line, "field": field, "message": f"line {line}, {field}: {reason}"}


def parse_csv(content: bytes) -> tuple[list[dict], bool]:
    """Validated rows ``{line, spec, entry_date, tags}`` and whether the file has a tags column;
    ``UploadRejected`` listing every bad row otherwise."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UploadRejected("the file is not UTF-8 text", [_error(1, "file", "not UTF-8 encoded text")]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise UploadRejected("the file is empty", [_error(1, "file", "empty file: expected a header row")]) from None
    except csv.Error as exc:
        raise UploadRejected("the file is not valid CSV", [_error(1, "file", str(exc))]) from None
    columns = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise UploadRejected(
            f"missing column(s): {', '.join(missing)}",
            [_error(1, c, f"required column missing (found: {', '.join(h for h in columns if h) or 'none'})") for c in missing],
        )
    index = {c: columns.index(c) for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if c in columns}
    has_tags = "tags" in index
    rows, errors, seen = [], [], {}
    today = dt.date.today()
    line = 1
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue

            def cell(name: str) -> str:
                pos = index.get(name)
                return record[pos].strip() if pos is not None and pos < len(record) else ""

            row_errors = []
            price = cell("entry_price")
            problem = price_problem(price) if price else "is required"
            if problem is not None:
                row_errors.append(_error(line, "entry_price", f"{price!r} {problem}" if price else problem))
            spec = None
            try:
                # The bounds of compute.limits (quantity, strike and, with a good price, the
                # notional) as on POST /positions.
                spec = service.resolve_position(cell("ticker"), cell("quantity") or None,
                                                price=None if problem else price, require_price=False,
                                                fields={"price": "entry_price"})
            except service.PortfolioInputError as exc:
                row_errors.append(_error(line, exc.field, exc.reason))
            entry_date = None
            raw_date = cell("entry_date")
            if raw_date:
                try:
                    entry_date = dt.date.fromisoformat(raw_date)
                    if entry_date > today:
                        row_errors.append(_error(line, "entry_date", f"{raw_date} is in the future"))
                except ValueError:
                    row_errors.append(_error(line, "entry_date", f"{raw_date!r} is not a date in YYYY-MM-DD format"))
            tags = [t.strip() for t in cell("tags").split(",") if t.strip()] if has_tags else []
            if any(len(t) > service.MAX_TAG_NAME for t in tags):
                row_errors.append(_error(line, "tags", f"tag names have at most {service.MAX_TAG_NAME} characters"))
            if spec is not None:
                if spec.symbol in seen:
                    row_errors.append(_error(line, "ticker", f"{spec.symbol} already appears on line {seen[spec.symbol]}"))
                else:
                    seen[spec.symbol] = line
            if row_errors:
                errors.extend(row_errors)
                continue
            rows.append({"line": line, "spec": spec, "entry_price": spec.entry_price, "entry_date": entry_date,
                         "tags": list(dict.fromkeys(tags))})
    except csv.Error as exc:
        errors.append(_error(line + 1, "file", f"malformed CSV: {exc}"))
    if errors:
        bad_lines = sorted({e["line"] for e in errors})
        raise UploadRejected(f"{len(bad_lines)} bad row(s); nothing was imported (lines {', '.join(map(str, bad_lines[:20]))}"
                             f"{', ...' if len(bad_lines) > 20 else ''})", errors)
    if not rows:
        raise UploadRejected("the file has no positions", [_error(2, "file", "no data rows after the header")])
    return rows, has_tags


def import_csv(catalog: Catalog, user_id: int, content: bytes, portfolio_id: str | None = None) -> dict:
    """Parse and import a positions CSV into the user's portfolio in one unit of work."""
    pf = service.get_portfolio(catalog, user_id, portfolio_id)
    rows, has_tags = parse_csv(content)
    created = updated = 0
    with catalog.session() as s:
        existing = {p.symbol: p for p in s.scalars(select(Position).where(Position.portfolio_id == pf.id))}
        tag_names = sorted({t for r in rows for t in r["tags"]})
        tags = {t.name: t for t in service._tags_for_names(s, user_id, tag_names)}
        now = utcnow()
        for r in rows:
            spec = r["spec"]
            pos = existing.get(spec.symbol)
            if pos is None:
                pos = Position(portfolio_id=pf.id, user_id=user_id, symbol=spec.symbol, underlying=spec.underlying,
                               strike=spec.strike, expiry=spec.expiry, option_right=spec.option_right,
                               multiplier=spec.multiplier, created_at=now)
                s.add(pos)
                created += 1
            else:
                updated += 1
            pos.type, pos.quantity, pos.entry_price = spec.type, spec.quantity, r["entry_price"]
            pos.entry_date = r["entry_date"] or pos.entry_date or dt.date.today()
            pos.updated_at = now
            s.flush()
            if has_tags:
                service._set_tags(s, pos, [tags[t] for t in r["tags"]])
        service._touch_portfolios(s, user_id, pf.id)
    return {
        "portfolio_id": pf.id,
        "positions_created": created,
        "positions_updated": updated,
        "message": "Portfolio uploaded successfully.",
    }
