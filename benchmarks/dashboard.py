"""The dashboard as a person meets it: headless Chromium (Debian's, through its chromedriver)
on ``sigma serve --demo`` (``benchmarks/_common.LiveSigma``), logged in as
``demo_hedgefundstyle`` (30 positions with options).

- ``portfolio_first_paint``: first contentful paint of /app/portfolio, warm (the book priced
  and every page asset loaded once before), from the browser's own Performance API
  (navigation start to first-contentful-paint), p50 and max of 15 loads (target < 1 s);
  ``portfolio_dom_ready`` alongside (the whole server-rendered page parsed).
- ``sse_event_to_page``: a ``POST /api/v1/ui/highlight`` sent from outside to the moment the
  page's stream handler has it (the page stamps ``Date.now()``; same machine, same clock),
  p50 and p95 of 60 events sent one at a time (target p95 < 200 ms); the POST's own round
  trip, and the time from its answer to the page (the stream's own share), alongside.
Prints one JSON object per line, each with the CPU model and the load.
"""

from __future__ import annotations

import random
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LiveSigma, cpu_model, percentile  # noqa: E402
from _common import emit as _emit  # noqa: E402

CPU = cpu_model()
USER = "demo_hedgefundstyle"
LOADS = 15
EVENTS = 60


def emit(metric: str, value: float, unit: str, n: int, **extra) -> None:
    _emit("dashboard", metric, round(value, 2), unit, n, cpu=CPU, browser="chromium (Debian) headless", **extra)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def wait(driver, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            out = predicate(driver)
            if out:
                return out
        except Exception:  # noqa: BLE001 - the DOM is changing
            pass
        time.sleep(0.01)
    raise RuntimeError("timed out")


def main() -> None:
    if not (shutil.which("chromium") and Path("/usr/bin/chromedriver").exists()):
        print("chromium / chromedriver missing: run `make sysdeps`", file=sys.stderr)
        sys.exit(1)
    from selenium.webdriver.common.by import By

    with LiveSigma(demo_user=USER) as sigma:
        base = sigma.base.removesuffix("/api/v1")
        driver = browser()
        try:
            driver.get(f"{base}/app/login")
            driver.find_element(By.ID, "username").send_keys(USER)
            driver.find_element(By.ID, "password").send_keys(sigma.password)
            driver.find_element(By.ID, "login_button").click()
            wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#positions_table tbody tr"), timeout=300)
            for _ in range(2):  # warm: the book, the lazy panels and the assets
                driver.get(f"{base}/app/portfolio")
                wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#positions_table tbody tr"))
            paints, ready = [], []
            for _ in range(LOADS):
                driver.get(f"{base}/app/portfolio")
                fcp = wait(driver, lambda d: d.execute_script(
                    "const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null;"))
                dom = driver.execute_script("const n = performance.getEntriesByType('navigation')[0]; return n.domContentLoadedEventEnd;")
                paints.append(float(fcp))
                ready.append(float(dom))
                wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#positions_table tbody tr"))
            emit("portfolio_first_paint_p50", statistics.median(paints), "ms", LOADS, max_ms=round(max(paints), 2),
                 target_ms=1000, path="navigation start -> first-contentful-paint, warm")
            emit("portfolio_dom_ready_p50", statistics.median(ready), "ms", LOADS, max_ms=round(max(ready), 2))

            wait(driver, lambda d: "on" in d.find_element(By.ID, "sync_status").get_attribute("class"))
            lat, posts, after_post = [], [], []
            for i in range(EVENTS):
                style = ("warning", "critical", "info")[i % 3]
                seen = driver.execute_script("return window.__sigmaEvents.length")
                sent = time.time() * 1000
                resp = sigma.http.post("/ui/highlight", headers=sigma.headers,
                                       json={"elements": [{"id": "gamma_metric", "style": style, "pulse": True}]})
                posts.append(time.time() * 1000 - sent)
                assert resp.status_code == 200, resp.text
                got = wait(driver, lambda d: d.execute_script(
                    "return window.__sigmaEvents.length > arguments[0] ? window.__sigmaEvents[arguments[0]].t : null", seen), 10)
                lat.append(float(got) - sent)
                after_post.append(float(got) - (sent + posts[-1]))  # < 0: the page had it before the POST answered
                time.sleep(random.uniform(0.05, 0.2))  # events at random phases of the stream's poll
            emit("sse_event_to_page_p50", statistics.median(lat), "ms", EVENTS, target_p95_ms=200,
                 path="POST /ui/highlight sent -> the page's handler (SSE; same-replica wake-up, 50 ms catalog poll)")
            emit("sse_event_to_page_p95", percentile(lat, 95), "ms", EVENTS, target_ms=200, max_ms=round(max(lat), 2),
                 post_roundtrip_p50_ms=round(statistics.median(posts), 2), post_roundtrip_p95_ms=round(percentile(posts, 95), 2))
            emit("sse_after_post_answered_p95", percentile(after_post, 95), "ms", EVENTS, max_ms=round(max(after_post), 2),
                 path="the POST's answer received -> the page's handler (the stream's own delay)")
        finally:
            driver.quit()


if __name__ == "__main__":
    main()
