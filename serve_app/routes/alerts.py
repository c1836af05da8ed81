"""Alerts (portfolio spec section 12): active alerts on the priced book and the rules behind
them. The checks are in ``services.portfolio.alerts``."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from services.portfolio import alerts
from serve_app.deps import CallerDep, PortfolioId, StateDep, book_for
from serve_app.envelope import envelope
from serve_app.errors import service_errors
from serve_app.schemas.alerts import Alert, AlertRule, AlertRuleBody, RuleDeleted
from serve_app.schemas.common import Envelope, error_responses

router = APIRouter(tags=["alerts"])


@router.get("/alerts", summary="Active alerts: option expirations and your rules that hold on the current book",
            response_model=Envelope[list[Alert]], responses=error_responses(400, 401, 404, 429, 503))
def active_alerts(request: Request, caller: CallerDep, state: StateDep,
                  priority: str | None = Query(None, max_length=16), portfolio_id: PortfolioId = None):
    book = book_for(state, caller, portfolio_id)
    with service_errors():
        items = alerts.evaluate_alerts(state.catalog, caller.id, book, priority)
    return envelope(request, items, cache_status=book.cache_status)


@router.post("/alerts/rules", status_code=201, summary="Add an alert rule, e.g. sector_exposure > 0.20",
             response_model=Envelope[AlertRule], responses=error_responses(400, 401, 429))
def create_rule(request: Request, body: AlertRuleBody, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, alerts.create_rule(state.catalog, caller.id, body), status_code=201)


@router.get("/alerts/rules", summary="Your alert rules", response_model=Envelope[list[AlertRule]],
            responses=error_responses(401, 429))
def list_rules(request: Request, caller: CallerDep, state: StateDep):
    return envelope(request, alerts.list_rules(state.catalog, caller.id))


@router.delete("/alerts/rules/{rule_id}", summary="Delete an alert rule", response_model=Envelope[RuleDeleted],
               responses=error_responses(401, 404, 429))
def delete_rule(request: Request, rule_id: str, caller: CallerDep, state: StateDep):
    with service_errors():
        alerts.delete_rule(state.catalog, caller.id, rule_id)
    return envelope(request, {"rule_id": rule_id, "deleted": True})
