"""Portfolio overview, summary, exposures, performance and CSV upload (spec 4.1-4.3)."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile

from services.portfolio import service, upload, views
from services.portfolio.alerts import evaluate_alerts
from compute.exposure import DEFAULT_GROSS_LIMIT, DEFAULT_NET_TARGET_RANGE
from serve_app.deps import Caller, current_user, get_state
from serve_app.envelope import envelope
from serve_app.errors import ApiError, invalid
from serve_app.market import get_provider
from serve_app.state import AppState

router = APIRouter(tags=["portfolio"])


@contextlib.contextmanager
def service_errors():
    """Service exceptions to the standard error body: 404, 400 naming the field, 409."""
    try:
        yield
    except LookupError as exc:
        raise ApiError(404, "NOT_FOUND", str(exc).capitalize() if str(exc) else "Not found") from None
    except service.PortfolioInputError as exc:
        raise invalid(exc.field, exc.reason) from None
    except service.PortfolioConflict as exc:
        raise ApiError(409, "CONFLICT", str(exc), field=exc.field) from None


def book_for(state: AppState, caller: Caller, portfolio_id: str | None) -> service.PricedBook:
    with service_errors():
        return service.priced_book(state.catalog, get_provider(state), caller.id, portfolio_id)


def parse_net_target(raw: str | None) -> tuple[float, float]:
    if raw is None:
        return DEFAULT_NET_TARGET_RANGE
    try:
        low, high = (float(x) for x in raw.split(","))
    except ValueError:
        raise invalid("net_target", "use two decimals 'low,high', e.g. 0.4,0.6") from None
    if not (0 <= low <= high <= 10):
        raise invalid("net_target", "need 0 <= low <= high <= 10 (decimals of equity)")
    return low, high


PortfolioId = Query(None, description="portfolio id (default: the user's default portfolio)")


@router.get("/portfolios", summary="The caller's portfolios")
def portfolios(request: Request, caller: Caller = Depends(current_user), state: AppState = Depends(get_state)):
    rows = service.list_portfolios(state.catalog, caller.id)
    return envelope(request, {"portfolios": [
        {"id": p.id, "name": p.name, "is_default": p.is_default, "cash": p.cash, "base_currency": p.base_currency} for p in rows]})


@router.get("/portfolio", summary="Portfolio overview: value, P&L, exposures with visual indicators (spec 4.1)")
def overview(
    request: Request,
    portfolio_id: str | None = PortfolioId,
    gross_limit: float = Query(DEFAULT_GROSS_LIMIT, gt=0, le=20, description="gross exposure limit as a decimal of equity"),
    net_target: str | None = Query(None, description="net exposure target range 'low,high' as decimals of equity"),
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    target = parse_net_target(net_target)
    book = book_for(state, caller, portfolio_id)
    return envelope(request, views.portfolio_overview(book, gross_limit, target), cache_status=book.cache_status)


@router.get("/portfolio/summary", summary="Value, P&L and top positions (spec 4.3)")
def summary(
    request: Request,
    portfolio_id: str | None = PortfolioId,
    top: int = Query(5, ge=1, le=100),
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    book = book_for(state, caller, portfolio_id)
    count = len(evaluate_alerts(state.catalog, caller.id, book))
    return envelope(request, views.portfolio_summary(book, top, count), cache_status=book.cache_status)


@router.get("/portfolio/exposures", summary="Long/short/gross/net, notional and delta-adjusted, by type, strategy, sector, tag")
def exposures(
    request: Request,
    portfolio_id: str | None = PortfolioId,
    gross_limit: float = Query(DEFAULT_GROSS_LIMIT, gt=0, le=20),
    net_target: str | None = Query(None),
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    target = parse_net_target(net_target)
    book = book_for(state, caller, portfolio_id)
    return envelope(request, views.portfolio_exposures(book, gross_limit, target), cache_status=book.cache_status)


@router.get("/portfolio/performance", summary="P&L vs cost basis and constant-holdings returns (1d, 1w, 1m, YTD)")
def performance(
    request: Request,
    portfolio_id: str | None = PortfolioId,
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    book = book_for(state, caller, portfolio_id)
    return envelope(request, views.portfolio_performance(book, get_provider(state)), cache_status=book.cache_status)


@router.post("/portfolio/upload", summary="Upload positions from a CSV (all or nothing; spec 4.2)")
async def upload_csv(
    request: Request,
    file: UploadFile = File(..., description="CSV: ticker, quantity, entry_price, entry_date, tags"),
    portfolio_id: str | None = Query(None),
    caller: Caller = Depends(current_user),
    state: AppState = Depends(get_state),
):
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > upload.MAX_UPLOAD_BYTES + 64 * 1024:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the upload limit is {upload.MAX_UPLOAD_BYTES // (1024 * 1024)} MB", field="file")
    content = await file.read(upload.MAX_UPLOAD_BYTES + 1)
    if len(content) > upload.MAX_UPLOAD_BYTES:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the upload limit is {upload.MAX_UPLOAD_BYTES // (1024 * 1024)} MB", field="file")
    with service_errors():
        try:
            result = upload.import_csv(state.catalog, caller.id, content, portfolio_id)
        except upload.UploadRejected as exc:
            raise ApiError(400, "INVALID_FILE", exc.message, field=exc.errors[0]["field"] if exc.errors else "file",
                           details={"field": exc.errors[0]["field"] if exc.errors else "file", "bad_rows": len({e.get("line") for e in exc.errors})},
                           errors=exc.errors) from None
    return {"success": True, **result, "data": result}
