"""Component detail of GET /healthz?ticker=&pack_id=&model_id= (authenticated)."""

from __future__ import annotations

from serve_app.deps import Caller
from serve_app.errors import invalid
from serve_app.market import ticker_health
from serve_app.state import AppState
from compute.instruments import InvalidTicker, normalize_ticker


def component_detail(state: AppState, caller: Caller, *, ticker: str | None, pack_id: str | None, model_id: str | None) -> dict:
    out: dict = {}
    if ticker:
        try:
            symbol = normalize_ticker(ticker)
        except InvalidTicker:
            raise invalid("ticker", "must be a ticker symbol such as AAPL") from None
        out["ticker"] = ticker_health(state, symbol)
    if pack_id:
        from serve_app.lab_health import pack_health

        out["pack"] = pack_health(state, caller, pack_id)
    if model_id:
        from serve_app.lab_health import model_health

        out["model"] = model_health(state, caller, model_id)
    return out
