"""The market-data provider interface and the helpers every provider shares.

Bar frames everywhere: index ``timestamp`` (tz-aware UTC; daily bars are stamped with the
session open, 09:30 New York; intraday bars with their start time), columns ``open``,
``high``, ``low``, ``close``, ``volume`` (float64).

Intraday frequencies are built from 1-minute bars by aggregating whole minutes inside each
session, anchored at the session open: 5- and 15-minute bars tile the session exactly; hourly
bars start 09:30, 10:30, ..., 15:30 ET, so the last one of a regular session covers only
15:30-16:00 (12:30-13:00 on half days).  This keeps every bar inside the regular session and
aligned with the open, which is what the Lab's hourly packs expect.
"""

from __future__ import annotations

import abc
import datetime as dt
import time
from typing import Callable

import numpy as np
import pandas as pd

from compute.errors import MarketDataError
from compute.marketdata import calendar
from compute.marketdata.bars_nb import aggregate_groups_nb

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
FREQ_MINUTES = {"1min": 1, "5min": 5, "15min": 15, "1h": 60}
OPTION_CHAIN_COLUMNS = ("symbol", "underlying", "expiry", "strike", "right", "bid", "ask", "mid",
                        "iv", "delta", "open_interest", "volume", "underlying_price")
QUOTE_FIELDS = ("bid", "ask", "last", "volume", "timestamp", "change", "change_percent")


def empty_bars() -> pd.DataFrame:
    """A bar frame with no rows and the standard columns and index."""
    index = pd.DatetimeIndex([], tz="UTC", name="timestamp")
    return pd.DataFrame({c: np.array([], dtype=np.float64) for c in BAR_COLUMNS}, index=index)


def bars_frame(stamps_ns: np.ndarray, opens, highs, lows, closes, volumes) -> pd.DataFrame:
    """Assemble a standard bar frame from int64 UTC nanosecond stamps and five arrays."""
    index = pd.DatetimeIndex(np.asarray(stamps_ns, dtype=np.int64).view("datetime64[ns]"),
                             name="timestamp").tz_localize("UTC")
    return pd.DataFrame(
        {"open": np.asarray(opens, np.float64), "high": np.asarray(highs, np.float64),
         "low": np.asarray(lows, np.float64), "close": np.asarray(closes, np.float64),
         "volume": np.asarray(volumes, np.float64)},
        index=index,
    )


def check_freq(freq: str) -> int:
    """Minutes per bar of an intraday frequency; MarketDataError for anything else."""
    try:
        return FREQ_MINUTES[freq]
    except KeyError:
        raise MarketDataError(
            f"unsupported frequency {freq!r}; use one of {', '.join(FREQ_MINUTES)}"
        ) from None


def session_range(start, end) -> pd.DataFrame:
    """Sessions for a request; MarketDataError when start is after end or out of range."""
    lo, hi = calendar.to_session_date(start), calendar.to_session_date(end)
    if lo > hi:
        raise MarketDataError(f"start {lo.date()} is after end {hi.date()}")
    try:
        return calendar.sessions(lo, hi)
    except ValueError as exc:
        raise MarketDataError(str(exc)) from None


def _has_time(value) -> bool:
    if isinstance(value, str):
        return len(value.strip()) > 10
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        ts = pd.Timestamp(value)
        return ts.tzinfo is not None or ts != ts.normalize()
    return False


def clip_to_times(bars: pd.DataFrame, start, end) -> pd.DataFrame:
    """Drop intraday bars starting before ``start`` / after ``end`` when those carry a time
    of day (dates alone select whole sessions).  Naive times are read as New York local."""
    def as_utc(value):
        ts = pd.Timestamp(value)
        return (ts.tz_localize(calendar.NEW_YORK) if ts.tzinfo is None else ts).tz_convert("UTC")

    if _has_time(start):
        bars = bars[bars.index >= as_utc(start)]
    if _has_time(end):
        bars = bars[bars.index <= as_utc(end)]
    return bars


def resample_minutes(minutes: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Aggregate 1-minute bars to ``freq`` inside each session, anchored at the session open.

    Exact: open = first minute's open, close = last minute's close, high/low = extremes,
    volume = sum.  Bars outside regular sessions must already be removed.
    """
    step = check_freq(freq)
    if step == 1 or len(minutes) == 0:
        return minutes
    stamps = calendar.utc_ns(minutes.index)
    table = calendar.all_sessions()
    opens = calendar.utc_ns(table["open"])
    pos = np.searchsorted(opens, stamps, side="right") - 1
    session_open = opens[pos]
    bucket = (stamps - session_open) // (60_000_000_000 * step)
    group = pos.astype(np.int64) * 1000 + bucket
    first, o, h, l, c, v = aggregate_groups_nb(
        group, minutes["open"].to_numpy(np.float64), minutes["high"].to_numpy(np.float64),
        minutes["low"].to_numpy(np.float64), minutes["close"].to_numpy(np.float64),
        minutes["volume"].to_numpy(np.float64))
    starts = session_open[first] + bucket[first] * 60_000_000_000 * step
    return bars_frame(starts, o, h, l, c, v)


def regular_session_only(minutes: pd.DataFrame) -> pd.DataFrame:
    """Keep bars that start inside a regular session (09:30 to the close, holidays dropped)."""
    if len(minutes) == 0:
        return minutes
    table = calendar.all_sessions()
    opens = calendar.utc_ns(table["open"])
    closes = calendar.utc_ns(table["close"])
    stamps = calendar.utc_ns(minutes.index)
    pos = np.searchsorted(opens, stamps, side="right") - 1
    inside = (pos >= 0) & (stamps < closes[np.clip(pos, 0, None)])
    return minutes[inside]


def _stamps_and_session_closes(bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(bar stamps, close of each bar's session), int64 UTC nanoseconds."""
    table = calendar.all_sessions()
    stamps = calendar.utc_ns(bars.index)
    pos = np.clip(np.searchsorted(calendar.utc_ns(table["open"]), stamps, side="right") - 1, 0, None)
    return stamps, calendar.utc_ns(table["close"])[pos]


def closed_sessions_only(bars: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """Daily bars (stamped with the session open) of sessions that closed at or before ``now``.

    A session still trading, or one that has not opened, has no daily bar yet.
    """
    if len(bars) == 0:
        return bars
    _, closes = _stamps_and_session_closes(bars)
    return bars[closes <= now.value]


def completed_bars_only(bars: pd.DataFrame, freq: str, now: pd.Timestamp) -> pd.DataFrame:
    """Intraday bars (stamped with their start) that ended at or before ``now``.

    A bar ends ``freq`` after its start or at its session's close, whichever is first (the
    last hourly bar of a regular session covers 15:30-16:00).
    """
    if len(bars) == 0:
        return bars
    step_ns = check_freq(freq) * 60_000_000_000
    stamps, closes = _stamps_and_session_closes(bars)
    ends = np.minimum(stamps + step_ns, closes)
    return bars[ends <= now.value]


class MarketDataProvider(abc.ABC):
    """One interface over every market-data source (synthetic, files, polygon).

    No provider serves a bar, quote or chain stamped after the clock's "now": ``daily_bars``
    returns only sessions that have closed, ``intraday_bars`` only bars that have ended (the
    public methods clip what a source's ``_daily_bars`` / ``_intraday_bars`` return), and
    quotes and chains are taken at "now" or at an ``as_of`` that is not in the future.
    """

    #: Where the data comes from, as quotes and chains report it: synthetic, files, polygon.
    source: str = "unknown"
    #: How option chains are priced: "model" (Black-Scholes on a smile around realised or
    #: modelled volatility) or "market" (the source's quotes).
    chain_pricing: str = "model"
    #: 'hit' | 'miss' | 'partial' after a cached bar request, None when no cache was used.
    last_cache_status: str | None = None
    #: a compute.marketdata.cache.BarCache, or None.
    cache = None
    #: "now" in epoch seconds (wall clock; injectable for tests).
    clock: Callable[[], float] = staticmethod(time.time)

    def now(self) -> pd.Timestamp:
        """The clock's current instant (tz-aware UTC)."""
        return pd.Timestamp(self.clock(), unit="s", tz="UTC")

    def as_of_instant(self, as_of) -> pd.Timestamp:
        """``as_of`` as an instant: None = now; a date = that session's close; a naive time is
        New York local.  MarketDataError when it lies after now."""
        now = self.now()
        if as_of is None:
            return now
        ts = pd.Timestamp(as_of)
        is_date_only = (isinstance(as_of, str) and len(as_of.strip()) <= 10) or (
            not isinstance(as_of, (str, pd.Timestamp)) and not hasattr(as_of, "hour"))
        if is_date_only:
            when = calendar.session_close(calendar.session_on_or_before(ts))
        else:
            when = (ts.tz_localize(calendar.NEW_YORK) if ts.tzinfo is None else ts).tz_convert("UTC")
        if when > now:
            raise MarketDataError(
                f"as_of {when.isoformat()} is in the future (now is {now.isoformat()})")
        return when

    def daily_bars(self, ticker: str, start, end) -> pd.DataFrame:
        """Daily OHLCV of each NYSE session in [start, end] that has closed by now
        (index = session open, UTC)."""
        return closed_sessions_only(self._daily_bars(ticker, start, end), self.now())

    def intraday_bars(self, ticker: str, start, end, freq: str = "1min") -> pd.DataFrame:
        """Regular-session bars of ``freq`` that have ended by now (index = bar start, UTC);
        see module docstring."""
        return completed_bars_only(self._intraday_bars(ticker, start, end, freq), freq, self.now())

    def _cached_bars(self, kind: str, symbol: str, sessions: pd.DataFrame, fetch) -> pd.DataFrame:
        """Bars of ``sessions`` via the cache when one is configured (sets last_cache_status).

        ``fetch(lo, hi)`` gets the bars of session dates lo..hi from the source.
        """
        if len(sessions) == 0:
            return empty_bars()
        lo, hi = sessions.index[0], sessions.index[-1]
        if self.cache is None:
            self.last_cache_status = None
            return fetch(lo, hi)
        bars, self.last_cache_status = self.cache.get(kind, symbol, lo, hi, fetch)
        return bars

    @property
    @abc.abstractmethod
    def data_version(self) -> str:
        """Stable string naming the source and generator version (part of content hashes)."""

    @abc.abstractmethod
    def _daily_bars(self, ticker: str, start, end) -> pd.DataFrame:
        """The source's daily bars for [start, end]; ``daily_bars`` clips them to now."""

    @abc.abstractmethod
    def _intraday_bars(self, ticker: str, start, end, freq: str = "1min") -> pd.DataFrame:
        """The source's intraday bars; ``intraday_bars`` clips them to now."""

    @abc.abstractmethod
    def latest_quote(self, tickers: list[str]) -> dict[str, dict]:
        """Per ticker: bid, ask, last, volume, timestamp, change, change_percent."""

    @abc.abstractmethod
    def option_chain(self, ticker: str, as_of=None, expiries=None,
                     strikes: int | None = None) -> pd.DataFrame:
        """Option contracts with OPTION_CHAIN_COLUMNS."""

    @abc.abstractmethod
    def reference(self, ticker: str) -> dict:
        """name, sector, asset_class, is_etf (plus ticker)."""
