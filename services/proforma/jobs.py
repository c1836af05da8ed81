"""ProForma job kinds (run by ``cluster.jobs`` workers): the Excel portfolio export and the
hedge search."""

from __future__ import annotations

from cluster.artifacts import ArtifactStore
from cluster.jobs import JobContext, job_failures
from cluster.market import market_provider
from services.portfolio import service as portfolio_service

JOB_KINDS = {
    "proforma.export_excel": "services.proforma.jobs:export_excel_job",
    "proforma.hedge": "services.proforma.jobs:hedge_job",
    "proforma.trade": "services.proforma.jobs:trade_job",
}


def trade_job(ctx: JobContext, params: dict) -> dict:
    """Single-trade what-if (spec 7.5, async): the same figures as the sync route."""
    from services.proforma import service

    ctx.progress(0.1, "pricing the book before and after", force=True)
    with job_failures():
        return service.trade_whatif(ctx.catalog, market_provider(ctx.settings), ctx.user_id, params.get("body") or {},
                                    params.get("portfolio_id"))


def export_excel_job(ctx: JobContext, params: dict) -> dict:
    """The portfolio as an .xlsx workbook (one sheet per section) in the artifact store."""
    from services.proforma import exports

    provider = market_provider(ctx.settings)
    ctx.progress(0.1, "pricing the book", force=True)
    with job_failures():
        book = portfolio_service.priced_book(ctx.catalog, provider, ctx.user_id, params.get("portfolio_id"))
    sections = exports.portfolio_sections(book, list(params.get("include") or exports.SECTIONS))
    ctx.progress(0.6, "writing the workbook", force=True)
    data = exports.portfolio_xlsx(sections, book.as_of)
    stored = exports.store_file(ArtifactStore(ctx.settings.resolved_storage_url), ctx.user_id, data, "xlsx")
    return {"format": "excel", "portfolio_id": book.portfolio.id, "sheets": list(sections), **stored}


def hedge_job(ctx: JobContext, params: dict) -> dict:
    """Hedge search (spec 7.6): see ``services.proforma.hedge``."""
    from services.proforma import hedge

    provider = market_provider(ctx.settings)
    with job_failures():
        return hedge.search(ctx.catalog, provider, ctx.user_id, params, settings=ctx.settings, progress=ctx.progress)
