"""Exports (portfolio spec 13): trade lists for a given list of trades, the portfolio as CSV,
JSON or an Excel workbook (a job), and the download of a stored export file."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.proforma import exports
from serve_app.deps import CallerDep, PortfolioId, StateDep, book_for
from serve_app.envelope import SigmaJSONResponse, async_accepted, envelope
from serve_app.errors import service_errors
from serve_app.jobrunner import start_job
from serve_app.market import get_provider
from serve_app.schemas import proforma as schemas
from serve_app.schemas.common import AsyncAccepted, Envelope, also, error_responses

router = APIRouter(prefix="/export", tags=["export"])


@router.post("/trades", summary="A trade list in csv, json or FIX 4.4, stored for download (spec 13.2)",
             response_model=Envelope[schemas.TradeList], responses=error_responses(400, 401, 429, 503))
def export_trades(request: Request, body: schemas.TradesExportBody, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, exports.export_trades(get_provider(state), state.store, caller.id, body))


@router.get("/portfolio", summary="The book's positions, Greeks and exposures: csv or json now, excel as a job (spec 13.1)",
            response_model=Envelope[schemas.PortfolioExport],
            responses={200: {"description": "format=json: the sections; format=csv: text/csv",
                             "content": {"text/csv": {"schema": {"type": "string"}}}},
                       **also(202, AsyncAccepted, "format=excel: a job whose result names the .xlsx file"),
                       **error_responses(400, 401, 404, 429, 503)})
async def export_portfolio(request: Request, caller: CallerDep, state: StateDep,
                           format: str = Query("json", description="csv | json | excel"),
                           include: str | None = Query(None, description="comma-separated: positions,greeks,exposures"),
                           portfolio_id: PortfolioId = None):
    with service_errors():
        fmt = exports.check_format(format, exports.PORTFOLIO_FORMATS)
        sections = exports.parse_include(include)
    if fmt == "excel":
        book_for(state, caller, portfolio_id)  # 404 now for a portfolio that is not the caller's
        job, _ = await start_job(state, caller, "proforma.export_excel",
                                 {"portfolio_id": portfolio_id, "include": sections}, estimated_duration_ms=3000)
        return SigmaJSONResponse(async_accepted(job.id, job.status, job.estimated_duration_ms), status_code=202)
    from starlette.concurrency import run_in_threadpool

    book = await run_in_threadpool(book_for, state, caller, portfolio_id)
    data = await run_in_threadpool(exports.portfolio_export, book, fmt, sections)
    if fmt == "csv":
        return Response(data, media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="portfolio_{book.portfolio.id}.csv"'})
    return envelope(request, data, cache_status=book.cache_status)


@router.get("/files/{name}", summary="Download a stored export (the caller's own)", response_class=Response,
            responses={200: {"description": "the file", "content": {"application/octet-stream": {"schema": {"type": "string"}}}},
                       **error_responses(401, 404, 429)})
def download(name: str, caller: CallerDep, state: StateDep):
    with service_errors():
        data, media = exports.read_file(state.store, caller.id, name)
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
