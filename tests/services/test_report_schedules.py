"""Report schedules against a real SMTP server on loopback (aiosmtpd, STARTTLS + AUTH with a
self-signed certificate the client verifies): cron times in New York time on NYSE sessions
only (weekends, Juneteenth and DST checked by hand), the PDF received and read back with
pdftotext, no double sends, one catch-up after downtime, a refusing server logged with its
reply after retries with backoff, and bad input naming the field."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import secrets
import socket
import subprocess
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

NY = ZoneInfo("America/New_York")
UTC = dt.timezone.utc


def ny(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NY).astimezone(UTC)


def test_fire_times_follow_the_nyse_calendar_and_dst():
    from services.reports.schedules import cron_of, fire_times

    daily = cron_of({"frequency": "daily", "time": "16:00"})
    assert daily == "0 16 * * *"
    # Wed 18 June 2025 evening -> Fri 20 June evening: Juneteenth (Thu 19) is not a session
    got = fire_times(daily, "America/New_York", True, ny(2025, 6, 18, 17, 0), ny(2025, 6, 20, 17, 0))
    assert got == [ny(2025, 6, 20, 16, 0)]
    every_day = fire_times(daily, "America/New_York", False, ny(2025, 6, 18, 17, 0), ny(2025, 6, 20, 17, 0))
    assert every_day == [ny(2025, 6, 19, 16, 0), ny(2025, 6, 20, 16, 0)]
    # 16:00 New York is 20:00 UTC in summer and 21:00 UTC in winter
    assert got[0].hour == 20
    assert fire_times(daily, "America/New_York", True, ny(2025, 12, 1, 17, 0), ny(2025, 12, 2, 17, 0))[0].hour == 21
    # weekly on Fridays (cron 5), and a Friday that is a holiday (Good Friday 18 April 2025) is left out
    weekly = cron_of({"frequency": "weekly", "day_of_week": 5, "time": "16:00"})
    fridays = fire_times(weekly, "America/New_York", True, ny(2025, 4, 1), ny(2025, 4, 30))
    assert [t.astimezone(NY).day for t in fridays] == [4, 11, 25]
    # a London time zone
    london = fire_times("30 8 * * 1-5", "Europe/London", True, dt.datetime(2025, 6, 13, 0, 0, tzinfo=UTC),
                        dt.datetime(2025, 6, 17, 0, 0, tzinfo=UTC))
    assert london == [dt.datetime(2025, 6, 13, 7, 30, tzinfo=UTC), dt.datetime(2025, 6, 16, 7, 30, tzinfo=UTC)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Inbox:
    def __init__(self, refuse: bool = False):
        self.messages = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((session.authenticated, envelope.rcpt_tos[:], envelope.content))
        return "250 2.0.0 queued as sigma-test"


@pytest.fixture
def smtp(tmp_path):
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        # handled=False: the server itself answers a refusal with "535 5.7.8 Authentication credentials invalid"
        return AuthResult(success=auth_data.login == b"alice" and auth_data.password == b"s3cret", handled=False)

    servers = []

    def start(refuse=False):
        inbox = Inbox(refuse)
        port = _free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                                authenticator=authenticator, auth_required=True, auth_require_tls=True)
        controller.start()
        servers.append(controller)
        return inbox, f"smtp://alice:s3cret@127.0.0.1:{port}?starttls=true&cafile={cert}"

    yield start
    for c in servers:
        c.stop()


def _setup(catalog, tmp_path, smtp_url):
    from cluster.artifacts import ArtifactStore
    from cluster.catalog import User
    from cluster.config import Settings
    from compute.marketdata.synthetic import SyntheticProvider
    from serve_app.users import create_user
    from services.portfolio.service import add_position
    from services.reports import service

    name = "sched_" + secrets.token_hex(3)
    create_user(catalog, name, "pw-" + secrets.token_hex(8), role="user", tier="pro", update=True)
    with catalog.session() as s:
        uid = s.scalar(select(User.id).where(User.username == name))
    for ticker, qty in {"AAPL": 100, "XOM": -50}.items():
        add_position(catalog, uid, {"ticker": ticker, "quantity": qty, "price": 100.0})
    template = service.create_template(catalog, uid, {"name": "Evening", "type": "risk_summary", "sections": ["exposure", "var"]})
    settings = Settings(home=tmp_path, database_url=catalog.url, smtp_url=smtp_url, smtp_from="sigma@example.com")
    return uid, template, settings, ArtifactStore(f"file://{tmp_path}/artifacts"), SyntheticProvider(seed=7)


def _rewind(catalog, schedule_id, when):
    from cluster.catalog import ReportSchedule

    with catalog.session() as s:
        s.get(ReportSchedule, schedule_id).checked_until = when


def test_scheduled_report_is_emailed_once_with_catch_up(catalog, tmp_path, smtp):
    from services.reports import schedules

    inbox, url = smtp()
    uid, template, settings, store, provider = _setup(catalog, tmp_path, url)
    sched = schedules.create_schedule(catalog, uid, {"template_id": template["template_id"], "frequency": "daily",
                                                     "time": "16:00", "timezone": "America/New_York", "email": "pm@example.com"})
    assert sched["cron"] == "0 16 * * *" and sched["next_run"]
    _rewind(catalog, sched["schedule_id"], ny(2025, 6, 11, 12, 0))
    events = []

    def emit(user_id, event, data):
        events.append((user_id, event, data))

    done = schedules.run_due(catalog, store, provider, settings, now=ny(2025, 6, 11, 16, 5), emit=emit, backoff_s=0.01)
    assert [d["status"] for d in done] == ["sent"], [(r["error"], r["smtp_reply"]) for r in schedules.schedule_runs(catalog, uid, sched["schedule_id"])]
    assert done[0]["smtp_reply"].startswith("250 2.0.0 queued")
    assert len(inbox.messages) == 1
    authenticated, rcpts, raw = inbox.messages[0]
    assert authenticated and rcpts == ["pm@example.com"]
    msg = email.message_from_bytes(raw)
    assert msg["Subject"].startswith("Sigma Risk summary - 2025-06-11 16:00")
    pdfs = [p for p in msg.walk() if p.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1
    pdf = pdfs[0].get_payload(decode=True)
    (tmp_path / "mail.pdf").write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "mail.pdf"), "-"], check=True, capture_output=True, text=True).stdout
    assert "Risk summary" in text and "Notional gross exposure" in text and "Value at risk" in text
    assert events and events[0][1] == "report.ready" and events[0][0] == uid

    # the same tick again (a second scheduler, a restart): nothing is sent twice
    assert schedules.run_due(catalog, store, provider, settings, now=ny(2025, 6, 11, 16, 5), backoff_s=0.01) == []
    assert len(inbox.messages) == 1
    # down from Wednesday evening to Monday evening: Thu and Fri are logged skipped, Monday is sent once
    done = schedules.run_due(catalog, store, provider, settings, now=ny(2025, 6, 16, 16, 10), backoff_s=0.01)
    assert [(d["scheduled_for"], d["status"]) for d in done] == [(ny(2025, 6, 16, 16, 0).isoformat(), "sent")]
    assert len(inbox.messages) == 2
    runs = schedules.schedule_runs(catalog, uid, sched["schedule_id"])
    assert [(r["scheduled_for"][:10], r["status"]) for r in runs] == [
        ("2025-06-16", "sent"), ("2025-06-13", "skipped"), ("2025-06-11", "sent")] or \
        [(dt.datetime.fromisoformat(r["scheduled_for"]).astimezone(NY).date().isoformat(), r["status"]) for r in runs] == [
        ("2025-06-16", "sent"), ("2025-06-13", "skipped"), ("2025-06-12", "skipped"), ("2025-06-11", "sent")]
    assert len(runs) == 4 and all(r["attempts"] == 1 for r in runs if r["status"] == "sent")
    schedules.delete_schedule(catalog, uid, sched["schedule_id"])
    assert schedules.list_schedules(catalog, uid) == []
    assert schedules.run_due(catalog, store, provider, settings, now=ny(2025, 6, 20, 17, 0)) == []


def test_refusing_smtp_server_is_logged_with_its_reply_after_retries(catalog, tmp_path, smtp):
    from services.reports import schedules

    inbox, url = smtp(refuse=True)
    uid, template, settings, store, provider = _setup(catalog, tmp_path, url)
    sched = schedules.create_schedule(catalog, uid, {"template_id": template["template_id"], "frequency": "weekly",
                                                     "day_of_week": 5, "time": "17:00", "email": "Risk Desk <desk@example.com>"})
    _rewind(catalog, sched["schedule_id"], ny(2025, 6, 12, 12, 0))
    done = schedules.run_due(catalog, store, provider, settings, now=ny(2025, 6, 13, 17, 1), backoff_s=0.01)
    assert done[0]["status"] == "failed" and done[0]["smtp_reply"].startswith("550 5.1.1 mailbox unavailable")
    run = schedules.schedule_runs(catalog, uid, sched["schedule_id"])[0]
    assert run["status"] == "failed" and run["attempts"] == 3 and run["smtp_reply"].startswith("550") and run["report_id"]
    assert inbox.messages == []


def test_bad_schedule_input_names_the_field(catalog, tmp_path):
    from services.reports import schedules
    from services.reports.service import ReportInputError

    uid, template, *_ = _setup(catalog, tmp_path, None)
    base = {"template_id": "daily_risk", "email": "pm@example.com"}
    for patch, field in (({"frequency": "cron", "cron": "61 * * * *"}, "cron"), ({"frequency": "cron", "cron": "* * *"}, "cron"),
                         ({"time": "25:00"}, "time"), ({"time": "4pm"}, "time"), ({"timezone": "Mars/Olympus"}, "timezone"),
                         ({"email": "not-an-address"}, "email"), ({"email": "a@b"}, "email"), ({"frequency": "hourly"}, "frequency"),
                         ({"frequency": "weekly", "day_of_week": 9}, "day_of_week"), ({"template_id": "nope"}, "template_id"),
                         ({"template_id": "backtest_tearsheet"}, "backtest_id")):
        with pytest.raises(ReportInputError) as err:
            schedules.create_schedule(catalog, uid, {**base, **patch})
        assert err.value.field == field, (patch, err.value)
    with pytest.raises(LookupError):
        schedules.create_schedule(catalog, uid, {**base, "template_id": "backtest_tearsheet", "backtest_id": "bt_other"})
    assert schedules.list_schedules(catalog, uid) == []


def test_wrong_smtp_password_is_a_failed_run_with_the_servers_reply_and_no_secret(catalog, tmp_path, smtp, caplog):
    import logging

    from services.reports import schedules

    inbox, url = smtp()
    url = url.replace("alice:s3cret@", "alice:wr0ng-pw@")
    uid, template, settings, store, provider = _setup(catalog, tmp_path, url)
    sched = schedules.create_schedule(catalog, uid, {"template_id": template["template_id"], "frequency": "daily",
                                                     "time": "16:00", "email": "pm@example.com"})
    _rewind(catalog, sched["schedule_id"], ny(2025, 6, 11, 12, 0))
    with caplog.at_level(logging.DEBUG):
        done = schedules.run_due(catalog, store, provider, settings, now=ny(2025, 6, 11, 16, 5), backoff_s=0.01)
    assert done[0]["status"] == "failed" and done[0]["smtp_reply"].startswith("535"), done
    run = schedules.schedule_runs(catalog, uid, sched["schedule_id"])[0]
    assert run["status"] == "failed" and run["smtp_reply"].startswith("535") and run["report_id"]
    assert run["attempts"] == 1  # a refused password is not retried
    assert inbox.messages == []
    assert "wr0ng-pw" not in caplog.text and "wr0ng-pw" not in str(run)
