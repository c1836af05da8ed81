"""Polygon client against a real HTTP server on 127.0.0.1: pagination, throttling, backoff."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from compute.marketdata import MarketDataError, make_provider
from compute.marketdata.polygon import TokenBucket, backoff_delay

NY = "America/New_York"


def ms(local: str) -> int:
    return int(pd.Timestamp(local, tz=NY).tz_convert("UTC").value // 1_000_000)


def agg(t, o, h, l, c, v):
    return {"t": t, "o": o, "h": h, "l": l, "c": c, "v": v, "vw": c, "n": 10}


class Recorder:
    """Scripted responses: path -> list of (status, headers, body) consumed in order; the
    last entry repeats."""

    def __init__(self):
        self.script = {}
        self.requests = []

    def add(self, path, *responses):
        self.script[path] = list(responses)


def make_handler(rec: Recorder):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            parsed = urlparse(self.path)
            rec.requests.append((parsed.path, parse_qs(parsed.query),
                                 self.headers.get("Authorization")))
            queue = rec.script.get(parsed.path)
            if not queue:
                status, headers, body = 404, {}, {"status": "NOT_FOUND"}
            else:
                status, headers, body = queue.pop(0) if len(queue) > 1 else queue[0]
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture()
def server():
    rec = Recorder()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(rec))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    rec.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield rec
    httpd.shutdown()
    httpd.server_close()


class FakeTime:
    """Monotonic clock that only moves when the client sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def provider(server, fake, plan="advanced", **kw):
    from compute.marketdata.polygon import PolygonProvider

    return PolygonProvider(api_key="test-key", base_url=server.base_url, plan=plan,
                           clock=fake.clock, sleep=fake.sleep, **kw)


def test_backoff_schedule():
    assert [backoff_delay(a) for a in range(10)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert backoff_delay(0, "7") == 7.0
    assert backoff_delay(3, "1000") == 300.0


def test_token_bucket_free_plan_allows_five_per_minute():
    fake = FakeTime()
    bucket = TokenBucket(5, fake.clock, fake.sleep)
    for _ in range(7):
        bucket.acquire()
    assert fake.sleeps == pytest.approx([12.0, 12.0])


def test_daily_aggregates_with_pagination_retries_and_backoff(server, monkeypatch):
    path = "/v2/aggs/ticker/AAPL/range/1/day/2024-07-01/2024-07-05"
    page2 = "/v2/aggs/ticker/AAPL/range/1/day/page2"
    server.add(path,
               (429, {"Retry-After": "3"}, {"status": "ERROR"}),
               (500, {}, {"status": "ERROR"}),
               (503, {}, {"status": "ERROR"}),
               (200, {}, {"status": "OK", "results": [
                   agg(ms("2024-07-01"), 100, 101, 99, 100.5, 1000),
                   agg(ms("2024-07-02"), 100.5, 102, 100, 101.5, 1100)],
                   "next_url": server.base_url + page2 + "?cursor=abc"}))
    server.add(page2, (200, {}, {"status": "OK", "results": [
        agg(ms("2024-07-03"), 101.5, 102.5, 101, 102, 900),
        agg(ms("2024-07-05"), 102, 103, 101.5, 102.5, 1200)]}))
    fake = FakeTime()
    p = provider(server, fake)
    bars = p.daily_bars("AAPL", "2024-07-01", "2024-07-05")
    assert list(bars["close"]) == [100.5, 101.5, 102, 102.5]
    assert bars.index[0] == pd.Timestamp("2024-07-01 13:30", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2024-07-05 13:30", tz="UTC")
    # Retry-After honoured on the 429, then exponential 2 s and 4 s for the 5xx answers.
    assert p.client.backoff_waits == [3.0, 2.0, 4.0]
    assert fake.sleeps == [3.0, 2.0, 4.0]
    assert [r[0] for r in server.requests] == [path] * 4 + [page2]
    assert server.requests[-1][1]["cursor"] == ["abc"]
    assert all(r[2] == "Bearer test-key" for r in server.requests)


def test_gives_up_after_max_retries(server):
    server.add("/v2/last/trade/MSFT", (500, {}, {"status": "ERROR"}))
    fake = FakeTime()
    p = provider(server, fake, max_retries=3)
    with pytest.raises(MarketDataError, match="HTTP 500 after 3 retries"):
        p.latest_quote(["MSFT"])
    assert fake.sleeps == [1.0, 2.0, 4.0]


def test_client_errors_are_not_retried(server):
    fake = FakeTime()
    p = provider(server, fake)
    with pytest.raises(MarketDataError, match="HTTP 404"):
        p.reference("ZZZZ")
    assert fake.sleeps == [] and len(server.requests) == 1


def test_free_plan_throttles_requests(server):
    server.add("/v3/reference/tickers/SPY", (200, {}, {"results": {
        "name": "SPDR S&P 500 ETF Trust", "type": "ETF"}}))
    fake = FakeTime()
    p = provider(server, fake, plan="free")
    for _ in range(7):
        info = p.reference("SPY")
    assert info["is_etf"] and info["asset_class"] == "etf"
    assert fake.sleeps == pytest.approx([12.0, 12.0])
    assert len(server.requests) == 7


def test_minute_bars_drop_extended_hours_and_resample(server):
    path = "/v2/aggs/ticker/SPY/range/1/minute/2024-11-29/2024-11-29"
    minutes = pd.date_range("2024-11-29 09:28", "2024-11-29 13:05", freq="1min", tz=NY)
    rows = [agg(ms(str(t.tz_localize(None))), 500 + i * 0.01, 500.05 + i * 0.01, 499.95 + i * 0.01,
                500.01 + i * 0.01, 10) for i, t in enumerate(minutes)]
    server.add(path, (200, {}, {"results": rows}))
    p = provider(server, FakeTime())
    bars = p.intraday_bars("SPY", "2024-11-29", "2024-11-29")
    assert len(bars) == 210
    hourly = p.intraday_bars("SPY", "2024-11-29", "2024-11-29", freq="1h")
    assert [t.strftime("%H:%M") for t in hourly.index.tz_convert(NY)] == [
        "09:30", "10:30", "11:30", "12:30"]
    assert hourly["volume"].tolist() == [600, 600, 600, 300]


def test_latest_quote_and_options_snapshot(server):
    trade_ns = pd.Timestamp("2024-07-02 14:00", tz=NY).value
    server.add("/v2/last/trade/AAPL", (200, {}, {"results": {"p": 210.5, "s": 100, "t": trade_ns}}))
    server.add("/v2/last/nbbo/AAPL", (200, {}, {"results": {"p": 210.49, "P": 210.52, "t": trade_ns}}))
    server.add("/v2/aggs/ticker/AAPL/prev", (200, {}, {"results": [agg(0, 1, 1, 1, 200.0, 5e7)]}))
    server.add("/v2/aggs/ticker/AAPL/range/1/day/2024-07-02/2024-07-02",
               (200, {}, {"results": [agg(ms("2024-07-02"), 201, 211, 200, 210.5, 3e7)]}))

    def contract(expiry, right, strike, bid, ask):
        occ = f"O:SPY{expiry.replace('-', '')[2:]}{right}{int(strike * 1000):08d}"
        return {"details": {"ticker": occ, "contract_type": "call" if right == "C" else "put",
                            "expiration_date": expiry, "strike_price": strike},
                "last_quote": {"bid": bid, "ask": ask, "midpoint": (bid + ask) / 2},
                "implied_volatility": 0.15, "greeks": {"delta": 0.5 if right == "C" else -0.5},
                "open_interest": 1000, "day": {"volume": 50},
                "underlying_asset": {"price": 545.2}}

    server.add("/v3/snapshot/options/SPY",
               (429, {}, {"status": "ERROR"}),
               (200, {}, {"results": [contract("2024-07-02", "C", s, 1.0, 1.1) for s in (540, 545, 550, 555)],
                          "next_url": server.base_url + "/v3/snapshot/options/SPY/p2"}))
    server.add("/v3/snapshot/options/SPY/p2", (200, {}, {"results": [
        contract("2024-07-02", "P", 545, 0.9, 1.0), contract("2024-07-19", "C", 545, 5.0, 5.2)]}))

    fake = FakeTime()
    p = provider(server, fake)
    q = p.latest_quote(["aapl"])["AAPL"]
    assert q == {"bid": 210.49, "ask": 210.52, "last": 210.5, "volume": 3e7,
                 "timestamp": "2024-07-02T18:00:00Z", "change": 10.5, "change_percent": 5.25}
    chain = p.option_chain("SPY", strikes=2)
    assert set(chain["expiry"].astype(str)) == {"2024-07-02"}
    assert sorted(chain["strike"].unique()) == [545.0, 550.0]
    assert chain["symbol"].iloc[0].startswith("SPY240702")
    full = p.option_chain("SPY", expiries="all")
    assert len(full) == 6 and fake.sleeps == [1.0]   # one 429 on the first snapshot call


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    with pytest.raises(MarketDataError, match="POLYGON_API_KEY"):
        make_provider("polygon")


def test_polygon_bars_are_cached(server, tmp_path):
    path = "/v2/aggs/ticker/MSFT/range/1/day/2024-07-01/2024-07-03"
    server.add(path, (200, {}, {"results": [
        agg(ms("2024-07-01"), 400, 401, 399, 400.5, 1000),
        agg(ms("2024-07-02"), 400.5, 402, 400, 401.5, 1100),
        agg(ms("2024-07-03"), 401.5, 402.5, 401, 402, 900)]}))
    from compute.marketdata.cache import BarCache

    now = [1_700_000_000.0]
    cache = BarCache(f"file://{tmp_path}", "polygon", ttl_s=86400, clock=lambda: now[0])
    p = provider(server, FakeTime(), cache=cache)
    p.daily_bars("MSFT", "2024-07-01", "2024-07-03")
    assert p.last_cache_status == "miss"
    p.daily_bars("MSFT", "2024-07-02", "2024-07-03")
    assert p.last_cache_status == "hit" and len(server.requests) == 1
    now[0] += 86401
    p.daily_bars("MSFT", "2024-07-01", "2024-07-03")
    assert p.last_cache_status == "miss" and len(server.requests) == 2


def test_daily_bars_before_2000_are_asked_for_not_refused(server):
    # the provider sends any span of the calendar (1990-01-02 on) to the API; only a date
    # before the calendar is refused, naming the range
    path = "/v2/aggs/ticker/IBM/range/1/day/1990-01-02/1990-01-05"
    server.add(path, (200, {}, {"status": "OK", "results": [
        agg(ms("1990-01-02"), 23.6, 24.1, 23.5, 24.0, 1000),
        agg(ms("1990-01-03"), 24.0, 24.3, 23.9, 24.2, 1100),
        agg(ms("1990-01-04"), 24.2, 24.6, 24.1, 24.5, 900),
        agg(ms("1990-01-05"), 24.5, 24.5, 24.0, 24.1, 1200)]}))
    p = provider(server, FakeTime())
    bars = p.daily_bars("IBM", "1990-01-02", "1990-01-05")
    assert list(bars["close"]) == [24.0, 24.2, 24.5, 24.1]
    assert bars.index[0] == pd.Timestamp("1990-01-02 14:30", tz="UTC")  # 09:30 EST
    assert [r[0] for r in server.requests] == [path]
    with pytest.raises(MarketDataError, match="outside the calendar range 1990-01-02"):
        p.daily_bars("IBM", "1989-12-29", "1990-01-05")
