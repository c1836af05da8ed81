"""The ``files`` provider: per-ticker bar files in a folder or bucket (any fsspec URL).

Layout (``make_provider("files:<root>")``, root e.g. ``/data/bars``, ``file:///data/bars``,
``s3://bucket/prefix``)::

    <root>/daily/<TICKER>.parquet   or  <root>/daily/<TICKER>.csv
    <root>/minute/<TICKER>.parquet  or  <root>/minute/<TICKER>.csv
    <root>/reference.csv            optional: ticker,name,sector,asset_class[,is_etf]

Columns: ``timestamp, open, high, low, close, volume`` (extra columns ignored; headers are
case-insensitive).  Daily timestamps name the NYSE session by their date part (``2024-07-05`` or
``2024-07-05T13:30:00Z``); minute timestamps are bar *start* times, ISO 8601 with an offset or naive UTC.
Minute bars outside the regular session (pre/post market) are dropped on load; coarser
intraday frequencies are aggregated from the minute file.

Validation on load, in this order per row: timestamps sorted and unique, prices positive,
high >= max(open, close), low <= min(open, close), volume non-negative.  The first breach
raises ``MarketDataError`` naming the file, the 1-based data row (header excluded) and the
rule.  Tickers without a reference row fall back to the built-in reference data.
Quotes are the last bar (bid = ask = last: files carry no book); option chains are priced
on the synthetic smile around 20-session realised volatility.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Callable

import fsspec
import numpy as np
import pandas as pd

from compute.marketdata import calendar
from compute.marketdata.bars_nb import first_invalid_row_nb
from compute.marketdata.base import (
    BAR_COLUMNS,
    MarketDataError,
    MarketDataProvider,
    bars_frame,
    check_freq,
    clip_to_times,
    closed_sessions_only,
    empty_bars,
    regular_session_only,
    resample_minutes,
    session_range,
)
from compute.errors import MarketDataUnavailable
from compute.marketdata.options import build_option_chain
from compute.instruments import normalize_ticker
from compute.marketdata.reference import profile

FILES_VERSION = "files-v1"
RULES = {
    1: "timestamps must be sorted ascending and unique",
    2: "prices must be positive",
    3: "high must be >= max(open, close)",
    4: "low must be <= min(open, close)",
    5: "volume must be non-negative",
}


def _daily_stamps(raw: pd.Series, path: str) -> np.ndarray:
    """Session-open UTC stamps for a daily file's timestamp column (its date part names the
    session: '2024-07-05', '2024-07-05T13:30:00Z' and '2024-07-05 09:30-04:00' all agree)."""
    text = raw.astype(str).str.strip().str[:10]
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    bad = dates.isna()
    if bad.any():
        row = int(np.argmax(bad.to_numpy())) + 1
        raise MarketDataError(f"{path}: row {row}: unparseable timestamp {raw.iloc[row - 1]!r}")
    table = calendar.all_sessions()
    pos = table.index.get_indexer(pd.DatetimeIndex(dates))
    if (pos < 0).any():
        row = int(np.argmax(pos < 0)) + 1
        raise MarketDataError(f"{path}: row {row}: {dates.iloc[row - 1].date()} is not an NYSE session")
    return calendar.utc_ns(table["open"])[pos]


def _minute_stamps(raw: pd.Series, path: str) -> np.ndarray:
    parsed = pd.to_datetime(raw.astype(str).str.strip(), utc=True, errors="coerce", format="mixed")
    if parsed.isna().any():
        row = int(np.argmax(parsed.isna().to_numpy())) + 1
        raise MarketDataError(f"{path}: row {row}: unparseable timestamp {raw.iloc[row - 1]!r}")
    return calendar.utc_ns(parsed)


def load_bar_file(path: str, raw: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Validate a raw bar table read from ``path`` and return a standard bar frame."""
    raw = raw.rename(columns={c: str(c).strip().lower() for c in raw.columns})
    missing = [c for c in ("timestamp",) + BAR_COLUMNS if c not in raw.columns]
    if missing:
        raise MarketDataError(f"{path}: missing column(s) {', '.join(missing)}")
    if len(raw) == 0:
        return empty_bars()
    stamps = _daily_stamps(raw["timestamp"], path) if kind == "daily" else _minute_stamps(
        raw["timestamp"], path)
    values = {}
    for col in BAR_COLUMNS:
        numeric = pd.to_numeric(raw[col], errors="coerce").to_numpy(np.float64)
        values[col] = numeric
    row, code = first_invalid_row_nb(stamps, values["open"], values["high"], values["low"],
                                     values["close"], values["volume"])
    if row >= 0:
        shown = {c: raw[c].iloc[row] for c in BAR_COLUMNS}
        raise MarketDataError(
            f"{path}: row {row + 1}: {RULES[code]} "
            f"(timestamp={raw['timestamp'].iloc[row]}, "
            + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")")
    return bars_frame(stamps, values["open"], values["high"], values["low"], values["close"],
                      values["volume"])


class FilesProvider(MarketDataProvider):
    """Bars from ``<root>/{daily,minute}/<TICKER>.{parquet,csv}`` (see module docstring)."""

    def __init__(self, root: str, clock: Callable[[], float] | None = None, cache=None,
                 storage_options: dict | None = None):
        self.root_url = root.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.root_url, **(storage_options or {}))
        self.root = self.root.rstrip("/")
        self.clock = clock or time.time
        self.cache = cache
        self.last_cache_status = None
        self._loaded: dict[tuple[str, str], tuple[object, pd.DataFrame]] = {}

    @property
    def data_version(self) -> str:
        return f"{FILES_VERSION}:{self.root_url}"

    def _find(self, kind: str, symbol: str) -> str:
        for ext in ("parquet", "csv"):
            path = f"{self.root}/{kind}/{symbol}.{ext}"
            if self.fs.exists(path):
                return path
        raise MarketDataError(
            f"no {kind} bars for {symbol}: expected {self.root_url}/{kind}/{symbol}.parquet or .csv")

    def load(self, kind: str, ticker: str) -> pd.DataFrame:
        """The whole validated file of ``kind`` ('daily'|'minute') for ``ticker``.

        Re-read when the file's modification info changes; otherwise memoised.
        """
        symbol = normalize_ticker(ticker)
        try:
            path = self._find(kind, symbol)
            info = self.fs.info(path)
        except MarketDataError:
            raise
        except Exception as exc:  # noqa: BLE001 - an unreachable source: named, never a crash
            raise MarketDataUnavailable(f"{self.root_url}: market data source unreachable for {symbol} "
                                  f"({type(exc).__name__}: {str(exc)[:200]})") from exc
        stamp = (info.get("mtime") or info.get("LastModified") or info.get("last_modified"),
                 info.get("size"))
        key = (kind, symbol)
        if key in self._loaded and self._loaded[key][0] == stamp:
            return self._loaded[key][1]
        display = f"{self.root_url}/{kind}/{path.rsplit('/', 1)[-1]}"
        try:
            with self.fs.open(path, "rb") as fh:
                if path.endswith(".parquet"):
                    raw = pd.read_parquet(fh)
                    if "timestamp" not in [str(c).lower() for c in raw.columns]:
                        raw = raw.reset_index()
                else:
                    raw = pd.read_csv(fh, dtype={"timestamp": str})
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the data's fault, named
            raise MarketDataUnavailable(f"{display}: unreadable file for {symbol} ({type(exc).__name__}: {str(exc)[:200]})") from exc
        try:
            bars = load_bar_file(display, raw, kind)
        except MarketDataError as exc:  # the file breaks a rule: the source is broken, not the request
            raise MarketDataUnavailable(f"{exc} (invalid file for {symbol})") from exc
        if kind == "minute":
            bars = regular_session_only(bars)
        self._loaded[key] = (stamp, bars)
        return bars

    def _slice_sessions(self, bars: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp):
        dates = bars.index.tz_convert(calendar.NEW_YORK).tz_localize(None).normalize()
        return bars[(dates >= lo) & (dates <= hi)]

    def _daily_bars(self, ticker: str, start, end) -> pd.DataFrame:
        symbol = normalize_ticker(ticker)
        table = session_range(start, end)
        return self._cached_bars("daily", symbol, table,
                                 lambda lo, hi: self._slice_sessions(self.load("daily", symbol), lo, hi))

    def _intraday_bars(self, ticker: str, start, end, freq: str = "1min") -> pd.DataFrame:
        check_freq(freq)
        symbol = normalize_ticker(ticker)
        table = session_range(start, end)
        minutes = self._cached_bars(
            "minute", symbol, table,
            lambda lo, hi: self._slice_sessions(self.load("minute", symbol), lo, hi))
        return clip_to_times(resample_minutes(minutes, freq), start, end)

    def latest_quote(self, tickers: list[str]) -> dict[str, dict]:
        now = self.now()
        quotes = {}
        for ticker in tickers:
            symbol = normalize_ticker(ticker)
            daily = closed_sessions_only(self.load("daily", symbol), now)
            if len(daily) == 0:
                raise MarketDataError(f"no daily bars for {symbol} before {now}")
            last_bar = daily.iloc[-1]
            last, volume = float(last_bar["close"]), float(last_bar["volume"])
            stamp = calendar.session_close(daily.index[-1])
            prev = float(daily["close"].iloc[-2]) if len(daily) > 1 else last
            change = last - prev
            quotes[symbol] = {"bid": last, "ask": last, "last": last, "volume": volume,
                              "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "change": round(change, 6),
                              "change_percent": round(100.0 * change / prev, 6)}
        return quotes

    def option_chain(self, ticker: str, as_of=None, expiries=None,
                     strikes: int | None = None) -> pd.DataFrame:
        symbol = normalize_ticker(ticker)
        daily = self.load("daily", symbol)
        when = self.as_of_instant(as_of)
        history = closed_sessions_only(daily, when)
        if len(history) < 21:
            raise MarketDataError(f"{symbol}: need 21 daily bars before {when} to price options")
        returns = np.log(history["close"]).diff().dropna()
        annual = np.sqrt(252.0)
        now_vol = float(returns.iloc[-20:].std() * annual)
        long_run_vol = float(returns.iloc[-252:].std() * annual)
        activity = max(float(history["volume"].iloc[-20:].mean()), 2e5) / 1000.0
        return build_option_chain(symbol, float(history["close"].iloc[-1]), when,
                                  max(now_vol, 0.05), max(long_run_vol, 0.05),
                                  profile(symbol).dividend_yield, activity, expiries, strikes)

    @lru_cache(maxsize=1)
    def _reference_table(self) -> dict:
        path = f"{self.root}/reference.csv"
        if not self.fs.exists(path):
            return {}
        with self.fs.open(path, "rb") as fh:
            table = pd.read_csv(fh, dtype=str).fillna("")
        table.columns = [c.strip().lower() for c in table.columns]
        return {normalize_ticker(row["ticker"]): row for row in table.to_dict("records")}

    def reference(self, ticker: str) -> dict:
        symbol = normalize_ticker(ticker)
        info = profile(symbol).reference_dict()
        row = self._reference_table().get(symbol)
        if row:
            for key in ("name", "sector", "asset_class"):
                if row.get(key):
                    info[key] = row[key]
            if row.get("is_etf"):
                info["is_etf"] = row["is_etf"].strip().lower() in ("1", "true", "yes", "y")
            else:
                info["is_etf"] = info["asset_class"] == "etf"
        return info
