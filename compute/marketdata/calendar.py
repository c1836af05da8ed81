"""NYSE trading calendar: sessions, open/close times, half days.

Built on ``exchange_calendars`` ('XNYS'), which knows the real holidays and early closes
(13:00 ET the day after Thanksgiving, Christmas Eve, the day before Independence Day when it
is a weekday).  All times returned here are timezone-aware UTC; the session label is the
(naive) trading date in New York.

The calendar covers ``CALENDAR_START`` (the first session of 1990) to ``CALENDAR_END``:
decades of real daily history (files, polygon) and the synthetic market both fit in it, and
a date outside it is refused naming the range (``Settings.calendar_start``/``calendar_end``
show it; docs/research-data.md).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np
import pandas as pd

NEW_YORK = "America/New_York"
CALENDAR_START = pd.Timestamp("1990-01-02")
CALENDAR_END = pd.Timestamp("2035-12-31")
REGULAR_SESSION_MINUTES = 390
HALF_DAY_SESSION_MINUTES = 210

DateLike = str | dt.date | dt.datetime | pd.Timestamp | np.datetime64


@lru_cache(maxsize=1)
def nyse_calendar():
    """The XNYS calendar covering the synthetic horizon (built once per process)."""
    import warnings

    import exchange_calendars as xcals

    with warnings.catch_warnings():
        # exchange_calendars itself trips a pandas deprecation (Series.values on tz data).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            from pandas.errors import Pandas4Warning

            warnings.simplefilter("ignore", Pandas4Warning)
        except ImportError:
            pass
        return xcals.get_calendar("XNYS", start=CALENDAR_START, end=CALENDAR_END)


@lru_cache(maxsize=1)
def _session_table() -> pd.DataFrame:
    cal = nyse_calendar()
    opens = cal.schedule["open"]
    closes = cal.schedule["close"]
    table = pd.DataFrame({"open": opens, "close": closes})
    table.index = pd.DatetimeIndex(table.index.tz_localize(None) if table.index.tz else table.index,
                                   name="session")
    table["minutes"] = ((table["close"] - table["open"]) / pd.Timedelta(minutes=1)).astype(np.int64)
    return table


def to_session_date(value: DateLike) -> pd.Timestamp:
    """The New York calendar date of ``value`` as a naive midnight Timestamp.

    Tz-aware values are converted to New York first; naive values are read as New York local.
    """
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(NEW_YORK).tz_localize(None)
    return ts.normalize()


def sessions(start: DateLike, end: DateLike) -> pd.DataFrame:
    """NYSE sessions whose date lies in [start, end] (inclusive).

    Returns a DataFrame indexed by ``session`` (naive New York date) with columns
    ``open`` and ``close`` (tz-aware UTC) and ``minutes`` (390, or 210 on half days).
    """
    table = _session_table()
    lo, hi = to_session_date(start), to_session_date(end)
    if lo < table.index[0] or hi > table.index[-1]:
        raise ValueError(
            f"dates {lo.date()}..{hi.date()} outside the calendar range "
            f"{table.index[0].date()}..{table.index[-1].date()}"
        )
    return table.loc[lo:hi]


def all_sessions() -> pd.DataFrame:
    """Every session of the calendar horizon (same columns as :func:`sessions`)."""
    return _session_table()


def is_session(day: DateLike) -> bool:
    """True when ``day`` is an NYSE trading date."""
    return to_session_date(day) in _session_table().index


def session_open(day: DateLike) -> pd.Timestamp:
    """Opening time (UTC) of the session on ``day``; KeyError when it is not a session."""
    return _session_table().at[to_session_date(day), "open"]


def session_close(day: DateLike) -> pd.Timestamp:
    """Closing time (UTC) of the session on ``day`` (13:00 ET on half days)."""
    return _session_table().at[to_session_date(day), "close"]


def previous_session(day: DateLike) -> pd.Timestamp:
    """The last session strictly before ``day``."""
    idx = _session_table().index
    pos = idx.searchsorted(to_session_date(day), side="left")
    if pos == 0:
        raise ValueError(f"no session before {day}")
    return idx[pos - 1]


def session_on_or_before(day: DateLike) -> pd.Timestamp:
    """``day`` itself when it is a session, else the session before it."""
    idx = _session_table().index
    pos = idx.searchsorted(to_session_date(day), side="right")
    if pos == 0:
        raise ValueError(f"no session on or before {day}")
    return idx[pos - 1]


def next_sessions(day: DateLike, count: int) -> pd.DatetimeIndex:
    """The ``count`` sessions on or after ``day``."""
    idx = _session_table().index
    pos = idx.searchsorted(to_session_date(day), side="left")
    return idx[pos : pos + count]


def minute_starts(session_table: pd.DataFrame) -> pd.DatetimeIndex:
    """Start time (UTC) of every regular-session minute bar of the given sessions."""
    if len(session_table) == 0:
        return pd.DatetimeIndex([], tz="UTC", name="timestamp")
    opens = utc_ns(session_table["open"])
    counts = session_table["minutes"].to_numpy(dtype=np.int64)
    offsets = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    stamps = np.repeat(opens, counts) + offsets * 60_000_000_000
    return pd.DatetimeIndex(stamps.view("datetime64[ns]"), name="timestamp").tz_localize("UTC")


def utc_ns(stamps) -> np.ndarray:
    """int64 UTC nanoseconds of a tz-aware Series/Index of timestamps."""
    return pd.DatetimeIndex(stamps).tz_convert("UTC").as_unit("ns").asi8


def bar_closes(cadence: str, after: DateLike, until: DateLike) -> pd.DatetimeIndex:
    """Closing instants (UTC) of the ``cadence`` bars ("daily" or "hourly") that close in
    (after, until]: a daily bar closes at its session's close (13:00 ET on half days); hourly
    bars are anchored at the open (09:30-10:30, ..., 15:30-16:00: the last one closes with the
    session). No bar closes on a weekend or holiday."""
    lo, hi = pd.Timestamp(after), pd.Timestamp(until)
    lo = lo.tz_localize("UTC") if lo.tzinfo is None else lo.tz_convert("UTC")
    hi = hi.tz_localize("UTC") if hi.tzinfo is None else hi.tz_convert("UTC")
    if hi <= lo:
        return pd.DatetimeIndex([], tz="UTC")
    table = sessions(to_session_date(lo) - pd.Timedelta(days=1), to_session_date(hi))
    if cadence == "daily":
        closes = list(table["close"])
    elif cadence == "hourly":
        closes = []
        for open_, close in zip(table["open"], table["close"]):
            step = open_ + pd.Timedelta(hours=1)
            while step < close:
                closes.append(step)
                step += pd.Timedelta(hours=1)
            closes.append(close)
    else:
        raise ValueError(f"unknown cadence {cadence!r}")
    stamps = pd.DatetimeIndex(closes).tz_convert("UTC") if closes else pd.DatetimeIndex([], tz="UTC")
    return stamps[(stamps > lo) & (stamps <= hi)]


def bar_close(bar_start: DateLike, cadence: str) -> pd.Timestamp:
    """Closing instant (UTC) of the ``cadence`` bar that starts at ``bar_start``."""
    start = pd.Timestamp(bar_start)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    close = session_close(to_session_date(start))
    if cadence == "daily":
        return close
    return min(start + pd.Timedelta(hours=1), close)
