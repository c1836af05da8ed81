"""Reports (issue 14, portfolio spec 8) on the live Serve app: a risk_summary PDF of the
hedge-fund demo book read back with pdftotext and compared number by number with the API's
answers, its pages rendered with pdftoppm and its embedded charts checked non-blank at 150+
dpi; the same report as one self-contained HTML file; templates; bad input and isolation."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.serve_app.report_checks import MONEY, generate, money_after, non_blank, pdf_images, pdf_pages, pdf_text, render_pages
from tests.serve_app.test_api_platform import V1, assert_error

# drawing and reading back pictures and PDFs does not depend on the catalog back end
pytestmark = pytest.mark.postgresql_only

HF = "demo_hedgefundstyle"


@pytest.fixture(scope="module")
def demo(api):
    from serve_app.demo_portfolio import seed

    headers = {u: api.headers(u) for u in ("demo_individual", "demo_hnw", HF)}
    seed(api.catalog, api.settings)
    return headers


def _data(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


STOCKS = "report_stocks"


@pytest.fixture(scope="module")
def stock_book(api):
    """A book of stocks only: its figures depend on the minute's prices alone (no option time
    decay by the second), so a report and the API agree to the cent at the same minute."""
    h = api.headers(STOCKS)
    for body in ({"ticker": "AAPL", "type": "LONG", "quantity": 500, "price": 150}, {"ticker": "MSFT", "type": "LONG", "quantity": 200, "price": 300},
                 {"ticker": "XOM", "type": "SHORT", "quantity": -300, "price": 95}, {"ticker": "JPM", "type": "LONG", "quantity": 150, "price": 140}):
        resp = api.http.post(f"{V1}/positions", json=body, headers=h)
        assert resp.status_code in (201, 409), resp.text
    return h


def _figures_in_text(api, h, text: str, api_now: dict, *, rel: float) -> None:
    def check(printed, expected, digits=2):
        if expected is None:
            assert printed is None
            return
        assert printed == pytest.approx(expected, abs=0.51 * 10 ** -digits, rel=rel)

    exp = api_now["exposures"]
    check(money_after(text, "Equity"), exp["equity"])
    for measure, label in (("notional", "Notional"), ("delta", "Delta-adjusted")):
        for stat in ("long", "short", "gross", "net"):
            check(money_after(text, f"{label} {stat} exposure"), exp["totals"][measure][f"{stat}_exposure"])
    for sector in exp["by_sector"]:
        m = re.search(re.escape(str(sector["group"])) + r"\s+" + str(sector["count"]) + r"\s+(\$-?[\d,]+\.\d{2})", text)
        assert m, sector["group"]
        check(float(m.group(1)[1:].replace(",", "")), sector["notional"]["net"])
    greeks = api_now["greeks"]["current"]
    for g in ("delta", "gamma", "theta", "vega", "rho"):
        m = re.search(r"(?m)^\s*" + g + r"\s+(-?[\d,]+\.\d+|n/a)", text)
        assert m, g
        check(None if m.group(1) == "n/a" else float(m.group(1).replace(",", "")), greeks[g], digits=4)
    for f in api_now["factors"]:
        check(money_after(text, f["factor_name"]), f["exposure_dollars"])
    hist95 = next(r for r in api_now["var"]["var"] if r["method"] == "historical" and r["level"] == 0.95 and r["horizon_days"] == 1)
    m = re.search(r"historical\s+95%\s+1\s+(\$-?[\d,]+\.\d{2})", text)
    assert m
    check(float(m.group(1)[1:].replace(",", "")), hist95["dollars"])
    for sc in api_now["scenarios"]["scenarios"]:
        check(money_after(text, sc["name"]), sc["pnl"])
    for section in ("Exposure", "Greeks", "Factor exposures", "Stress scenarios", "Value at risk", "Alerts"):
        assert section in text


def _api_figures(api, h) -> dict:
    ids = [t["id"] for t in _data(api.http.get(f"{V1}/risk/scenarios/templates", headers=h))]
    return {
        "exposures": _data(api.http.get(f"{V1}/portfolio/exposures", headers=h)),
        "greeks": _data(api.http.get(f"{V1}/risk/greeks", headers=h)),
        "factors": _data(api.http.get(f"{V1}/risk/factors", headers=h)),
        "var": _data(api.http.get(f"{V1}/risk/var", headers=h)),
        "scenarios": _data(api.http.post(f"{V1}/risk/scenarios", json={"scenario_ids": ids}, headers=h)),
    }


def test_risk_summary_pdf_prints_the_apis_numbers(api, stock_book, tmp_path):
    for _attempt in range(4):  # while the market is open, the minute may turn between the reads
        before = _api_figures(api, stock_book)
        report, pdf = generate(api, STOCKS, {"type": "risk_summary", "format": "pdf"})
        after = _api_figures(api, stock_book)
        if before == after:  # every figure the same on both sides of the report: one minute's
            break
    assert before == after, "the API's figures moved at every attempt"
    _figures_in_text(api, stock_book, pdf_text(pdf, tmp_path), after, rel=0)


def test_risk_summary_pdf_of_the_hedge_fund_book_as_a_person_sees_it(api, demo, tmp_path):
    h = demo[HF]
    report, pdf = generate(api, HF, {"type": "risk_summary", "format": "pdf"})
    assert pdf.startswith(b"%PDF-")
    # options decay by the second between the job's pricing and the API's: equal to 1e-4
    _figures_in_text(api, h, pdf_text(pdf, tmp_path), _api_figures(api, h), rel=1e-4)
    # every page renders, every chart image is non-blank at 150+ dpi
    pages = pdf_pages(pdf, tmp_path)
    assert pages == report["pages"] >= 3
    rendered = render_pages(pdf, tmp_path)
    assert len(rendered) == pages and all(non_blank(Image.open(p)) for p in rendered)
    images = pdf_images(pdf, tmp_path)
    assert len(images) >= 6  # exposure, sector, tag, greeks, factors, scenarios
    assert all(non_blank(img) and img.size[0] >= 900 for img in images)
    if os.environ.get("SIGMA_DOCS_IMG"):  # refresh the pictures of docs/reports.md
        Image.open(rendered[0]).save(Path(os.environ["SIGMA_DOCS_IMG"]) / "report_risk_summary_page1.png", optimize=True)

    listing = _data(api.http.get(f"{V1}/reports", headers=h))["reports"]
    assert listing[0]["report_id"] == report["report_id"] and listing[0]["sha256"] == report["sha256"]
    assert _data(api.http.get(f"{V1}/reports", headers=demo["demo_hnw"]))["reports"] == []
    assert_error(api.http.get(f"{V1}/reports/{report['report_id']}/download", headers=demo["demo_hnw"]), 404, "NOT_FOUND")
    assert_error(api.http.get(f"{V1}/reports/{report['report_id']}", headers=demo["demo_hnw"]), 404, "NOT_FOUND")


def _row_money(text: str, label: str, n: int = 3) -> list[float | None]:
    """The ``n`` dollar figures printed after ``label`` on its line."""
    m = re.search(r"(?m)^\s*" + re.escape(label) + r"\s+" + r"\s+".join([MONEY] * n), text)
    assert m, f"{label!r} row not found"
    return [None if g == "n/a" else float(g.replace("$", "").replace(",", "")) for g in m.groups()]


def test_modeling_session_report_prints_the_sessions_numbers_and_trades(api, stock_book, tmp_path):
    h = stock_book
    ids = {p["ticker"]: p["id"] for p in _data(api.http.get(f"{V1}/positions", headers=h))["positions"]}
    created = api.http.post(f"{V1}/modeling/sessions", json={"name": "trim & cover", "base_portfolio": "current"}, headers=h)
    assert created.status_code == 201, created.text
    sid = created.json()["data"]["session_id"]
    mods = [{"position_id": ids["AAPL"], "new_quantity": 300}, {"position_id": ids["XOM"], "action": "close"},
            {"position_id": ids["MSFT"], "new_quantity": -100, "allow_flip": True},
            {"position_id": "new", "ticker": "QQQ", "quantity": 50}]
    put = api.http.put(f"{V1}/modeling/sessions/{sid}/positions", json={"modifications": mods}, headers=h)
    assert put.status_code == 200, put.text
    for _attempt in range(3):  # while the market is open, the minute may turn between the reads
        before = _data(api.http.get(f"{V1}/modeling/sessions/{sid}", headers=h))
        report, pdf = generate(api, STOCKS, {"type": "modeling_session", "session_id": sid, "format": "pdf"})
        after = _data(api.http.get(f"{V1}/modeling/sessions/{sid}", headers=h))
        if before["impact"]["total_value"] == after["impact"]["total_value"]:
            break
    assert report["session_id"] == sid and report["type"] == "modeling_session"
    text = pdf_text(pdf, tmp_path)
    imp = after["impact"]
    assert money_after(text, "Total value before") == pytest.approx(imp["total_value"]["before"], abs=0.006)
    assert money_after(text, "Total value after") == pytest.approx(imp["total_value"]["after"], abs=0.006)
    for measure, label in (("notional", "Notional"), ("delta", "Delta-adjusted")):
        for stat in ("long", "short", "gross", "net"):
            t = imp["exposures"][measure][stat]
            assert _row_money(text, f"{label} {stat}") == pytest.approx([t["before"], t["after"], t["change"]], abs=0.006)
    for sector, t in imp["by_sector"].items():
        assert _row_money(text, sector) == pytest.approx([t["net"]["before"], t["net"]["after"], t["net"]["change"]], abs=0.006)
    # the trade list, worked by hand: AAPL 500 -> 300, XOM -300 -> 0, MSFT 200 -> -100 (a flip: two
    # orders), QQQ 0 -> 50
    orders = re.findall(r"(?m)^\s*(BUY_TO_COVER|SELL_SHORT|BUY|SELL)\s+([A-Z]+)\s+([\d,]+)\s+EQUITY", text)
    assert sorted((a, s, int(q.replace(",", ""))) for a, s, q in orders) == sorted([
        ("SELL", "AAPL", 200), ("BUY_TO_COVER", "XOM", 300), ("SELL", "MSFT", 200), ("SELL_SHORT", "MSFT", 100),
        ("BUY", "QQQ", 50)])
    for section in ("Impact", "Exposure before and after", "Sectors before and after", "Greeks before and after",
                    "Risk before and after", "Trade list"):
        assert section in text
    images = pdf_images(pdf, tmp_path)
    assert len(images) >= 2 and all(non_blank(img) for img in images)
    # another user's session: 404, and nothing recorded
    assert_error(api.http.post(f"{V1}/reports/generate", json={"type": "modeling_session", "session_id": sid},
                               headers=api.headers("demo_hnw")), 404, "NOT_FOUND")


def test_portfolio_overview_html_is_one_self_contained_file(api, demo):
    h = demo["demo_hnw"]
    report, page = generate(api, "demo_hnw", {"type": "portfolio_overview", "format": "html", "sections": ["summary", "exposure"]})
    html = page.decode()
    assert html.startswith("<!DOCTYPE html>") and report["pages"] is None
    assert "data:image/png;base64," in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched from anywhere
    summary = _data(api.http.get(f"{V1}/portfolio/summary", params={"top": 10}, headers=h))
    assert f"${summary['total_value']:,.2f}" in html and f"${summary['cash']:,.2f}" in html
    assert "Performance" not in html  # only the sections asked for


def test_templates_and_bad_input(api, demo):
    h = demo["demo_individual"]
    listing = _data(api.http.get(f"{V1}/reports/templates", headers=h))
    assert {"daily_risk", "weekly_risk", "backtest_tearsheet", "sweep_summary"} <= {t["template_id"] for t in listing["templates"]}
    assert listing["types"]["risk_summary"] == ["exposure", "greeks", "factors", "scenarios", "var", "alerts"]
    created = api.http.post(f"{V1}/reports/templates", json={"name": "Morning", "type": "risk_summary",
                                                            "sections": ["var", "exposure"], "period": "weekly"}, headers=h)
    assert created.status_code == 201, created.text
    t = created.json()["data"]
    assert t["sections"] == ["exposure", "var"] and t["builtin"] is False and t["period"] == "weekly"
    assert t["template_id"] in {x["template_id"] for x in _data(api.http.get(f"{V1}/reports/templates", headers=h))["templates"]}
    assert t["template_id"] not in {x["template_id"] for x in _data(api.http.get(f"{V1}/reports/templates",
                                                                                 headers=demo["demo_hnw"]))["templates"]}
    assert_error(api.http.post(f"{V1}/reports/templates", json={"name": "x", "type": "nope"}, headers=h), 400,
                 "INVALID_PARAMETER", field="type")

    gen = f"{V1}/reports/generate"
    for body, field in (({"type": "nope"}, "type"), ({"type": "risk_summary", "format": "docx"}, "format"),
                        ({"type": "risk_summary", "sections": ["exposure", "weather"]}, "sections[1]"),
                        ({"type": "risk_summary", "sections": []}, "sections"),
                        ({"type": "risk_summary", "period": "hourly"}, "period"),
                        ({"type": "modeling_session"}, "session_id"),
                        ({"type": "risk_summary", "session_id": "ms_x"}, "session_id"),
                        ({"type": "backtest_tearsheet"}, "backtest_id"),
                        ({"type": "sweep_report"}, "sweep_id"),
                        ({"type": "risk_summary", "backtest_id": "bt_x"}, "backtest_id")):
        assert_error(api.http.post(gen, json=body, headers=h), 400, "INVALID_PARAMETER", field=field)
    assert_error(api.http.post(gen, json={"type": "backtest_tearsheet", "backtest_id": "bt_nope"}, headers=h), 404, "NOT_FOUND")
    assert_error(api.http.post(gen, json={"type": "sweep_report", "sweep_id": "sweep_nope"}, headers=h), 404, "NOT_FOUND")
    assert_error(api.http.post(gen, json={"type": "modeling_session", "session_id": "ms_nope"}, headers=h), 404, "NOT_FOUND")
    assert_error(api.http.get(f"{V1}/reports/rpt_nope/download", headers=h), 404, "NOT_FOUND")
    assert_error(api.http.post(gen, json={"type": "risk_summary"}), 401, "UNAUTHORIZED")
    # nothing half-written: no report row was created by any refused request
    assert all(r["status"] == "completed" for r in _data(api.http.get(f"{V1}/reports", headers=h))["reports"])


def test_schedule_routes(api, demo):
    h = demo["demo_individual"]
    url = f"{V1}/reports/schedule"
    created = api.http.post(url, json={"template_id": "weekly_risk", "frequency": "weekly", "day_of_week": 5, "time": "16:00",
                                       "email": "user@example.com"}, headers=h)
    assert created.status_code == 201, created.text
    sched = created.json()["data"]
    assert sched["cron"] == "0 16 * * 5" and sched["timezone"] == "America/New_York" and sched["trading_days_only"] is True
    assert sched["next_run"] and sched["type"] == "risk_summary"
    listing = _data(api.http.get(f"{V1}/reports/schedules", headers=h))["schedules"]
    assert [s["schedule_id"] for s in listing] == [sched["schedule_id"]]
    assert _data(api.http.get(f"{V1}/reports/schedules/{sched['schedule_id']}/runs", headers=h))["runs"] == []
    for patch, field in (({"frequency": "cron", "cron": "not a cron"}, "cron"), ({"time": "24:30"}, "time"),
                         ({"timezone": "Nowhere/City"}, "timezone"), ({"email": "user@@example"}, "email"),
                         ({"template_id": "nope"}, "template_id")):
        assert_error(api.http.post(url, json={"template_id": "daily_risk", "email": "u@example.com", **patch}, headers=h),
                     400, "INVALID_PARAMETER", field=field)
    other = demo["demo_hnw"]
    assert_error(api.http.delete(f"{V1}/reports/schedules/{sched['schedule_id']}", headers=other), 404, "NOT_FOUND")
    assert_error(api.http.get(f"{V1}/reports/schedules/{sched['schedule_id']}/runs", headers=other), 404, "NOT_FOUND")
    assert api.http.delete(f"{V1}/reports/schedules/{sched['schedule_id']}", headers=h).status_code == 200
    assert _data(api.http.get(f"{V1}/reports/schedules", headers=h))["schedules"] == []
