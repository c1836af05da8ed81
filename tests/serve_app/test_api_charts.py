"""Series, tables and charts over the API (issue 14), on the live Serve app: a walk-forward
backtest's per-bar series checked against empyrical (drawdown, Sharpe, cumulative return) and
the fills CSV; JSON equals Parquet; a small sweep's grid table and heatmap; every chart a
decodable, non-blank PNG or a parseable SVG; bad names and other users' results."""

from __future__ import annotations

import io
import os
import re
import xml.etree.ElementTree as ET

import empyrical
import numpy as np
import pandas as pd
import pytest
from pathlib import Path
from PIL import Image

from tests.serve_app.test_api_platform import V1, assert_error

# drawing and reading back pictures and PDFs does not depend on the catalog back end
pytestmark = pytest.mark.postgresql_only

USER = "chart_ann"


def _png_ok(resp, min_px=(600, 300)) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(resp.content)).convert("RGB")
    assert img.size[0] >= min_px[0] and img.size[1] >= min_px[1]
    pixels = np.asarray(img)
    # non-blank: a fair share of pixels are not the white background, and several colours
    assert (pixels.min(axis=2) < 200).mean() > 0.01
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20
    return pixels


@pytest.fixture(scope="module")
def backtest(api):
    h = api.headers(USER)
    resp = api.http.post(f"{V1}/models", json={"template_id": "swingsigma_default", "config": {"ticker": "MSFT"}}, headers=h)
    assert resp.status_code in (201, 400), resp.text
    mid = "MSFT_equity_5d_daily"
    m = api.http.post(f"{V1}/build_matrix", json={"model_id": mid, "start_date": "2020-01-01", "end_date": "2023-12-31"},
                      headers=h)
    assert m.status_code == 200, m.text
    started = api.http.post(f"{V1}/backtest", json={"model_id": mid, "matrix_sha": m.json()["matrix_sha"],
                                                    "config": {"kind": "thresholds", "value": 0.55, "splits": 4}}, headers=h)
    assert started.status_code == 202, started.text
    job = api.wait_job(started.json()["job_id"], USER, timeout=240)
    assert job["status"] == "completed", job
    bt = api.http.get(f"{V1}/backtest/{started.json()['backtest_id']}", headers=h).json()
    return bt


def test_backtest_series_matches_metrics_fills_and_empyrical(api, backtest):
    h = api.headers(USER)
    bid = backtest["backtest_id"]
    assert backtest["series_url"] == f"/api/v1/backtest/{bid}/series"
    resp = api.http.get(f"{V1}/backtest/{bid}/series", headers=h)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    bars = pd.DataFrame(body["bars"])
    assert body["columns"] == ["timestamp", "equity", "returns", "drawdown", "position", "benchmark_return", "fold"]
    assert body["n_bars"] == len(bars) > 200
    metrics = backtest["metrics"]
    r = bars["returns"].to_numpy()
    # independent references: empyrical on the bar returns, the fills CSV for the trades
    assert bars["equity"].iloc[-1] == pytest.approx(metrics["final_equity"], rel=1e-9)
    assert bars["drawdown"].min() == pytest.approx(empyrical.max_drawdown(r), abs=1e-9)
    assert bars["drawdown"].min() == pytest.approx(metrics["max_drawdown"], abs=1e-9)
    assert empyrical.cum_returns_final(r) == pytest.approx(metrics["cum_ret"], abs=1e-9)
    assert empyrical.sharpe_ratio(r, annualization=252) == pytest.approx(metrics["sharpe"], rel=1e-6)
    assert set(bars["position"]) <= {-1, 0, 1} and sorted(set(bars["fold"])) == [0, 1, 2, 3]
    trades = pd.DataFrame(body["trades"])
    # closed round trips, plus the opening fill of a position still open at the end (issue 16:
    # marked at the last close, its P&L unrealised)
    open_trade = metrics["open_trade"]
    assert len(trades) == 2 * metrics["trades"] + (1 if open_trade else 0) and set(trades["action"]) <= {"BUY", "SELL"}
    unrealised = open_trade["unrealised_pnl"] if open_trade else 0.0
    assert trades["cumulative_pnl"].iloc[-1] + unrealised == pytest.approx(metrics["final_equity"] - 100_000, abs=0.01)
    assert [f["fold"] for f in body["folds"]] == [0, 1, 2, 3]
    # the benchmark: MSFT's own close-to-close returns on the same bars (the matrix's closes)
    closes = (1 + bars["benchmark_return"]).cumprod()
    assert np.isfinite(bars["benchmark_return"]).all() and closes.iloc[-1] > 0

    pq = api.http.get(f"{V1}/backtest/{bid}/series", params={"format": "parquet"}, headers=h)
    assert pq.status_code == 200 and pq.headers["content-type"] == "application/vnd.apache.parquet"
    frame = pd.read_parquet(io.BytesIO(pq.content))
    assert list(frame.columns) == body["columns"]
    np.testing.assert_allclose(frame["equity"].to_numpy(), bars["equity"].to_numpy(), rtol=0, atol=0)
    assert frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist() == body["bars"]["timestamp"]
    tr = pd.read_parquet(io.BytesIO(api.http.get(f"{V1}/backtest/{bid}/series", params={"format": "parquet", "table": "trades"},
                                                 headers=h).content))
    assert len(tr) == len(trades)

    # the Python client hands back pandas objects
    from sigma_client import Client

    with Client(api.base_url, api.user(USER)) as client:
        cbars, ctrades = client.backtest_series(bid)
        assert isinstance(cbars.index, pd.DatetimeIndex) and len(cbars) == len(bars) and len(ctrades) == len(trades)
        np.testing.assert_array_equal(cbars["drawdown"].to_numpy(), bars["drawdown"].to_numpy())
        assert client.chart(f"/backtest/{bid}/chart/monthly.svg").startswith(b"<?xml")

    assert_error(api.http.get(f"{V1}/backtest/{bid}/series", params={"format": "xlsx"}, headers=h), 400, "INVALID_PARAMETER",
                 field="format")
    assert_error(api.http.get(f"{V1}/backtest/{bid}/series", params={"table": "x", "format": "parquet"}, headers=h), 400,
                 "INVALID_PARAMETER", field="table")
    assert_error(api.http.get(f"{V1}/backtest/{bid}/series", headers=api.headers("chart_eve")), 404, "NOT_FOUND")
    assert_error(api.http.get(f"{V1}/backtest/bt_nope/series", headers=h), 404, "NOT_FOUND")


def test_backtest_charts_png_and_svg(api, backtest):
    h = api.headers(USER)
    bid = backtest["backtest_id"]
    for name in ("equity", "monthly", "rolling", "distribution", "position"):
        _png_ok(api.http.get(f"{V1}/backtest/{bid}/chart/{name}.png", headers=h), min_px=(600, 250))
    svg = api.http.get(f"{V1}/backtest/{bid}/chart/distribution.svg", headers=h)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.content)
    assert root.tag.endswith("svg")
    text = svg.text
    # the VaR/ES legend prints the same historical figures empyrical computes
    r = pd.DataFrame(api.http.get(f"{V1}/backtest/{bid}/series", headers=h).json()["bars"])["returns"].to_numpy()
    var = empyrical.value_at_risk(r, cutoff=0.05)
    assert f"VaR 95%: {100 * var:.2f}%" in text
    assert_error(api.http.get(f"{V1}/backtest/{bid}/chart/nope.png", headers=h), 400, "INVALID_PARAMETER", field="chart")
    assert_error(api.http.get(f"{V1}/backtest/{bid}/chart/equity.gif", headers=h), 400, "INVALID_PARAMETER", field="chart")
    assert_error(api.http.get(f"{V1}/backtest/{bid}/chart/equity.png", headers=api.headers("chart_eve")), 404, "NOT_FOUND")


def test_a_completed_backtests_charts_are_drawn_ahead_into_the_store(api, backtest):
    """The backtest's job draws its charts into the artifact store when it completes; a first
    view in any replica is then a read of those bytes, and they are the series' charts."""
    import time

    from cluster.artifacts import ArtifactStore
    from cluster.catalog import Backtest
    from services.lab import backtests
    from services.reports import charts
    from services.reports.lab import BACKTEST_CHARTS, backtest_chart, chart_artifact_path

    h = api.headers(USER)
    store = ArtifactStore(api.settings.resolved_storage_url)
    with api.catalog.session() as s:
        bt = s.get(Backtest, backtest["backtest_id"])
        s.expunge(bt)
    paths = {name: chart_artifact_path(bt.series_sha, name, "png", title=backtest["model_id"]) for name in BACKTEST_CHARTS}
    deadline = time.monotonic() + 60
    while not all(store.exists(p) for p in paths.values()):
        assert time.monotonic() < deadline, {n: store.exists(p) for n, p in paths.items()}
        time.sleep(0.2)
    bars = backtests.load_series(store, bt)
    for name, path in paths.items():
        served = api.http.get(f"{V1}/backtest/{backtest['backtest_id']}/chart/{name}.png", headers=h)
        assert served.status_code == 200 and served.content == store.get(path), name
        # what was drawn ahead is this series' chart, with the model's title (Agg draws the same bytes)
        assert served.content == charts.render(backtest_chart(name, bars, title=backtest["model_id"]), "png"), name


def test_sweep_grid_table_and_heatmap(api, backtest, tmp_path):
    import time

    h = api.headers(USER)
    resp = api.http.post(f"{V1}/backtest_sweep", json={"model_id": backtest["model_id"], "sweep": {
        "thresholds": [0.5, 0.55, 0.6, 0.65], "fees_bps": [0.5, 1.0, 2.0]}}, headers=h)
    assert resp.status_code == 202, resp.text
    sid = resp.json()["sweep_id"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        got = api.http.get(f"{V1}/backtest_sweep/{sid}", headers=h).json()
        if got["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.3)
    assert got["status"] == "completed", got
    grid = api.http.get(f"{V1}/backtest_sweep/{sid}/grid", headers=h)
    assert grid.status_code == 200, grid.text
    body = grid.json()
    table = pd.DataFrame(body["columns"])
    assert body["n_configs"] == len(table) == 12
    assert sorted(set(table["value"])) == [0.5, 0.55, 0.6, 0.65] and sorted(set(table["fees_bps"])) == [0.5, 1.0, 2.0]
    # the table agrees with the leaderboard, row by row
    board = api.http.get(f"{V1}/leaderboard", params={"sweep_id": sid, "limit": 100}, headers=h).json()["items"]
    by_index = {i["config_index"]: i for i in board}
    for row in table.itertuples():
        assert row.sharpe == pytest.approx(by_index[row.config_index]["metrics"]["sharpe"], rel=1e-12)
    # higher fees never help: at a fixed threshold (same trades) the cumulative return falls as fees_bps rises
    for _, g in table.groupby("value"):
        s = g.sort_values("fees_bps")["cum_ret"].to_numpy()
        assert (np.diff(s) <= 1e-12).all()
    pq = pd.read_parquet(io.BytesIO(api.http.get(f"{V1}/backtest_sweep/{sid}/grid", params={"format": "parquet"},
                                                 headers=h).content))
    assert len(pq) == 12 and list(pq.columns) == list(body["columns"])
    from sigma_client import Client

    with Client(api.base_url, api.user(USER)) as client:
        assert client.sweep_grid(sid).equals(pq)
    _png_ok(api.http.get(f"{V1}/backtest_sweep/{sid}/chart/heatmap.png", params={"x": "value", "y": "fees_bps"}, headers=h))
    _png_ok(api.http.get(f"{V1}/leaderboard/chart/sharpe_vs_deflated.png", params={"sweep_id": sid}, headers=h))
    assert_error(api.http.get(f"{V1}/backtest_sweep/{sid}/chart/heatmap.png", params={"x": "lever"}, headers=h), 400,
                 "INVALID_PARAMETER", field="x")
    assert_error(api.http.get(f"{V1}/backtest_sweep/{sid}/chart/heatmap.png", params={"x": "value", "y": "value"}, headers=h),
                 400, "INVALID_PARAMETER", field="y")
    assert_error(api.http.get(f"{V1}/backtest_sweep/{sid}/chart/heatmap.png", params={"metric": "nope"}, headers=h), 400,
                 "INVALID_PARAMETER", field="metric")
    assert_error(api.http.get(f"{V1}/backtest_sweep/{sid}/grid", headers=api.headers("chart_eve")), 404, "NOT_FOUND")

    from tests.serve_app.report_checks import generate, non_blank, number_after, pdf_images, pdf_text

    _, pdf = generate(api, USER, {"type": "sweep_report", "format": "pdf", "sweep_id": sid})
    text = pdf_text(pdf, tmp_path)
    assert re.search(r"Configurations\s+12\b", text)
    assert number_after(text, "Best Sharpe") == pytest.approx(table["sharpe"].max(), abs=5e-5)
    images = pdf_images(pdf, tmp_path)
    assert len(images) == 2 and all(non_blank(i) for i in images)  # heatmap, Sharpe vs deflated Sharpe


def test_backtest_tearsheet_pdf_prints_the_backtests_numbers(api, backtest, tmp_path):
    from tests.serve_app.report_checks import generate, money_after, non_blank, number_after, pdf_images, pdf_pages, pdf_text, render_pages

    report, pdf = generate(api, USER, {"type": "backtest_tearsheet", "format": "pdf", "backtest_id": backtest["backtest_id"]})
    text = pdf_text(pdf, tmp_path)
    m = backtest["metrics"]
    assert number_after(text, "Sharpe") == pytest.approx(m["sharpe"], abs=5e-5)
    assert number_after(text, "Sortino") == pytest.approx(m["sortino"], abs=5e-5)
    assert money_after(text, "Final equity") == pytest.approx(m["final_equity"], abs=0.005)
    assert f"{100 * m['max_drawdown']:,.2f}%" in text and f"{100 * m['cum_ret']:,.2f}%" in text
    assert re.search(r"(?m)^\s*Trades\s+" + f"{m['trades']:,.0f}" + r"\s*$", text)
    for fold in backtest["folds"]:
        assert f"{fold['sharpe']:,.4f}" in text
    assert pdf_pages(pdf, tmp_path) == report["pages"] >= 3
    images = pdf_images(pdf, tmp_path)
    assert len(images) == 4 and all(non_blank(i) for i in images)  # equity, monthly, rolling, distribution
    pages = render_pages(pdf, tmp_path, dpi=80)
    assert all(non_blank(Image.open(p)) for p in pages)
    if os.environ.get("SIGMA_DOCS_IMG"):  # refresh the pictures of docs/reports.md
        out = Path(os.environ["SIGMA_DOCS_IMG"])
        for i, p in enumerate(pages[:2], 1):
            Image.open(p).save(out / f"report_tearsheet_page{i}.png", optimize=True)

    html_report, page = generate(api, USER, {"type": "backtest_tearsheet", "format": "html", "backtest_id": backtest["backtest_id"],
                                             "sections": ["metrics", "equity"]})
    assert page.count(b"data:image/png;base64,") == 1 and f"{m['sharpe']:,.4f}".encode() in page
    assert_error(api.http.post(f"{V1}/reports/generate", json={"type": "backtest_tearsheet", "backtest_id": backtest["backtest_id"]},
                               headers=api.headers("chart_eve")), 404, "NOT_FOUND")


def test_portfolio_charts_draw_the_apis_figures(api):
    """Every portfolio chart, PNG and SVG; the SVG text carries the API's sector names and the
    VaR legend the API's historical VaR; another user's portfolio is a 404."""
    user = "chart_pm"
    h = api.headers(user)
    expiry = (pd.Timestamp.today() + pd.Timedelta(days=120)).date().isoformat()
    for body in ({"ticker": "AAPL", "quantity": 300, "price": 150, "tags": ["core"]},
                 {"ticker": "XOM", "quantity": -200, "price": 95, "tags": ["hedge"]},
                 {"ticker": "JPM", "quantity": 100, "price": 140},
                 {"ticker": "NVDA", "type": "LC", "quantity": 3, "strike": 500, "expiration": expiry, "price": 20}):
        assert api.http.post(f"{V1}/positions", json=body, headers=h).status_code in (201, 409)
    for name in ("exposure", "sector", "tag", "greeks", "factors", "scenarios", "var"):
        _png_ok(api.http.get(f"{V1}/portfolio/chart/{name}.png", headers=h), min_px=(600, 250))
    sector = api.http.get(f"{V1}/portfolio/chart/sector.svg", headers=h)
    assert sector.status_code == 200 and sector.headers["content-type"].startswith("image/svg+xml")
    ET.fromstring(sector.content)
    groups = api.http.get(f"{V1}/portfolio/exposures", headers=h).json()["data"]["by_sector"]
    assert groups and all(str(g["group"]) in sector.text for g in groups)

    var_rows = api.http.get(f"{V1}/risk/var", params={"refresh": True}, headers=h).json()["data"]["var"]
    hist = next(r for r in var_rows if r["method"] == "historical" and r["level"] == 0.95 and r["horizon_days"] == 1)
    legend = re.search(r"VaR 95%: (-?[\d.]+)%", api.http.get(f"{V1}/portfolio/chart/var.svg", headers=h).text)
    assert legend, "no VaR legend in the chart"
    assert abs(float(legend.group(1))) == pytest.approx(abs(100 * hist["return"]), abs=0.006)

    assert_error(api.http.get(f"{V1}/portfolio/chart/weather.png", headers=h), 400, "INVALID_PARAMETER", field="chart")
    assert_error(api.http.get(f"{V1}/portfolio/chart/sector.gif", headers=h), 400, "INVALID_PARAMETER", field="chart")
    pid = api.http.get(f"{V1}/portfolios", headers=h).json()["data"]["portfolios"][0]["id"]
    assert_error(api.http.get(f"{V1}/portfolio/chart/sector.png", params={"portfolio_id": pid},
                              headers=api.headers("chart_eve")), 404, "NOT_FOUND")
    assert_error(api.http.get(f"{V1}/portfolio/chart/sector.png"), 401, "UNAUTHORIZED")
