"""Alerts (portfolio spec section 12): active alerts on the priced book and the rules behind
them. The checks are in ``services.portfolio.alerts``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request

from services.portfolio import alerts
from serve_app.deps import Caller, current_user, get_state
from serve_app.envelope import envelope
from serve_app.routes.portfolio import PortfolioId, book_for, service_errors
from serve_app.state import AppState

router = APIRouter(tags=["alerts"])


@router.get("/alerts", summary="Active alerts: option expirations and your rules that hold on the current book")
def active_alerts(request: Request, priority: str | None = Query(None, max_length=16),
                  portfolio_id: str | None = PortfolioId, caller: Caller = Depends(current_user),
                  state: AppState = Depends(get_state)):
    book = book_for(state, caller, portfolio_id)
    with service_errors():
        items = alerts.evaluate_alerts(state.catalog, caller.id, book, priority)
    return envelope(request, items, cache_status=book.cache_status)


@router.post("/alerts/rules", status_code=201, summary="Add an alert rule, e.g. sector_exposure > 0.20")
def create_rule(request: Request, body: Any = Body(...), caller: Caller = Depends(current_user),
                state: AppState = Depends(get_state)):
    with service_errors():
        return envelope(request, alerts.create_rule(state.catalog, caller.id, body), status_code=201)


@router.get("/alerts/rules", summary="Your alert rules")
def list_rules(request: Request, caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    return envelope(request, alerts.list_rules(state.catalog, caller.id))


@router.delete("/alerts/rules/{rule_id}", summary="Delete an alert rule")
def delete_rule(request: Request, rule_id: str, caller: Caller = Depends(current_user),
                state: AppState = Depends(get_state)):
    with service_errors():
        alerts.delete_rule(state.catalog, caller.id, rule_id)
    return envelope(request, {"rule_id": rule_id, "deleted": True})
