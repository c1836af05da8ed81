"""The ``polygon`` provider: Polygon.io REST client with a token bucket and backoff.

Endpoints: aggregates ``/v2/aggs/ticker/{t}/range/{mult}/{span}/{from}/{to}`` (following
``next_url`` pages), previous close ``/v2/aggs/ticker/{t}/prev``, last trade
``/v2/last/trade/{t}``, last quote ``/v2/last/nbbo/{t}``, options snapshot
``/v3/snapshot/options/{underlying}`` (paginated) and ticker details
``/v3/reference/tickers/{t}``.

Configuration: ``POLYGON_API_KEY`` (sent as a Bearer token, so ``next_url`` pages need no
key in the URL), ``POLYGON_BASE_URL`` (default https://api.polygon.io; the constructor's
``base_url`` wins) and ``POLYGON_PLAN`` (free | starter | developer | advanced), which sizes
the token bucket at 5 / 100 / 1000 / 10000 requests per minute with a burst of one minute's
allowance.  429 and 5xx answers are retried with exponential backoff: 1 s, 2 s, 4 s, ...
capped at 300 s, or the server's ``Retry-After`` when it sends one (also capped).  Clock and
sleep are injectable so tests run without waiting.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Callable

import httpx
import numpy as np
import pandas as pd

from compute.marketdata import calendar
from compute.marketdata.base import (
    OPTION_CHAIN_COLUMNS,
    MarketDataError,
    MarketDataProvider,
    bars_frame,
    check_freq,
    clip_to_times,
    empty_bars,
    regular_session_only,
    resample_minutes,
    session_range,
)
from compute.instruments import normalize_ticker
from compute.marketdata.reference import profile

DEFAULT_BASE_URL = "https://api.polygon.io"
PLAN_REQUESTS_PER_MINUTE = {"free": 5, "starter": 100, "developer": 1000, "advanced": 10000}
BACKOFF_BASE_S = 1.0
BACKOFF_FACTOR = 2.0
BACKOFF_CAP_S = 300.0
MAX_RETRIES = 8
POLYGON_TYPES = {"CS": "equity", "ADRC": "equity", "PFD": "equity", "ETF": "etf", "ETN": "etf",
                 "ETV": "etf", "ETS": "etf", "FUND": "mutual_fund", "INDEX": "index"}


class TokenBucket:
    """Requests-per-minute limiter: ``capacity`` tokens refilled at capacity / 60 per second.

    ``acquire()`` takes one token, sleeping (through the injected ``sleep``) until one is
    available; ``waits`` records every sleep for inspection.
    """

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.capacity = float(per_minute)
        self.rate = self.capacity / 60.0
        self.clock = clock
        self.sleep = sleep
        self.tokens = self.capacity
        self.updated = clock()
        self.waits: list[float] = []

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def acquire(self) -> None:
        self._refill()
        while self.tokens < 1.0:
            wait = (1.0 - self.tokens) / self.rate
            self.waits.append(wait)
            self.sleep(wait)
            self._refill()
        self.tokens -= 1.0


def backoff_delay(attempt: int, retry_after: str | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): Retry-After when given
    (seconds or an HTTP date), else 1 s x 2^attempt; both capped at 300 s."""
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), BACKOFF_CAP_S)
        except ValueError:
            try:
                when = pd.Timestamp(retry_after).tz_convert("UTC")
                delta = (when - pd.Timestamp.now(tz="UTC")).total_seconds()
                return min(max(delta, 0.0), BACKOFF_CAP_S)
            except (ValueError, TypeError):
                pass
    return min(BACKOFF_BASE_S * BACKOFF_FACTOR**attempt, BACKOFF_CAP_S)


class PolygonClient:
    """Throttled, retrying JSON GETs against the Polygon REST API."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None,
                 plan: str | None = None, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] | None = None, timeout_s: float = 30.0,
                 max_retries: int = MAX_RETRIES):
        self.api_key = api_key or os.environ.get("POLYGON_API_KEY")
        if not self.api_key:
            raise MarketDataError("polygon provider needs an API key: set POLYGON_API_KEY")
        self.base_url = (base_url or os.environ.get("POLYGON_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.plan = (plan or os.environ.get("POLYGON_PLAN") or "free").strip().lower()
        if self.plan not in PLAN_REQUESTS_PER_MINUTE:
            raise MarketDataError(
                f"unknown POLYGON_PLAN {self.plan!r}; use {', '.join(PLAN_REQUESTS_PER_MINUTE)}")
        self.sleep = sleep or time.sleep
        self.bucket = TokenBucket(PLAN_REQUESTS_PER_MINUTE[self.plan], clock or time.monotonic,
                                  self.sleep)
        self.max_retries = max_retries
        self.backoff_waits: list[float] = []
        self.http = httpx.Client(timeout=timeout_s,
                                 headers={"Authorization": f"Bearer {self.api_key}"})

    def get(self, path_or_url: str, params: dict | None = None) -> dict:
        """GET one JSON document, throttled and retried on 429/5xx/transport errors."""
        url = path_or_url if path_or_url.startswith("http") else self.base_url + path_or_url
        for attempt in range(self.max_retries + 1):
            self.bucket.acquire()
            try:
                response = self.http.get(url, params=params)
            except httpx.TransportError as exc:
                if attempt == self.max_retries:
                    raise MarketDataError(f"polygon: {url}: {exc}") from exc
                delay = backoff_delay(attempt)
            else:
                if response.status_code == 429 or response.status_code >= 500:
                    if attempt == self.max_retries:
                        raise MarketDataError(
                            f"polygon: {url}: HTTP {response.status_code} after "
                            f"{self.max_retries} retries")
                    delay = backoff_delay(attempt, response.headers.get("Retry-After"))
                elif response.status_code >= 400:
                    raise MarketDataError(
                        f"polygon: {url}: HTTP {response.status_code}: {response.text[:200]}")
                else:
                    return response.json()
            self.backoff_waits.append(delay)
            self.sleep(delay)
        raise AssertionError("unreachable")

    def get_paginated(self, path: str, params: dict | None = None) -> list[dict]:
        """All ``results`` of a listing, following ``next_url`` until it is absent."""
        results: list[dict] = []
        page = self.get(path, params)
        while True:
            results.extend(page.get("results") or [])
            next_url = page.get("next_url")
            if not next_url:
                return results
            page = self.get(next_url)

    def close(self) -> None:
        self.http.close()


def _iso(day: pd.Timestamp) -> str:
    return pd.Timestamp(day).strftime("%Y-%m-%d")


class PolygonProvider(MarketDataProvider):
    """Market data from Polygon.io (see module docstring)."""

    source = "polygon"
    chain_pricing = "market"

    def __init__(self, api_key: str | None = None, base_url: str | None = None,
                 plan: str | None = None, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] | None = None, cache=None,
                 max_retries: int = MAX_RETRIES):
        self.client = PolygonClient(api_key, base_url, plan, clock, sleep,
                                    max_retries=max_retries)
        self.cache = cache
        self.last_cache_status = None

    @property
    def data_version(self) -> str:
        return f"polygon-v1:{self.client.base_url}"

    def _aggregates(self, symbol: str, multiplier: int, span: str, lo, hi) -> list[dict]:
        path = f"/v2/aggs/ticker/{symbol}/range/{multiplier}/{span}/{_iso(lo)}/{_iso(hi)}"
        return self.client.get_paginated(path, {"adjusted": "true", "sort": "asc", "limit": 50000})

    def _fetch_daily(self, symbol: str, lo, hi) -> pd.DataFrame:
        rows = self._aggregates(symbol, 1, "day", lo, hi)
        if not rows:
            return empty_bars()
        # Daily aggregates are stamped at midnight New York: the date names the session.
        stamps = pd.to_datetime([r["t"] for r in rows], unit="ms", utc=True)
        dates = stamps.tz_convert(calendar.NEW_YORK).tz_localize(None).normalize()
        table = calendar.all_sessions()
        pos = table.index.get_indexer(dates)
        keep = pos >= 0
        opens = calendar.utc_ns(table["open"])[pos[keep]]
        pick = [r for r, k in zip(rows, keep) if k]
        return bars_frame(opens, [r["o"] for r in pick], [r["h"] for r in pick],
                          [r["l"] for r in pick], [r["c"] for r in pick],
                          [r.get("v", 0.0) for r in pick])

    def _fetch_minutes(self, symbol: str, lo, hi) -> pd.DataFrame:
        rows = self._aggregates(symbol, 1, "minute", lo, hi)
        if not rows:
            return empty_bars()
        stamps = calendar.utc_ns(pd.to_datetime([r["t"] for r in rows], unit="ms", utc=True))
        bars = bars_frame(stamps, [r["o"] for r in rows], [r["h"] for r in rows],
                          [r["l"] for r in rows], [r["c"] for r in rows],
                          [r.get("v", 0.0) for r in rows])
        return regular_session_only(bars[~bars.index.duplicated(keep="last")].sort_index())

    def _daily_bars(self, ticker: str, start, end) -> pd.DataFrame:
        symbol = normalize_ticker(ticker)
        table = session_range(start, end)
        return self._cached_bars("daily", symbol, table,
                                 lambda lo, hi: self._fetch_daily(symbol, lo, hi))

    def _intraday_bars(self, ticker: str, start, end, freq: str = "1min") -> pd.DataFrame:
        check_freq(freq)
        symbol = normalize_ticker(ticker)
        table = session_range(start, end)
        minutes = self._cached_bars("minute", symbol, table,
                                    lambda lo, hi: self._fetch_minutes(symbol, lo, hi))
        return clip_to_times(resample_minutes(minutes, freq), start, end)

    def latest_quote(self, tickers: list[str]) -> dict[str, dict]:
        """Last trade, NBBO, today's volume so far and change versus the previous close."""
        quotes = {}
        for ticker in tickers:
            symbol = normalize_ticker(ticker)
            trade = self.client.get(f"/v2/last/trade/{symbol}").get("results") or {}
            nbbo = self.client.get(f"/v2/last/nbbo/{symbol}").get("results") or {}
            prev = (self.client.get(f"/v2/aggs/ticker/{symbol}/prev").get("results") or [{}])[0]
            if "p" not in trade:
                raise MarketDataError(f"polygon: no last trade for {symbol}")
            last = float(trade["p"])
            trade_time = pd.Timestamp(int(trade.get("t", 0)), unit="ns", tz="UTC")
            today = calendar.to_session_date(trade_time)
            day = self.client.get(
                f"/v2/aggs/ticker/{symbol}/range/1/day/{_iso(today)}/{_iso(today)}").get("results") or []
            prev_close = float(prev.get("c", last))
            change = last - prev_close
            quotes[symbol] = {
                "bid": float(nbbo.get("p", last)), "ask": float(nbbo.get("P", last)),
                "last": last, "volume": float(day[0].get("v", 0.0)) if day else 0.0,
                "timestamp": trade_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "change": round(change, 6),
                "change_percent": round(100.0 * change / prev_close, 6) if prev_close else 0.0,
            }
        return quotes

    def option_chain(self, ticker: str, as_of=None, expiries=None,
                     strikes: int | None = None) -> pd.DataFrame:
        """Live options snapshot; ``as_of`` must be None (Polygon snapshots are current)."""
        if as_of is not None:
            raise MarketDataError("polygon option snapshots are live: as_of must be None")
        symbol = normalize_ticker(ticker)
        params: dict = {"limit": 250}
        if expiries not in (None, "all") and not isinstance(expiries, str):
            wanted = sorted({pd.Timestamp(e).date() for e in expiries})
        elif isinstance(expiries, str) and expiries != "all":
            wanted = [pd.Timestamp(expiries).date()]
        else:
            wanted = None
        if wanted and len(wanted) == 1:
            params["expiration_date"] = wanted[0].isoformat()
        rows = self.client.get_paginated(f"/v3/snapshot/options/{symbol}", params)
        records = []
        for r in rows:
            details = r.get("details") or {}
            quote = r.get("last_quote") or {}
            occ = str(details.get("ticker", "")).removeprefix("O:")
            expiry = dt.date.fromisoformat(details["expiration_date"])
            bid, ask = float(quote.get("bid", np.nan)), float(quote.get("ask", np.nan))
            records.append({
                "symbol": occ, "underlying": symbol, "expiry": expiry,
                "strike": float(details["strike_price"]),
                "right": "C" if details.get("contract_type") == "call" else "P",
                "bid": bid, "ask": ask,
                "mid": float(quote.get("midpoint", (bid + ask) / 2.0)),
                "iv": float(r.get("implied_volatility", np.nan)),
                "delta": float((r.get("greeks") or {}).get("delta", np.nan)),
                "open_interest": int(r.get("open_interest", 0)),
                "volume": int((r.get("day") or {}).get("volume", 0)),
                "underlying_price": float((r.get("underlying_asset") or {}).get("price", np.nan)),
            })
        chain = pd.DataFrame(records, columns=list(OPTION_CHAIN_COLUMNS))
        if len(chain) == 0:
            return chain
        if wanted is not None:
            chain = chain[chain["expiry"].isin(wanted)]
        elif expiries is None:
            chain = chain[chain["expiry"] == chain["expiry"].min()]
        if strikes is not None:
            keep = []
            for _, group in chain.groupby("expiry"):
                spot = group["underlying_price"].iloc[0]
                grid = np.unique(group["strike"])
                near = set(grid[np.argsort(np.abs(grid - spot), kind="stable")[:strikes]])
                keep.append(group[group["strike"].isin(near)])
            chain = pd.concat(keep) if keep else chain.iloc[:0]
        return chain.sort_values(["expiry", "strike", "right"], kind="stable").reset_index(drop=True)

    def reference(self, ticker: str) -> dict:
        symbol = normalize_ticker(ticker)
        info = profile(symbol).reference_dict()
        details = self.client.get(f"/v3/reference/tickers/{symbol}").get("results") or {}
        if details.get("name"):
            info["name"] = details["name"]
        kind = POLYGON_TYPES.get(str(details.get("type", "")).upper())
        if kind and not (kind == "etf" and info["asset_class"] == "commodity"):
            info["asset_class"] = kind
        info["is_etf"] = str(details.get("type", "")).upper() in ("ETF", "ETN", "ETV", "ETS") or (
            info["is_etf"] and not details.get("type"))
        if details.get("sic_description") and not profile(symbol).known:
            info["sector"] = details["sic_description"].title()
        return info
