"""Report schedules (portfolio spec 8.3): cron times in the user's time zone, NYSE-session aware,
a run log, catch-up after downtime without double sends, delivery by e-mail over SMTP.

The platform's one scheduler (``services.risk.batch.BatchScheduler``, the daily batch's) calls
:func:`scheduled_tick` every minute. For each active schedule, the fire times between its
``checked_until`` and now are worked out with croniter (fire times on days that are not NYSE
sessions are left out when ``trading_days_only``). After downtime only the latest missed
time is sent (the earlier ones are logged ``skipped``: one catch-up, not a burst). A fire
time is *claimed* by inserting its run-log row (unique per schedule and time) in the same
transaction that moves ``checked_until`` on, before any work: whatever restarts happen, no
time is ever sent twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import smtplib
import ssl
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any, Callable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from tenacity import Retrying, retry_if_exception_type, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from cluster.artifacts import ArtifactStore
from cluster.catalog import Catalog, ReportSchedule, ReportScheduleRun, owned_row
from cluster.catalog.models import utcnow
from compute.marketdata import calendar
from services.reports import service
from services.reports.service import ReportInputError

log = logging.getLogger("sigma.reports")

FREQUENCIES = ("daily", "weekly", "monthly", "cron")
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
SMTP_ATTEMPTS = 3
SMTP_BACKOFF_S = 0.5


# --- requests ---------------------------------------------------------------------------------

def _time(raw: Any) -> tuple[int, int]:
    m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", raw) if isinstance(raw, str) else None
    if not m:
        raise ReportInputError("time", "HH:MM on a 24-hour clock, e.g. 16:00")
    return int(m.group(1)), int(m.group(2))


def _zone(raw: Any) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > 64:
        raise ReportInputError("timezone", "an IANA time zone such as America/New_York")
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportInputError("timezone", f"unknown time zone {raw!r}; use an IANA name such as Europe/London") from None
    return raw


def parse_email(raw: Any) -> str:
    if not isinstance(raw, str) or len(raw) > 254:
        raise ReportInputError("email", "an e-mail address such as pm@example.com")
    name, addr = parseaddr(raw)
    if not addr or not EMAIL.fullmatch(addr):
        raise ReportInputError("email", f"{raw!r} is not an e-mail address")
    return addr


def cron_of(body: Mapping[str, Any]) -> str:
    """The 5-field cron expression of a schedule request."""
    frequency = body.get("frequency", "daily")
    if frequency not in FREQUENCIES:
        raise ReportInputError("frequency", f"use one of {', '.join(FREQUENCIES)}")
    if frequency == "cron":
        expr = body.get("cron")
        if not isinstance(expr, str) or len(expr.split()) != 5 or len(expr) > 120 or not croniter.is_valid(expr):
            raise ReportInputError("cron", "a 5-field cron expression, e.g. '0 17 * * 1-5'")
        return expr
    hour, minute = _time(body.get("time", "16:30"))
    if frequency == "daily":
        return f"{minute} {hour} * * *"
    if frequency == "weekly":
        dow = body.get("day_of_week", 5)
        if isinstance(dow, bool) or not isinstance(dow, int) or not 0 <= dow <= 7:
            raise ReportInputError("day_of_week", "0..7 as in cron: 0 or 7 Sunday, 1 Monday ... 5 Friday")
        return f"{minute} {hour} * * {dow % 7}"
    dom = body.get("day_of_month", 1)
    if isinstance(dom, bool) or not isinstance(dom, int) or not 1 <= dom <= 28:
        raise ReportInputError("day_of_month", "1..28")
    return f"{minute} {hour} {dom} * *"


def create_schedule(catalog: Catalog, user_id: int, body: Mapping[str, Any]) -> dict:
    if not isinstance(body, Mapping):
        raise ReportInputError("body", "must be a JSON object")
    template_id = body.get("template_id")
    if not isinstance(template_id, str) or not template_id:
        raise ReportInputError("template_id", "a template id from GET /reports/templates")
    try:
        template = service.get_template(catalog, user_id, template_id)
    except LookupError:
        raise ReportInputError("template_id", f"no template {template_id!r}; see GET /reports/templates") from None
    cron = cron_of(body)
    zone = _zone(body.get("timezone", "America/New_York"))
    email = parse_email(body.get("email"))
    trading = body.get("trading_days_only", True)
    if not isinstance(trading, bool):
        raise ReportInputError("trading_days_only", "true or false")
    request = {k: template[k] for k in ("type", "format", "sections", "period")}
    for key in (*service.SUBJECTS, "portfolio_id"):
        if body.get(key) is not None:
            request[key] = body[key]
    request = service.validate_request(request)
    service.check_subject(catalog, user_id, request)  # LookupError: another user's -> 404
    with catalog.session() as s:
        row = ReportSchedule(user_id=user_id, template_id=template_id, cron=cron, timezone=zone, trading_days_only=trading,
                             email=email, params=request, active=True, checked_until=utcnow())
        s.add(row)
        s.flush()
        return schedule_view(row)


def next_fire(row: ReportSchedule, after: dt.datetime) -> dt.datetime | None:
    times = fire_times(row.cron, row.timezone, row.trading_days_only, after, after + dt.timedelta(days=400), limit=1)
    return times[0] if times else None


def schedule_view(row: ReportSchedule) -> dict:
    nxt = next_fire(row, max(utcnow(), row.checked_until)) if row.active else None
    return {"schedule_id": row.id, "template_id": row.template_id, "cron": row.cron, "timezone": row.timezone,
            "trading_days_only": row.trading_days_only, "email": row.email, "type": row.params.get("type"),
            "format": row.params.get("format"), "active": row.active,
            "next_run": nxt.isoformat() if nxt else None,
            "created_at": row.created_at.isoformat() if row.created_at else None}


def list_schedules(catalog: Catalog, user_id: int) -> list[dict]:
    with catalog.session() as s:
        rows = s.scalars(select(ReportSchedule).where(ReportSchedule.user_id == user_id, ReportSchedule.active.is_(True))
                         .order_by(ReportSchedule.created_at)).all()
        return [schedule_view(r) for r in rows]


def _own(s, user_id: int, schedule_id: str) -> ReportSchedule:
    return owned_row(s, ReportSchedule, schedule_id, user_id, "schedule", active_only=True)


def delete_schedule(catalog: Catalog, user_id: int, schedule_id: str) -> None:
    """Deactivate (the run log stays readable to the lead; the user sees it gone)."""
    with catalog.session() as s:
        _own(s, user_id, schedule_id).active = False


def run_view(r: ReportScheduleRun) -> dict:
    return {"run_id": r.id, "scheduled_for": r.scheduled_for.isoformat(), "status": r.status, "report_id": r.report_id,
            "attempts": r.attempts, "smtp_reply": r.smtp_reply, "error": r.error,
            "finished_at": r.finished_at.isoformat() if r.finished_at else None}


def schedule_runs(catalog: Catalog, user_id: int, schedule_id: str, limit: int = 100) -> list[dict]:
    with catalog.session() as s:
        _own(s, user_id, schedule_id)
        rows = s.scalars(select(ReportScheduleRun).where(ReportScheduleRun.schedule_id == schedule_id)
                         .order_by(ReportScheduleRun.scheduled_for.desc()).limit(limit)).all()
        return [run_view(r) for r in rows]


# --- when ---------------------------------------------------------------------------------------

def fire_times(cron: str, zone: str, trading_days_only: bool, after: dt.datetime, until: dt.datetime,
               limit: int = 10_000) -> list[dt.datetime]:
    """Fire times (UTC) in (after, until]: cron in the schedule's zone (DST handled by
    croniter on zone-aware times), leaving out days that are not NYSE sessions."""
    tz = ZoneInfo(zone)
    it = croniter(cron, after.astimezone(tz))
    out = []
    while len(out) < limit:
        t = it.get_next(dt.datetime)
        if t.astimezone(dt.timezone.utc) > until:
            break
        if trading_days_only and not calendar.is_session(t.date()):
            continue
        out.append(t.astimezone(dt.timezone.utc))
    return out


# --- delivery -----------------------------------------------------------------------------------

class SmtpFailure(Exception):
    """A refused or failed delivery; ``reply`` is the server's answer (code and text)."""

    def __init__(self, reply: str):
        super().__init__(reply)
        self.reply = reply


class SmtpAuthFailure(SmtpFailure):
    """The server refused the credentials (535): not retried, a wrong password stays wrong and
    repeated tries can lock the account."""


AUTH_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")


def _login(client: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH with the first mechanism of ``AUTH_MECHANISMS`` the server offers, once. (smtplib's
    ``login`` tries every mechanism in turn after a refusal, which turns a plain 535 into a
    timeout on servers that do not expect a second AUTH.)"""
    offered = (client.esmtp_features.get("auth") or "").upper().split()
    mechanism = next((m for m in AUTH_MECHANISMS if m in offered), None)
    if mechanism is None:
        raise SmtpFailure(f"the server offers no AUTH mechanism Sigma supports ({', '.join(AUTH_MECHANISMS)}); "
                          f"it offers {' '.join(offered) or 'none'}")
    client.user, client.password = user, password
    try:
        client.auth(mechanism, getattr(client, "auth_" + mechanism.lower().replace("-", "_")))
    except smtplib.SMTPAuthenticationError as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise SmtpAuthFailure(f"{exc.smtp_code} {text}") from None


def _smtp_config(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SIGMA_SMTP_URL must look like smtp://user:pass@host:587?starttls=true or smtps://host:465")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return {"ssl": parts.scheme == "smtps", "host": parts.hostname, "port": parts.port or (465 if parts.scheme == "smtps" else 25),
            "user": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "starttls": query.get("starttls", "false").lower() in ("1", "true", "yes"), "cafile": query.get("cafile")}


def send_email(smtp_url: str | None, sender: str, to: str, subject: str, text: str, attachment: bytes, filename: str,
               mime: str) -> str:
    """Send one message with the report attached; returns the server's final reply
    (``250 ...``). ``SmtpFailure`` carries the refusal (``550 ...``) or the connection error."""
    if not smtp_url:
        raise SmtpFailure("no SMTP server configured (SIGMA_SMTP_URL)")
    cfg = _smtp_config(smtp_url)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content(text)
    maintype, _, subtype = mime.split(";")[0].partition("/")
    msg.add_attachment(attachment, maintype=maintype, subtype=subtype, filename=filename)
    context = ssl.create_default_context(cafile=cfg["cafile"])
    try:
        if cfg["ssl"]:
            client = smtplib.SMTP_SSL(cfg["host"], cfg["port"], timeout=15, context=context)
        else:
            client = smtplib.SMTP(cfg["host"], cfg["port"], timeout=15)
        with client:
            client.ehlo()
            if cfg["starttls"]:
                client.starttls(context=context)
                client.ehlo()
            if cfg["user"]:
                _login(client, cfg["user"], cfg["password"] or "")
            code, reply = client.mail(sender)
            if code >= 400:
                raise SmtpFailure(f"{code} {reply.decode(errors='replace')}")
            code, reply = client.rcpt(to)
            if code >= 400:
                raise SmtpFailure(f"{code} {reply.decode(errors='replace')}")
            code, reply = client.data(msg.as_bytes(policy=email_policy.SMTP))  # CRLF lines, as SMTP wants
            if code >= 400:
                raise SmtpFailure(f"{code} {reply.decode(errors='replace')}")
            return f"{code} {reply.decode(errors='replace')}"
    except SmtpFailure:
        raise
    except smtplib.SMTPResponseException as exc:
        raise SmtpFailure(f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise SmtpFailure(f"{type(exc).__name__}: {exc}") from None


# --- the tick -----------------------------------------------------------------------------------

def _claim(catalog: Catalog, row: ReportSchedule, times: list[dt.datetime], until: dt.datetime) -> dt.datetime | None:
    """Log every missed time but the last as skipped, claim the last, move ``checked_until``;
    one transaction. None when another tick claimed it first."""
    try:
        with catalog.session() as s:
            for t in times[:-1]:
                s.add(ReportScheduleRun(schedule_id=row.id, scheduled_for=t, status="skipped", finished_at=utcnow(),
                                        error=f"missed while the scheduler was down; caught up at {times[-1].isoformat()}"))
            s.add(ReportScheduleRun(schedule_id=row.id, scheduled_for=times[-1], status="running"))
            s.get(ReportSchedule, row.id).checked_until = until
        return times[-1]
    except IntegrityError:
        return None


def run_schedule(catalog: Catalog, store: ArtifactStore, provider, settings, row: ReportSchedule, when: dt.datetime,
                 emit: Callable | None = None, backoff_s: float = SMTP_BACKOFF_S) -> dict:
    """Generate the report of one claimed fire time and e-mail it (retried with backoff)."""
    with catalog.session() as s:
        run = s.scalar(select(ReportScheduleRun).where(ReportScheduleRun.schedule_id == row.id,
                                                       ReportScheduleRun.scheduled_for == when))
        run_id = run.id
    try:
        report = service.create_report(catalog, row.user_id, row.params)
        view = service.run_report_job(catalog, store, provider, report.id, emit=emit)
        data, mime, filename = service.report_file(store, service.get_report(catalog, row.user_id, report.id))
    except Exception as exc:  # noqa: BLE001 - the run log says what failed
        log.exception("scheduled report %s failed", row.id)
        _finish(catalog, run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        return {"run_id": run_id, "status": "failed"}
    attempts = {"n": 0}
    subject = f"Sigma {service.TITLES[row.params['type']]} - {when.astimezone(ZoneInfo(row.timezone)):%Y-%m-%d %H:%M %Z}"
    text = (f"Your scheduled report ({row.template_id}) is attached.\nReport {view['report_id']}, SHA-256 {view['sha256']}.\n")

    def attempt() -> str:
        attempts["n"] += 1
        return send_email(settings.smtp_url, settings.smtp_from, row.email, subject, text, data, filename, mime)

    try:
        retry = retry_if_exception_type(SmtpFailure) & retry_if_not_exception_type(SmtpAuthFailure)
        reply = Retrying(stop=stop_after_attempt(SMTP_ATTEMPTS), reraise=True, retry=retry,
                         wait=wait_exponential(multiplier=backoff_s, max=30 * backoff_s))(attempt)
    except SmtpFailure as exc:
        _finish(catalog, run_id, "failed", report_id=report.id, attempts=attempts["n"], smtp_reply=exc.reply,
                error="delivery failed")
        return {"run_id": run_id, "status": "failed", "smtp_reply": exc.reply}
    _finish(catalog, run_id, "sent", report_id=report.id, attempts=attempts["n"], smtp_reply=reply)
    return {"run_id": run_id, "status": "sent", "smtp_reply": reply, "report_id": report.id}


def _finish(catalog: Catalog, run_id: str, status: str, **values) -> None:
    with catalog.session() as s:
        run = s.get(ReportScheduleRun, run_id)
        run.status, run.finished_at = status, utcnow()
        for k, v in values.items():
            setattr(run, k, v)


def run_due(catalog: Catalog, store: ArtifactStore, provider, settings, now: dt.datetime | None = None,
            emit: Callable | None = None, backoff_s: float = SMTP_BACKOFF_S) -> list[dict]:
    """Send every schedule's due report (at most one per schedule per tick)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    with catalog.session() as s:
        rows = s.scalars(select(ReportSchedule).where(ReportSchedule.active.is_(True))).all()
    done = []
    for row in rows:
        times = fire_times(row.cron, row.timezone, row.trading_days_only, row.checked_until, now)
        if not times:
            continue
        when = _claim(catalog, row, times, now)
        if when is not None:
            done.append({"schedule_id": row.id, "scheduled_for": when.isoformat(),
                         **run_schedule(catalog, store, provider, settings, row, when, emit, backoff_s)})
    return done


def scheduled_tick(settings) -> list[dict]:
    """The platform scheduler's hook (``services.risk.batch.PERIODIC_TASKS``)."""
    from cluster.catalog import get_catalog
    from cluster.market import market_provider
    from services.lab.events import emit_event

    catalog = get_catalog(settings)
    return run_due(catalog, ArtifactStore(settings.resolved_storage_url), market_provider(settings), settings,
                   emit=lambda user_id, event, data: emit_event(catalog, user_id, event, data))
