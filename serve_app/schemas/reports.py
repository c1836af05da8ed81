"""Reports (portfolio spec 8): generate, list, download, templates."""

from __future__ import annotations


from pydantic import BaseModel, Field

from serve_app.schemas.common import AsyncAccepted, ServiceBody, Timestamp


class ReportRequest(BaseModel):
    type: str = Field(max_length=32, description="risk_summary | portfolio_overview | backtest_tearsheet | sweep_report | modeling_session")
    format: str = Field("pdf", max_length=8, description="pdf | html")
    sections: list[str] | None = Field(None, max_length=20, description="default: every section of the type")
    period: str = Field("daily", max_length=16, description="daily | weekly | monthly | annual")
    backtest_id: str | None = Field(None, max_length=40, description="backtest_tearsheet: the backtest")
    sweep_id: str | None = Field(None, max_length=40, description="sweep_report: the sweep")
    session_id: str | None = Field(None, max_length=40, description="modeling_session: the ProForma modeling session")
    portfolio_id: str | None = Field(None, max_length=40, description="risk_summary, portfolio_overview: default portfolio if omitted")


class TemplateCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    type: str = Field(max_length=32)
    format: str = Field("pdf", max_length=8)
    sections: list[str] | None = Field(None, max_length=20)
    period: str = Field("daily", max_length=16)


ReportBody = ServiceBody(ReportRequest, examples=[{"type": "risk_summary", "format": "pdf",
                                                   "sections": ["exposure", "greeks", "factors", "scenarios"],
                                                   "period": "daily"}])
TemplateBody = ServiceBody(TemplateCreate, examples=[{"name": "Morning risk", "type": "risk_summary",
                                                      "sections": ["exposure", "var"], "period": "daily"}])


class ReportAccepted(AsyncAccepted):
    report_id: str


class Report(BaseModel):
    report_id: str
    type: str
    format: str
    status: str = Field(description="queued | running | completed | failed")
    sections: list[str]
    period: str | None = None
    backtest_id: str | None = None
    sweep_id: str | None = None
    session_id: str | None = None
    job_id: str | None = None
    sha256: str | None = Field(None, description="SHA-256 of the file (its artifact store key)")
    size: int | None = None
    pages: int | None = None
    error: str | None = None
    created_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    download_url: str | None = None


class ReportList(BaseModel):
    reports: list[Report]
    limit: int
    offset: int


class Template(BaseModel):
    template_id: str
    name: str
    type: str
    format: str
    period: str
    sections: list[str]
    builtin: bool


class TemplateList(BaseModel):
    templates: list[Template]
    types: dict[str, list[str]] = Field(description="every report type and its sections")




class ScheduleCreate(BaseModel):
    template_id: str = Field(max_length=40, description="daily_risk, weekly_risk, backtest_tearsheet, sweep_summary or yours")
    frequency: str = Field("daily", max_length=16, description="daily | weekly | monthly | cron")
    day_of_week: int | None = Field(None, description="weekly: 0..7 as in cron (1 Monday ... 5 Friday, 0/7 Sunday)")
    day_of_month: int | None = Field(None, description="monthly: 1..28")
    time: str = Field("16:30", max_length=8, description="HH:MM in timezone")
    timezone: str = Field("America/New_York", max_length=64, description="IANA time zone")
    cron: str | None = Field(None, max_length=120, description="frequency=cron: a 5-field cron expression in timezone")
    trading_days_only: bool = Field(True, description="skip days that are not NYSE sessions")
    email: str = Field(max_length=254)
    backtest_id: str | None = Field(None, max_length=40)
    sweep_id: str | None = Field(None, max_length=40)
    session_id: str | None = Field(None, max_length=40)
    portfolio_id: str | None = Field(None, max_length=40)


ScheduleBody = ServiceBody(ScheduleCreate, examples=[{"template_id": "weekly_risk", "frequency": "weekly", "day_of_week": 5,
                                                      "time": "16:00", "email": "user@example.com"}])


class Schedule(BaseModel):
    schedule_id: str
    template_id: str
    cron: str
    timezone: str
    trading_days_only: bool
    email: str
    type: str | None = None
    format: str | None = None
    active: bool
    next_run: Timestamp | None = None
    created_at: Timestamp | None = None


class ScheduleList(BaseModel):
    schedules: list[Schedule]


class ScheduleRun(BaseModel):
    run_id: str
    scheduled_for: Timestamp
    status: str = Field(description="running | sent | failed | skipped")
    report_id: str | None = None
    attempts: int
    smtp_reply: str | None = Field(None, description="the mail server's last reply, e.g. 250 OK or 550 refused")
    error: str | None = None
    finished_at: Timestamp | None = None


class ScheduleRunList(BaseModel):
    runs: list[ScheduleRun]
