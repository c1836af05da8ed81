"""Live signals (Lab spec "Signals API"): generate one from a trained model's newest bar, list,
read and cancel them, rank models by their settled signals; subscribe a model to be scored at
each bar close by the platform scheduler. The rules are in ``services.lab.signals`` and
``services.lab.subscriptions``."""

from __future__ import annotations

from fastapi import APIRouter, Query

from services.lab import signals, subscriptions
from serve_app.deps import CallerDep, OffsetQuery, StateDep
from serve_app.envelope import SigmaJSONResponse
from serve_app.errors import ApiError, input_error, not_found, service_errors
from serve_app.market import get_provider
from serve_app.schemas import signals as schemas
from serve_app.schemas.common import IsoDate, IsoDateTime, also, error_responses

router = APIRouter(tags=["lab signals"])


@router.post("/signals/generate", summary="Score the model's newest bar; a signal when it clears the thresholds",
             response_model=schemas.Generated,
             responses={**also(201, schemas.Generated, "A new signal was stored"),
                        **error_responses(400, 401, 404, 429, 503)},
             response_description="No new signal: the decision says why (or the bar's signal already existed)")
def generate(body: schemas.GenerateRequest, caller: CallerDep, state: StateDep):
    try:
        view, created, decision = signals.generate_signal(state.catalog, state.store, get_provider(state), caller.id,
                                                          body.model_id, body.as_of,
                                                          allowed_modules=state.settings.model_modules)
    except LookupError:
        raise not_found("model", body.model_id) from None
    return SigmaJSONResponse({"signal": view, "created": created, "decision": decision},
                             status_code=201 if created else 200)


@router.get("/signals", summary="Your live signals, newest bar first", response_model=schemas.SignalList,
            responses=error_responses(400, 401, 429))
def list_signals(caller: CallerDep, state: StateDep,
                 model_id: str | None = Query(None, max_length=80), status: str | None = Query(None, max_length=16),
                 start: IsoDateTime | None = None, end: IsoDateTime | None = None,
                 limit: int = Query(20, ge=1, le=500), offset: OffsetQuery = 0):
    with service_errors():
        page = signals.list_signals(state.catalog, get_provider(state), caller.id, model_id=model_id, status=status,
                                    start=start, end=end, limit=limit, offset=offset)
    return SigmaJSONResponse(page)


@router.get("/signals/leaderboard", summary="Your models ranked by their settled signals' live record",
            response_model=schemas.SignalsLeaderboard, responses=error_responses(400, 401, 429))
def leaderboard(caller: CallerDep, state: StateDep,
                pack: str | None = Query(None, max_length=32), risk_profile: str | None = Query(None, max_length=16),
                start: IsoDate | None = None, end: IsoDate | None = None):
    try:
        board = signals.signals_leaderboard(state.catalog, get_provider(state), caller.id, pack_id=pack,
                                            risk_profile=risk_profile, start=start, end=end)
    except ValueError as exc:  # an input error names its field; an unknown pack is a bare ValueError
        raise input_error(exc, default_field="pack") from None
    return SigmaJSONResponse(board)


@router.post("/signals/subscriptions", status_code=201,
             summary="Subscribe a trained model: scored at each bar close of its cadence, signal.generated on a new signal",
             response_model=schemas.Subscription, responses=error_responses(400, 401, 404, 409, 429))
def subscribe(body: schemas.SubscribeRequest, caller: CallerDep, state: StateDep):
    try:
        row = subscriptions.create_subscription(state.catalog, caller.id, body.model_id, body.portfolio_id)
    except LookupError:
        raise not_found("model", body.model_id) from None
    except subscriptions.AlreadySubscribed as exc:
        raise ApiError(409, "CONFLICT", str(exc), field="model_id") from None
    return SigmaJSONResponse(subscriptions.subscription_view(row), status_code=201)


@router.get("/signals/subscriptions", summary="Your signal subscriptions", response_model=schemas.SubscriptionList,
            responses=error_responses(401, 429))
def list_subscriptions(caller: CallerDep, state: StateDep):
    rows = subscriptions.list_subscriptions(state.catalog, caller.id)
    return SigmaJSONResponse({"items": [subscriptions.subscription_view(r) for r in rows], "total": len(rows)})


@router.get("/signals/subscriptions/{subscription_id}", summary="One subscription and its latest run",
            response_model=schemas.Subscription, responses=error_responses(401, 404, 429))
def get_subscription(subscription_id: str, caller: CallerDep, state: StateDep):
    try:
        row = subscriptions.get_subscription(state.catalog, caller.id, subscription_id)
    except LookupError:
        raise not_found("subscription", subscription_id) from None
    return SigmaJSONResponse(subscriptions.subscription_view(row))


@router.delete("/signals/subscriptions/{subscription_id}", summary="Unsubscribe (the signals stay)",
               response_model=schemas.SubscriptionDeleted, responses=error_responses(401, 404, 429))
def delete_subscription(subscription_id: str, caller: CallerDep, state: StateDep):
    try:
        subscriptions.delete_subscription(state.catalog, caller.id, subscription_id)
    except LookupError:
        raise not_found("subscription", subscription_id) from None
    return SigmaJSONResponse({"subscription_id": subscription_id, "deleted": True})


@router.get("/signals/{signal_id}", summary="One signal", response_model=schemas.Signal,
            responses=error_responses(401, 404, 429))
def get_signal(signal_id: str, caller: CallerDep, state: StateDep):
    try:
        return SigmaJSONResponse(signals.get_signal(state.catalog, get_provider(state), caller.id, signal_id))
    except LookupError:
        raise not_found("signal", signal_id) from None


@router.post("/signals/{signal_id}/cancel", summary="Cancel an active signal", response_model=schemas.Signal,
             responses=error_responses(401, 404, 409, 429))
def cancel_signal(signal_id: str, caller: CallerDep, state: StateDep):
    try:
        return SigmaJSONResponse(signals.cancel_signal(state.catalog, get_provider(state), caller.id, signal_id))
    except LookupError:
        raise not_found("signal", signal_id) from None
    except ValueError as exc:
        raise ApiError(409, "CONFLICT", str(exc), field="signal_id") from None
