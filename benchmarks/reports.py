"""Reports and charts end to end over HTTP (issue 14).

Starts Sigma as ``make run`` does (``sigma serve --demo``, fresh ``SIGMA_HOME``;
``benchmarks/_common.LiveSigma``), logs in as ``demo_hedgefundstyle`` and times:
- ``risk_summary_pdf``: POST /reports/generate (risk_summary, every section, pdf) until the
  job is completed and the file downloaded (target < 3 s);
- ``backtest_tearsheet_pdf``: the same for a tearsheet of a swing backtest over 10 years of
  daily bars (2014-2023; the backtest itself is not timed) (target < 1.5 s);
- ``chart_png``: GET /backtest/{id}/chart/equity.png over HTTP (target < 200 ms), the other
  backtest charts, and every GET /portfolio/chart/{name}.png of the hedge-fund book: the first
  view (which draws) apart from the repeat views (the drawing kept per series / priced book);
- ``noop_get``: GET /auth/me in the same run (the request path alone, the floor of every line).
Prints one JSON object per line, each with the CPU model and the load.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LiveSigma, cpu_model  # noqa: E402
from _common import emit as _emit  # noqa: E402

CPU = cpu_model()
PATH = "sigma serve --demo over HTTP"


def emit(metric: str, value: float, unit: str, n: int, **extra) -> None:
    _emit("reports", metric, round(value, 3), unit, n, cpu=CPU, path=PATH, **extra)


def wait_job(http, h, job_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = http.get(f"/jobs/{job_id}", headers=h).json()["data"]
        if data["status"] in ("completed", "failed", "cancelled"):
            assert data["status"] == "completed", data
            return data
        time.sleep(0.02)
    raise TimeoutError(job_id)


def report_ms(http, h, body: dict) -> tuple[float, int]:
    t = time.perf_counter()
    started = http.post("/reports/generate", json=body, headers=h)
    assert started.status_code == 202, started.text
    wait_job(http, h, started.json()["job_id"])
    report = http.get(f"/reports/{started.json()['report_id']}", headers=h).json()["data"]
    file = http.get(report["download_url"].removeprefix("/api/v1"), headers=h)
    assert file.status_code == 200 and file.content.startswith(b"%PDF")
    return (time.perf_counter() - t) * 1000, len(file.content)


def timed_get(http, h, path: str, n: int) -> tuple[list[float], int, float]:
    """``n`` timed GETs after a first one (timed apart: the first view draws, later views of the
    same figures come from the drawing kept with them); (samples ms, bytes, first ms)."""
    t = time.perf_counter()
    http.get(path, headers=h)
    first_ms = (time.perf_counter() - t) * 1000
    samples, size = [], 0
    for _ in range(n):
        t = time.perf_counter()
        r = http.get(path, headers=h)
        samples.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
        size = len(r.content)
    return samples, size, first_ms


def main(repeats: int = 5) -> None:
    with LiveSigma(demo_user="demo_hedgefundstyle") as sigma:
        http, h = sigma.http, sigma.headers
        noop, _, _ = timed_get(http, h, "/auth/me", 20)
        emit("noop_get", statistics.median(noop), "ms", len(noop), best=round(min(noop), 1), route="/auth/me")
        for name in ("exposure", "sector", "tag", "greeks", "factors", "scenarios", "var"):
            samples, size, first = timed_get(http, h, f"/portfolio/chart/{name}.png", repeats * 2)
            emit(f"portfolio_chart_png_{name}", statistics.median(samples), "ms", len(samples), best=round(min(samples), 1),
                 first_view_ms=round(first, 1), target_ms=200, bytes=size,
                 vs_noop=round(statistics.median(samples) / statistics.median(noop), 1))
        body = {"type": "risk_summary", "format": "pdf"}
        first, size = report_ms(http, h, body)
        emit("risk_summary_pdf_first", first, "ms", 1, bytes=size, note="first report: workers load matplotlib/reportlab")
        times = [report_ms(http, h, body)[0] for _ in range(repeats)]
        emit("risk_summary_pdf", statistics.median(times), "ms", repeats, best=round(min(times), 1), target_ms=3000,
             book="demo_hedgefundstyle (30 positions with options), all sections")

        resp = http.post("/models", json={"template_id": "swingsigma_default", "config": {"ticker": "SPY"}}, headers=h)
        mid = resp.json().get("model_id", "SPY_equity_5d_daily")
        matrix = http.post("/build_matrix", json={"model_id": mid, "start_date": "2014-01-01", "end_date": "2023-12-31"},
                           headers=h).json()
        bt = http.post("/backtest", json={"model_id": mid, "matrix_sha": matrix["matrix_sha"], "config": {"splits": 5}},
                       headers=h).json()
        wait_job(http, h, bt["job_id"])
        bid = bt["backtest_id"]
        n_bars = http.get(f"/backtest/{bid}/series", headers=h).json()["n_bars"]
        tb = {"type": "backtest_tearsheet", "format": "pdf", "backtest_id": bid}
        first_tb, _ = report_ms(http, h, tb)  # the first draws the backtest's charts
        emit("backtest_tearsheet_pdf_first", first_tb, "ms", 1, target_ms=1500, matrix_rows=matrix["rows"], oos_bars=n_bars)
        times = [report_ms(http, h, tb)[0] for _ in range(repeats)]
        emit("backtest_tearsheet_pdf", statistics.median(times), "ms", repeats, best=round(min(times), 1), target_ms=1500,
             matrix_rows=matrix["rows"], oos_bars=n_bars, note="repeat tearsheets: the charts drawn once per series")
        for name in ("equity", "monthly", "rolling", "distribution"):
            samples, size, first = timed_get(http, h, f"/backtest/{bid}/chart/{name}.png", repeats * 2)
            emit(f"chart_png_{name}", statistics.median(samples), "ms", len(samples), best=round(min(samples), 1),
                 first_view_ms=round(first, 1), target_ms=200, oos_bars=n_bars, bytes=size)


if __name__ == "__main__":
    main()
