"""What routes and jobs call: session views with their impact, the single-trade what-if."""

from __future__ import annotations

import threading
import time

from compute.instruments import OPTION_MULTIPLIER
from compute.jsonsafe import finite_or_none
from services.portfolio import service as portfolio_service
from services.portfolio import views
from services.proforma import impact as impact_mod
from services.proforma import risk_metrics, sessions
from services.proforma.sessions import SessionInputError

TRADE_ACTIONS = ("buy", "sell", "sell_short", "buy_to_cover")


def _positions(book, provider) -> tuple[list[dict], list[str]]:
    records = [views.position_record(r) for r in views.book_frame(book).to_dict(orient="records")]
    warnings = risk_metrics.add_risk_metrics(book, provider, records)
    return records, warnings


def _cash_required(before_book, after_book) -> float | None:
    """What the trades cost at current prices (buys positive, sells negative)."""
    mv = {}
    for frame, sign in ((before_book.positions, -1.0), (after_book.positions, 1.0)):
        for pid, value in zip(frame["position_id"], frame["market_value"]):
            mv[pid] = mv.get(pid, 0.0) + sign * (finite_or_none(value) or 0.0)
    return round(sum(mv.values()), 2)


#: The original book of a session never changes: its priced book and figures are kept per
#: process for ``ORIGINAL_TTL_S`` seconds at most, within one clock minute (keyed by session,
#: minute, market data version and options).
ORIGINAL_TTL_S = 30.0
_original_cache: dict[tuple, tuple[float, object, dict, tuple]] = {}
_original_lock = threading.Lock()


def _original(row, provider, mc_paths: int, include_stress: bool, with_positions: bool):
    def build():
        book = sessions.priced(row.original, provider, portfolio_id=row.portfolio_id, name=row.name, cash=row.cash)
        figures = impact_mod.book_figures(book, provider, mc_paths=mc_paths, include_stress=include_stress)
        positions = _positions(book, provider) if with_positions else (None, [])
        return book, figures, positions

    if row.id is None:
        return build()
    # keyed by the clock minute too: a session's after-book is priced live, so its before-book
    # must be priced in the same minute or the impact would show a price move as a trade's effect
    key = (row.id, provider.now().floor("min"), getattr(provider, "data_version", ""), mc_paths, include_stress,
           with_positions)
    now = time.monotonic()
    with _original_lock:
        hit = _original_cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1], dict(hit[2]), hit[3]  # shallow: describe only sets keys on the figures dict
    book, figures, positions = build()
    with _original_lock:
        for stale in [k for k, v in _original_cache.items() if v[0] <= now]:
            _original_cache.pop(stale, None)
        _original_cache[key] = (now + ORIGINAL_TTL_S, book, dict(figures), positions)
    return book, figures, positions


def describe(row, provider, *, mc_paths: int = impact_mod.MC_PATHS, include_stress: bool = True,
             with_positions: bool = True) -> dict:
    """A session as spec 7.2 shows it: both books' figures, the changes and the impact."""
    before_book, before, (before_positions, w1) = _original(row, provider, mc_paths, include_stress, with_positions)
    after_book = sessions.priced(row.modified, provider, portfolio_id=row.portfolio_id, name=row.name, cash=row.cash)
    after = impact_mod.book_figures(after_book, provider, mc_paths=mc_paths, include_stress=include_stress)
    out = {
        **sessions.session_dict(row),
        "original_portfolio": before,
        "modified_portfolio": after,
        "changes": sessions.changes(row.original, row.modified),
        "impact": dict(impact_mod.impact(before, after), cash_required=_cash_required(before_book, after_book)),
    }
    if with_positions:
        out["original_portfolio"]["positions"] = before_positions
        out["modified_portfolio"]["positions"], w2 = _positions(after_book, provider)
        out["impact"]["warnings"] = list(dict.fromkeys(out["impact"]["warnings"] + w1 + w2))
    return out


def get_session(catalog, provider, user_id: int, session_id: str, **kw) -> dict:
    return describe(sessions.load_session(catalog, user_id, session_id), provider, **kw)


def modify(catalog, provider, user_id: int, session_id: str, modifications, **kw) -> dict:
    row = sessions.modify_session(catalog, provider, user_id, session_id, modifications)
    return describe(row, provider, **kw)


def reset(catalog, provider, user_id: int, session_id: str) -> dict:
    return describe(sessions.reset_session(catalog, user_id, session_id), provider)


# -- single trade (spec 7.5) -----------------------------------------------------------------

def trade_modifications(rows: list[dict], body: dict) -> list[dict]:
    """The session modification a single trade means on the current book."""
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise SessionInputError("symbol", "is required: a ticker or OCC option symbol")
    action = str(body.get("action") or "").strip().lower()
    if action not in TRADE_ACTIONS:
        raise SessionInputError("action", f"{body.get('action')!r} is not one of {', '.join(TRADE_ACTIONS)}")
    qty = body.get("quantity")
    if isinstance(qty, bool) or not isinstance(qty, (int, float)) or not 0 < qty <= 1e9:
        raise SessionInputError("quantity", "must be a positive number of at most 1e9 (shares or contracts)")
    sign = 1.0 if action in ("buy", "buy_to_cover") else -1.0
    names = {k: k for k in ("ticker", "quantity", "type", "strike", "expiration", "price")}
    names["ticker"] = "symbol"
    spec = portfolio_service.resolve_position(symbol, sign * qty, None, None, None, None, require_price=False, fields=names)
    held = next((r for r in rows if r["symbol"] == spec.symbol), None)
    if held is None:
        if action in ("sell", "buy_to_cover"):
            raise SessionInputError("action", f"{action} needs a held {'long' if action == 'sell' else 'short'} "
                                              f"position in {spec.symbol}; none is held")
        return [{"position_id": "new", "ticker": spec.symbol, "quantity": sign * qty}]
    new_qty = held["quantity"] + sign * qty
    if action == "sell" and not (held["quantity"] > 0 and new_qty >= 0):
        raise SessionInputError("quantity", f"sell closes at most the long {held['quantity']:g}; use sell_short beyond it")
    if action == "buy_to_cover" and not (held["quantity"] < 0 and new_qty <= 0):
        raise SessionInputError("quantity", f"buy_to_cover covers at most the short {-held['quantity']:g}; use buy beyond it")
    if action == "buy" and held["quantity"] < 0:
        raise SessionInputError("action", f"{spec.symbol} is held short; use buy_to_cover")
    if action == "sell_short" and held["quantity"] > 0:
        raise SessionInputError("action", f"{spec.symbol} is held long; use sell")
    return [{"position_id": held["position_id"], "new_quantity": new_qty}]


def trade_whatif(catalog, provider, user_id: int, body: dict, portfolio_id: str | None = None) -> dict:
    """The impact of one trade on the current book (nothing is written)."""
    pf = portfolio_service.get_portfolio(catalog, user_id, portfolio_id)
    rows = sessions.rows_from_frame(portfolio_service.load_positions(catalog, pf.id))
    include_stress = body.get("include_stress_scenarios", True)
    if not isinstance(include_stress, bool):
        raise SessionInputError("include_stress_scenarios", "must be true or false")
    mods = trade_modifications(rows, body)
    try:
        modified = sessions.apply_modifications(rows, mods, provider, field_prefix="trade")
    except SessionInputError as exc:
        field = {"ticker": "symbol", "expiration": "symbol", "new_quantity": "quantity"}.get(
            exc.field.rsplit(".", 1)[-1], exc.field.rsplit(".", 1)[-1])
        raise SessionInputError(field, exc.reason) from None
    from types import SimpleNamespace

    row = SimpleNamespace(id=None, name="trade", status="transient", portfolio_id=pf.id, cash=float(pf.cash or 0.0),
                          original=rows, modified=modified, created_at=None, updated_at=None)
    out = describe(row, provider, include_stress=include_stress, with_positions=False)
    for key in ("session_id", "name", "status", "base_portfolio", "created_at", "updated_at", "position_count", "change_count"):
        out.pop(key, None)
    out["trade"] = {"symbol": body["symbol"].strip().upper(), "action": str(body["action"]).lower(),
                    "quantity": body["quantity"], "multiplier": OPTION_MULTIPLIER if len(body["symbol"].strip()) > 15 else 1}
    return out


def get_portfolio_id(catalog, user_id: int, portfolio_id: str | None) -> str:
    """The caller's portfolio id (LookupError when not theirs)."""
    return portfolio_service.get_portfolio(catalog, user_id, portfolio_id).id


def apply_hedge(catalog, provider, user_id: int, session_id: str, body: dict) -> dict:
    """Add the ``rank``-th hedge of a completed hedge job of the caller to the session."""
    from cluster.catalog import Job
    from services.proforma import hedge

    job_id, rank = body.get("job_id"), body.get("rank", 1)
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise SessionInputError("rank", "must be a positive integer")
    row = sessions.load_session(catalog, user_id, session_id)
    with catalog.session() as s:
        job = s.get(Job, job_id) if isinstance(job_id, str) else None
        if job is None or job.user_id != user_id or job.kind != "proforma.hedge":
            raise SessionInputError("job_id", f"{job_id!r} is not one of your hedge jobs")
        if job.status != "completed":
            raise SessionInputError("job_id", f"the hedge job is {job.status}, not completed")
        hedges = (job.result or {}).get("hedges") or []
    if rank > len(hedges):
        raise SessionInputError("rank", f"the job found {len(hedges)} hedge(s)")
    mods = hedge.hedge_modifications(row.modified, hedges[rank - 1])
    return modify(catalog, provider, user_id, session_id, mods)
