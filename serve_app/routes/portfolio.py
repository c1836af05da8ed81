"""Portfolio overview, summary, exposures, performance and CSV upload (spec 4.1-4.3)."""

from __future__ import annotations

from fastapi import APIRouter, File, Query, Request, UploadFile

from services.portfolio import service, upload, views
from services.portfolio.alerts import evaluate_alerts
from compute.exposure import DEFAULT_GROSS_LIMIT, DEFAULT_NET_TARGET_RANGE
from serve_app.deps import CallerDep, PortfolioId, StateDep, book_for
from serve_app.envelope import SigmaJSONResponse, envelope
from serve_app.errors import ApiError, invalid, service_errors
from serve_app.market import get_provider
from serve_app.schemas import portfolio as schemas
from serve_app.schemas.common import Envelope, error_responses

router = APIRouter(tags=["portfolio"])

#: Every route that prices the book: bad parameters, a portfolio that is not the caller's, no
#: market data.
BOOK_ERRORS = error_responses(400, 401, 404, 429, 503)


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


@router.get("/portfolios", summary="The caller's portfolios", response_model=Envelope[schemas.PortfolioList],
            responses=error_responses(401, 429))
def portfolios(request: Request, caller: CallerDep, state: StateDep):
    rows = service.list_portfolios(state.catalog, caller.id)
    return envelope(request, {"portfolios": [
        {"id": p.id, "name": p.name, "is_default": p.is_default, "cash": p.cash, "base_currency": p.base_currency} for p in rows]})


@router.get("/portfolio", summary="Portfolio overview: value, P&L, exposures with visual indicators (spec 4.1)",
            response_model=Envelope[schemas.PortfolioOverview], responses=BOOK_ERRORS)
def overview(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    portfolio_id: PortfolioId = None,
    gross_limit: float = Query(DEFAULT_GROSS_LIMIT, gt=0, le=20, description="gross exposure limit as a decimal of equity"),
    net_target: str | None = Query(None, description="net exposure target range 'low,high' as decimals of equity"),
):
    target = parse_net_target(net_target)
    book = book_for(state, caller, portfolio_id)
    return envelope(request, views.portfolio_overview(book, gross_limit, target), cache_status=book.cache_status)


@router.get("/portfolio/summary", summary="Value, P&L and top positions (spec 4.3)",
            response_model=Envelope[schemas.PortfolioSummary], responses=BOOK_ERRORS)
def summary(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    portfolio_id: PortfolioId = None,
    top: int = Query(5, ge=1, le=100),
):
    book = book_for(state, caller, portfolio_id)
    count = len(evaluate_alerts(state.catalog, caller.id, book))
    return envelope(request, views.portfolio_summary(book, top, count), cache_status=book.cache_status)


@router.get("/portfolio/exposures", summary="Long/short/gross/net, notional and delta-adjusted, by type, strategy, sector, tag",
            response_model=Envelope[schemas.PortfolioExposures], responses=BOOK_ERRORS)
def exposures(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    portfolio_id: PortfolioId = None,
    gross_limit: float = Query(DEFAULT_GROSS_LIMIT, gt=0, le=20),
    net_target: str | None = Query(None),
):
    target = parse_net_target(net_target)
    book = book_for(state, caller, portfolio_id)
    return envelope(request, views.portfolio_exposures(book, gross_limit, target), cache_status=book.cache_status)


@router.get("/portfolio/performance", summary="P&L vs cost basis and constant-holdings returns (1d, 1w, 1m, YTD)",
            response_model=Envelope[schemas.PortfolioPerformance], responses=BOOK_ERRORS)
def performance(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    portfolio_id: PortfolioId = None,
):
    book = book_for(state, caller, portfolio_id)
    return envelope(request, views.portfolio_performance(book, get_provider(state)), cache_status=book.cache_status)


@router.post("/portfolio/upload", summary="Upload positions from a CSV (all or nothing; spec 4.2)",
             response_model=schemas.UploadResponse, responses=error_responses(400, 401, 404, 413, 429))
async def upload_csv(
    request: Request,
    caller: CallerDep,
    state: StateDep,
    file: UploadFile = File(..., description="CSV: ticker, quantity, entry_price, entry_date, tags"),
    portfolio_id: PortfolioId = None,
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
    return SigmaJSONResponse({"success": True, **result, "data": result})
