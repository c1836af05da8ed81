"""Positions (spec 5.1, 5.2, 2.2) and position tags (spec 2.7.5)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.portfolio import service, views
from services.proforma import risk_metrics
from serve_app.deps import MAX_OFFSET, CallerDep, PortfolioId, StateDep, book_for
from serve_app.envelope import envelope
from serve_app.errors import invalid, service_errors
from serve_app.market import get_provider
from serve_app.schemas import positions as schemas
from serve_app.schemas.common import Envelope, created_links, error_responses
from serve_app.schemas.tags import PositionTags, PositionTagsBody

router = APIRouter(tags=["positions"])

#: Every route that prices the book: bad parameters, a portfolio that is not the caller's, no
#: market data.
BOOK_ERRORS = error_responses(400, 401, 404, 429, 503)

FIELDS = ("ticker", "underlying", "name", "type", "quantity", "price", "value", "entry_price", "cost_basis", "pnl",
          "pnl_percent", "daily_change", "tags", "strategy", "sector", "asset_class", "underlying_price",
          "notional_exposure", "delta_exposure", "strike", "expiration", "time_to_expiry", "expired", "iv",
          "vol_source", "greeks", "position_greeks", "dollar_delta", "risk_metrics")


def _csv_list(raw: str | None) -> list[str]:
    return [x.strip() for x in raw.split(",") if x.strip()] if raw else []


def _group_by(raw: str | None, field: str, allow_sector: bool = True) -> str | None:
    if raw is None:
        return None
    allowed = views.GROUP_BY if allow_sector else ("type", "strategy", "tag")
    if raw not in allowed:
        raise invalid(field, f"use one of {', '.join(allowed)}")
    return raw


_POSITION = "/api/v1/positions/{position_id}"


@router.post("/positions", status_code=201, summary="Add a position (spec 5.2)", response_model=Envelope[schemas.Position],
             responses={**error_responses(400, 401, 404, 409, 429), **created_links(201, "/data/id", {
                 "GetPosition": ("get", _POSITION, "position_id"), "PatchPosition": ("patch", _POSITION, "position_id"),
                 "DeletePosition": ("delete", _POSITION, "position_id"),
                 "GetPositionTags": ("get", _POSITION + "/tags", "position_id"),
                 "PutPositionTags": ("put", _POSITION + "/tags", "position_id")})})
def add_position(
    request: Request,
    body: schemas.NewPositionBody,
    caller: CallerDep,
    state: StateDep,
    portfolio_id: PortfolioId = None,
):
    with service_errors():
        created = service.add_position(state.catalog, caller.id, body, portfolio_id)
    return envelope(request, created, status_code=201)


@router.get("/positions", summary="Positions with P&L, exposures and Greeks (spec 5.1; pagination spec 17)",
            response_model=Envelope[schemas.PositionList, schemas.PositionsMeta], responses=BOOK_ERRORS)
def list_positions(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    groupBy: str | None = Query(None, description="type | strategy | tag | sector"),
    tags: str | None = Query(None, description="comma-separated tag names"),
    tagMode: str = Query("any", pattern="^(any|all)$"),
    fields: str | None = Query(None, description="comma-separated fields to return, e.g. ticker,value,pnl"),
    page: int = Query(1, ge=1, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=1000),
    portfolio_id: PortfolioId = None,
):
    group_by = _group_by(groupBy, "groupBy")
    wanted = _csv_list(fields)
    unknown = [f for f in wanted if f not in FIELDS and f != "id"]
    if unknown:
        raise invalid("fields", f"unknown field {unknown[0]!r}; choose from {', '.join(FIELDS)}")
    book = book_for(state, caller, portfolio_id)
    data, pagination = views.list_positions(book, tags=_csv_list(tags), tag_mode=tagMode, group_by=group_by,
                                            fields=wanted or None, page=page, limit=limit)
    if not wanted or "risk_metrics" in wanted:
        data = dict(data, positions=[dict(p) for p in data["positions"]])
        risk_metrics.add_risk_metrics(book, get_provider(state), data["positions"])
    return envelope(request, data, cache_status=book.cache_status, meta=pagination)


@router.get("/positions/grouped", summary="Positions grouped by type, strategy, tag or sector",
            response_model=Envelope[schemas.PositionsGrouped], responses=BOOK_ERRORS)
def grouped(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    by: str = Query("type", description="type | strategy | tag | sector"),
    tags: str | None = Query(None),
    tagMode: str = Query("any", pattern="^(any|all)$"),
    portfolio_id: PortfolioId = None,
):
    group_by = _group_by(by, "by")
    book = book_for(state, caller, portfolio_id)
    return envelope(request, views.positions_grouped(book, group_by, _csv_list(tags), tagMode), cache_status=book.cache_status)


@router.get("/strategies", summary="Positions grouped by strategy (column or #strategy:<name> tag)",
            response_model=Envelope[schemas.Strategies], responses=BOOK_ERRORS)
def strategies(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    portfolio_id: PortfolioId = None,
):
    book = book_for(state, caller, portfolio_id)
    return envelope(request, views.strategies_view(book), cache_status=book.cache_status)


@router.get("/positions/{position_id}", summary="One position (catalog row)", response_model=Envelope[schemas.Position],
            responses=error_responses(401, 404, 429))
def get_position(position_id: str, request: Request, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, service.get_position(state.catalog, caller.id, position_id))


@router.patch("/positions/{position_id}", summary="Change quantity, strategy or entry price",
              response_model=Envelope[schemas.Position], responses=error_responses(400, 401, 404, 429))
def patch_position(position_id: str, request: Request, body: schemas.PositionPatchBody, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, service.update_position(state.catalog, caller.id, position_id, body))


@router.delete("/positions/{position_id}", status_code=204, summary="Delete a position", response_class=Response,
               responses=error_responses(401, 404, 429))
def delete_position(position_id: str, caller: CallerDep, state: StateDep):
    with service_errors():
        service.delete_position(state.catalog, caller.id, position_id)
    return Response(status_code=204)


@router.get("/positions/{position_id}/tags", summary="Tags of a position", response_model=Envelope[PositionTags],
            responses=error_responses(401, 404, 429))
def get_tags(position_id: str, request: Request, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, {"position_id": position_id, "tags": service.position_tags(state.catalog, caller.id, position_id)})


@router.put("/positions/{position_id}/tags", summary="Replace the tags of a position (tag_ids and/or names)",
            response_model=Envelope[PositionTags], responses=error_responses(400, 401, 404, 429))
def put_tags(position_id: str, request: Request, body: PositionTagsBody, caller: CallerDep, state: StateDep):
    with service_errors():
        tags = service.set_position_tags(state.catalog, caller.id, position_id, tag_ids=body.get("tag_ids"), names=body.get("tags"))
    return envelope(request, {"position_id": position_id, "tags": tags})
