"""Reports (portfolio spec 8): ``POST /reports/generate`` runs a job that builds a PDF or a
self-contained HTML file and stores it by SHA-256; ``GET /reports`` lists the caller's,
``GET /reports/{id}`` shows one, ``GET /reports/{id}/download`` serves the file;
``GET/POST /reports/templates`` are the built-in and the caller's templates."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from serve_app.deps import CallerDep, OffsetQuery, StateDep
from serve_app.envelope import SigmaJSONResponse, async_accepted, envelope
from serve_app.errors import ApiError, not_found, service_errors
from serve_app.jobrunner import start_job
from serve_app.schemas import reports as schemas
from serve_app.schemas.charts import binary_responses
from serve_app.schemas.common import Deleted, Envelope, error_responses
from services.reports import document, schedules, service

router = APIRouter(prefix="/reports", tags=["reports"])

#: A first guess of a report's time (ms), refined by benchmarks/reports.py.
ESTIMATED_MS = {"risk_summary": 3000, "portfolio_overview": 2000, "backtest_tearsheet": 1500, "sweep_report": 1500,
                "modeling_session": 3000}


@router.post("/generate", status_code=202, summary="Generate a report (a job): PDF or self-contained HTML (spec 8.1)",
             response_model=schemas.ReportAccepted, responses=error_responses(400, 401, 404, 429, 503))
async def generate(body: schemas.ReportBody, caller: CallerDep, state: StateDep):
    with service_errors():
        req = service.validate_request(body)
        service.check_subject(state.catalog, caller.id, req)
    row = service.create_report(state.catalog, caller.id, req)
    estimate = ESTIMATED_MS[req["type"]]
    job, _ = await start_job(state, caller, "reports.generate", {"report_id": row.id}, estimated_duration_ms=estimate)
    service.attach_job(state.catalog, row.id, job.id)
    return SigmaJSONResponse({**async_accepted(job.id, job.status, estimate), "report_id": row.id}, status_code=202)


@router.get("/templates", summary="Built-in and your report templates (spec 8.2)",
            response_model=Envelope[schemas.TemplateList], responses=error_responses(401, 429))
def templates(request: Request, caller: CallerDep, state: StateDep):
    return envelope(request, {"templates": service.list_templates(state.catalog, caller.id),
                              "types": {k: list(v) for k, v in service.TYPES.items()}})


@router.post("/templates", status_code=201, summary="Save a report template: type, sections, period (spec 8.2)",
             response_model=Envelope[schemas.Template], responses=error_responses(400, 401, 429))
def create_template(request: Request, body: schemas.TemplateBody, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, service.create_template(state.catalog, caller.id, body), status_code=201)


@router.post("/schedule", status_code=201, summary="E-mail a report on a schedule (spec 8.3): cron, time zone, NYSE days",
             response_model=Envelope[schemas.Schedule], responses=error_responses(400, 401, 404, 429))
def create_schedule(request: Request, body: schemas.ScheduleBody, caller: CallerDep, state: StateDep):
    with service_errors():
        return envelope(request, schedules.create_schedule(state.catalog, caller.id, body), status_code=201)


@router.get("/schedules", summary="Your report schedules with their next run", response_model=Envelope[schemas.ScheduleList],
            responses=error_responses(401, 429))
def list_schedules(request: Request, caller: CallerDep, state: StateDep):
    return envelope(request, {"schedules": schedules.list_schedules(state.catalog, caller.id)})


@router.delete("/schedules/{schedule_id}", summary="Stop a report schedule", response_model=Envelope[Deleted],
               responses=error_responses(401, 404, 429))
def delete_schedule(request: Request, schedule_id: str, caller: CallerDep, state: StateDep):
    try:
        schedules.delete_schedule(state.catalog, caller.id, schedule_id)
    except LookupError:
        raise not_found("schedule", schedule_id) from None
    return envelope(request, {"deleted": True})


@router.get("/schedules/{schedule_id}/runs", summary="A schedule's run log: sent, failed (with the SMTP reply), skipped",
            response_model=Envelope[schemas.ScheduleRunList], responses=error_responses(401, 404, 429))
def schedule_runs(request: Request, schedule_id: str, caller: CallerDep, state: StateDep):
    try:
        return envelope(request, {"runs": schedules.schedule_runs(state.catalog, caller.id, schedule_id)})
    except LookupError:
        raise not_found("schedule", schedule_id) from None


@router.get("", summary="Your reports, newest first", response_model=Envelope[schemas.ReportList],
            responses=error_responses(400, 401, 429))
def list_reports(request: Request, caller: CallerDep, state: StateDep, limit: int = Query(50, ge=1, le=500),
                 offset: OffsetQuery = 0):
    return envelope(request, {"reports": service.list_reports(state.catalog, caller.id, limit=limit, offset=offset),
                              "limit": limit, "offset": offset})


def _own(state, caller, report_id: str):
    try:
        return service.get_report(state.catalog, caller.id, report_id)
    except LookupError:
        raise not_found("report", report_id) from None


@router.get("/{report_id}", summary="One report: status, SHA-256, pages, download URL",
            response_model=Envelope[schemas.Report], responses=error_responses(401, 404, 429))
def get_report(request: Request, report_id: str, caller: CallerDep, state: StateDep):
    return envelope(request, service.report_view(_own(state, caller, report_id)))


@router.get("/{report_id}/download", summary="The report file (PDF or HTML), verified against its SHA-256",
            response_class=Response,
            responses=binary_responses(document.FORMATS, "The report file", 401, 404, 409, 429))
def download(report_id: str, caller: CallerDep, state: StateDep):
    row = _own(state, caller, report_id)
    if row.status != "completed":
        raise ApiError(409, "CONFLICT", f"report {report_id} is {row.status}", field="report_id")
    data, media, name = service.report_file(state.store, row)
    disposition = "attachment" if row.format == "pdf" else "inline"
    return Response(data, media_type=media, headers={"Content-Disposition": f'{disposition}; filename="{name}"',
                                                     "ETag": f'"{row.sha}"'})
