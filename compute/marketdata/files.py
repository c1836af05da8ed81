"""The ``files`` provider: bar files in a folder or bucket (any fsspec URL), as people have them.

Layout (``make_provider("files:<root>")``, root e.g. ``/data/bars``, ``file:///data/bars``,
``s3://bucket/prefix``)::

    <root>/daily/<TICKER>.parquet   or  <root>/daily/<TICKER>.csv     one file per ticker
    <root>/minute/<TICKER>.parquet  or  <root>/minute/<TICKER>.csv
    <root>/daily.parquet            or  <root>/daily.csv               one long table
    <root>/minute.parquet           or  <root>/minute.csv              (``ticker, date, ...``)
    <root>/reference.csv            optional: ticker,name,sector,asset_class[,is_etf]

A ticker's own file wins over a long table. Columns (case-insensitive, spaces as
underscores, extra columns ignored): a time column named ``timestamp``, ``date``,
``datetime``, ``time`` (or a Parquet index), ``close`` (else ``adj_close`` / ``Adj Close``),
and ``open, high, low, volume``. A daily file with only a close (and perhaps a volume) is a
*close-only* series: open = high = low = close, volume 0 when absent, flagged by
``FilesProvider.missing_columns`` so that features needing OHLCV can refuse by name; risk,
factors, VaR, scenarios and backtests need only closes (a close-only backtest fills at the
next close).

Time: a daily row's date part names the NYSE session (``2024-07-05``,
``2024-07-05T13:30:00Z`` and ``2024-07-05 09:30-04:00`` all agree); naive daily dates are
sessions. Intraday stamps are bar *start* times and need a zone (``Z``, ``+hh:mm``, a tz-aware
Parquet column) unless ``intraday_tz`` (``SIGMA_FILES_INTRADAY_TZ``) names the zone of naive
ones. Minute bars outside the regular session are dropped on load; coarser intraday
frequencies are aggregated from the minute file.

Validation on load; the first breach rejects the file with ``MarketDataError`` naming the
file, the 1-based data row (header excluded; a long table's own row), the column and the
rule: unparseable or duplicated dates, unsorted rows, a non-session date (or one outside the
calendar range, 1990-01-02 on), a gap of more than ``max_gap_sessions`` sessions
(``SIGMA_FILES_MAX_GAP_SESSIONS``, default 10), mixed zoned and naive stamps, non-positive
prices, high below max(open, close), low above min(open, close), negative volume. Nothing
from a rejected file is kept (neither memoised nor written to the bar cache). Tickers without
a reference row fall back to the built-in reference data. Quotes are the last bar (bid = ask
= last: files carry no book); option chains are model-priced on the synthetic smile around
20-session realised volatility.
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
#: Column of the rule each code breaks (rejections name file, row, column and rule).
RULE_COLUMNS = {1: "timestamp", 2: "open/high/low/close", 3: "high", 4: "low", 5: "volume"}
#: Accepted names of the time column (after lower-casing, spaces and dashes as underscores);
#: a Parquet file's index counts too.
DATE_COLUMNS = ("timestamp", "date", "datetime", "time", "index")
#: Accepted names of the close, in order of preference: ``close`` when the file has it.
CLOSE_COLUMNS = ("close", "adj_close", "adjclose", "adjusted_close")
#: Ticker column of a long table (``<root>/daily.csv`` with one row per ticker and date).
TICKER_COLUMNS = ("ticker", "symbol")
#: Longest run of missing sessions between two rows of a daily file (default).
DEFAULT_MAX_GAP_SESSIONS = 10
#: Columns a close-only daily series lacks (features that need them answer 4xx).
OHLV_COLUMNS = ("open", "high", "low", "volume")
_ZONE_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"


def normalise_column(name) -> str:
    """``Adj Close`` -> ``adj_close``; ``Date`` -> ``date``."""
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def _rejection(path: str, row: int, column: str, rule: str) -> MarketDataError:
    return MarketDataError(f"{path}: row {row}: column {column}: {rule}")


def _daily_stamps(raw: pd.Series, path: str, rows: np.ndarray, column: str,
                  max_gap_sessions: int | None) -> np.ndarray:
    """Session-open UTC stamps for a daily file's time column (its date part names the
    session: '2024-07-05', '2024-07-05T13:30:00Z' and '2024-07-05 09:30-04:00' all agree;
    a naive date is the session of that date)."""
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        values = pd.DatetimeIndex(raw)
        if values.tz is not None:
            values = values.tz_convert(calendar.NEW_YORK).tz_localize(None)
        dates = pd.Series(values.normalize())
    else:
        text = raw.astype(str).str.strip().str[:10]
        dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    bad = dates.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise _rejection(path, rows[i], column, f"unparseable date {raw.iloc[i]!r} (expected YYYY-MM-DD)")
    table = calendar.all_sessions()
    date_ns = pd.DatetimeIndex(dates).as_unit("ns").asi8
    _check_order(date_ns, path, rows, column, dates.dt.date)
    pos = table.index.get_indexer(pd.DatetimeIndex(dates))
    if (pos < 0).any():
        i = int(np.argmax(pos < 0))
        day = dates.iloc[i]
        lo, hi = table.index[0], table.index[-1]
        why = (f"{day.date()} is outside the calendar range {lo.date()}..{hi.date()}" if not lo <= day <= hi
               else f"{day.date()} is not an NYSE session (a weekend or an exchange holiday)")
        raise _rejection(path, rows[i], column, why)
    if max_gap_sessions is not None and len(pos) > 1:
        gaps = np.diff(pos) - 1
        if (gaps > max_gap_sessions).any():
            i = int(np.argmax(gaps > max_gap_sessions)) + 1
            raise _rejection(path, rows[i], column,
                             f"{int(gaps[i - 1])} sessions missing between {dates.iloc[i - 1].date()} and "
                             f"{dates.iloc[i].date()} (more than max_gap_sessions={max_gap_sessions})")
    return calendar.utc_ns(table["open"])[pos]


def _check_order(stamps: np.ndarray, path: str, rows: np.ndarray, column: str, shown) -> None:
    """Duplicated and unsorted rows, each named with its own rule."""
    if len(stamps) < 2:
        return
    step = np.diff(stamps)
    if (step <= 0).any():
        i = int(np.argmax(step <= 0)) + 1
        if step[i - 1] == 0:
            raise _rejection(path, rows[i], column, f"duplicated date {shown.iloc[i]} (also row {rows[i - 1]})")
        raise _rejection(path, rows[i], column,
                         f"unsorted: {shown.iloc[i]} comes after {shown.iloc[i - 1]} (rows must be in ascending time)")


def _minute_stamps(raw: pd.Series, path: str, rows: np.ndarray, column: str,
                   naive_tz: str | None) -> np.ndarray:
    """UTC stamps of intraday bar starts. Stamps must carry a zone (``Z``, ``+hh:mm``, a
    tz-aware Parquet column) unless ``naive_tz`` says which zone naive stamps are in; a file
    mixing zoned and naive stamps is refused."""
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        values = pd.DatetimeIndex(raw)
        if values.tz is None:
            if naive_tz is None:
                raise _rejection(path, rows[0], column, "naive intraday time stamps: store them with a zone "
                                 "or set intraday_tz (e.g. UTC or America/New_York)")
            values = values.tz_localize(naive_tz)
        parsed = pd.Series(values.tz_convert("UTC"))
    else:
        text = raw.astype(str).str.strip()
        zoned = text.str.contains(_ZONE_SUFFIX, regex=True).to_numpy()
        if zoned.any() and not zoned.all():
            i = int(np.argmax(zoned != zoned[0]))
            raise _rejection(path, rows[i], column, f"mixed time zones: {text.iloc[i]!r} and row {rows[0]}'s "
                             f"{text.iloc[0]!r} (all stamps with a zone, or none and intraday_tz set)")
        if not zoned.all():
            if naive_tz is None:
                raise _rejection(path, rows[0], column, f"naive intraday time stamp {text.iloc[0]!r}: give its "
                                 "zone (Z or +hh:mm) or set intraday_tz (e.g. UTC or America/New_York)")
            parsed = pd.to_datetime(text, errors="coerce", format="mixed")
            parsed = pd.Series(pd.DatetimeIndex(parsed).tz_localize(naive_tz, ambiguous="raise",
                                                                   nonexistent="raise").tz_convert("UTC"))
        else:
            parsed = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise _rejection(path, rows[i], column, f"unparseable timestamp {raw.iloc[i]!r}")
    stamps = calendar.utc_ns(parsed)
    _check_order(stamps, path, rows, column, parsed.reset_index(drop=True))
    return stamps


def _columns(raw: pd.DataFrame, path: str, kind: str) -> tuple[str, str, bool]:
    """(time column, close column, close-only) of a raw table, or a rejection naming what
    is missing."""
    names = list(raw.columns)
    date_col = next((c for c in DATE_COLUMNS if c in names), None)
    close_col = next((c for c in CLOSE_COLUMNS if c in names), None)
    missing = []
    if date_col is None:
        missing.append("a date column (" + "/".join(DATE_COLUMNS[:-1]) + ")")
    if close_col is None:
        missing.append("a close column (close/adj_close/Adj Close)")
    ohlv = [c for c in OHLV_COLUMNS if c not in names]
    close_only = kind == "daily" and set(ohlv) >= {"open", "high", "low"}
    if ohlv and not close_only:
        # partial OHLC, or an intraday file: only complete bars (close-only series are daily)
        missing.extend(ohlv)
    if missing:
        raise MarketDataError(f"{path}: missing column(s) {', '.join(missing)}"
                              + ("" if kind == "daily" else " (intraday files need open, high, low, close, volume)"))
    return date_col, close_col, close_only


def load_bar_file(path: str, raw: pd.DataFrame, kind: str, *, max_gap_sessions: int | None = DEFAULT_MAX_GAP_SESSIONS,
                  intraday_tz: str | None = None) -> pd.DataFrame:
    """Validate a raw bar table read from ``path`` and return a standard bar frame.

    Column names are matched case-insensitively with spaces as underscores (``Adj Close`` is
    ``adj_close``). A daily table with a close but no open/high/low (with or without volume)
    is a *close-only* series: open = high = low = close, volume 0, and
    ``frame.attrs["missing_columns"]`` lists what the file lacked. Row numbers in
    rejections are 1-based data rows of the file (header excluded), taken from ``raw``'s
    integer index (a long table's rows keep their own).
    """
    raw = raw.rename(columns={c: normalise_column(c) for c in raw.columns})
    date_col, close_col, close_only = _columns(raw, path, kind)
    if len(raw) == 0:
        return empty_bars()
    index = raw.index
    rows = (np.asarray(index, dtype=np.int64) + 1) if pd.api.types.is_integer_dtype(index) else np.arange(1, len(raw) + 1)
    if kind == "daily":
        stamps = _daily_stamps(raw[date_col], path, rows, date_col, max_gap_sessions)
    else:
        stamps = _minute_stamps(raw[date_col], path, rows, date_col, intraday_tz)
    close = pd.to_numeric(raw[close_col], errors="coerce").to_numpy(np.float64)
    missing = []
    if close_only:
        missing = [c for c in OHLV_COLUMNS if c not in raw.columns]
        values = {"open": close, "high": close, "low": close, "close": close}
        values["volume"] = (pd.to_numeric(raw["volume"], errors="coerce").to_numpy(np.float64)
                            if "volume" in raw.columns else np.zeros(len(raw)))
    else:
        values = {col: pd.to_numeric(raw[col], errors="coerce").to_numpy(np.float64) for col in OHLV_COLUMNS}
        values["close"] = close
    row, code = first_invalid_row_nb(stamps, values["open"], values["high"], values["low"],
                                     values["close"], values["volume"])
    if row >= 0:
        column = RULE_COLUMNS[code]
        if code == 2:
            column = next(c for c in ("open", "high", "low", "close") if not values[c][row] > 0.0)
            column = close_col if column == "close" or close_only else column
        shown = {c: (raw[c].iloc[row] if c in raw.columns else None) for c in (date_col, close_col) + OHLV_COLUMNS
                 if c in raw.columns}
        raise _rejection(path, rows[row], column, RULES[code] + " (" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")")
    bars = bars_frame(stamps, values["open"], values["high"], values["low"], values["close"], values["volume"])
    if missing:
        bars.attrs["missing_columns"] = missing
    return bars


class FilesProvider(MarketDataProvider):
    source = "files"
    chain_pricing = "model"  # files carry no option quotes: chains are model-priced
    """Bars from ``<root>/{daily,minute}/<TICKER>.{parquet,csv}`` or the long tables
    ``<root>/{daily,minute}.{parquet,csv}`` (see module docstring).

    ``max_gap_sessions``: longest run of missing sessions allowed between two rows of a daily
    file (None: no limit); ``intraday_tz``: the zone of naive intraday stamps (None: naive
    intraday stamps are refused).
    """

    def __init__(self, root: str, clock: Callable[[], float] | None = None, cache=None,
                 storage_options: dict | None = None,
                 max_gap_sessions: int | None = DEFAULT_MAX_GAP_SESSIONS, intraday_tz: str | None = None):
        self.root_url = root.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.root_url, **(storage_options or {}))
        self.root = self.root.rstrip("/")
        self.clock = clock or time.time
        self.cache = cache
        self.last_cache_status = None
        self.max_gap_sessions = max_gap_sessions
        self.intraday_tz = intraday_tz
        self._loaded: dict[tuple[str, str], tuple[object, pd.DataFrame]] = {}
        self._tables: dict[str, tuple[object, dict]] = {}

    @property
    def data_version(self) -> str:
        return f"{FILES_VERSION}:{self.root_url}"

    def _find(self, kind: str, symbol: str) -> tuple[str, bool]:
        """(path, is a long table) of ``symbol``'s ``kind`` bars: its own file first."""
        for ext in ("parquet", "csv"):
            path = f"{self.root}/{kind}/{symbol}.{ext}"
            if self.fs.exists(path):
                return path, False
        for ext in ("parquet", "csv"):
            path = f"{self.root}/{kind}.{ext}"
            if self.fs.exists(path):
                return path, True
        raise MarketDataError(
            f"no {kind} bars for {symbol}: expected {self.root_url}/{kind}/{symbol}.parquet or .csv, "
            f"or a long table {self.root_url}/{kind}.parquet or .csv with a ticker column")

    def _read(self, path: str, display: str, symbol: str) -> pd.DataFrame:
        try:
            with self.fs.open(path, "rb") as fh:
                if path.endswith(".parquet"):
                    raw = pd.read_parquet(fh)
                    names = [normalise_column(c) for c in raw.columns]
                    if not any(c in names for c in DATE_COLUMNS):
                        raw = raw.reset_index()
                else:
                    raw = pd.read_csv(fh, dtype=str, keep_default_na=False, na_values=[""])
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the data's fault, named
            raise MarketDataUnavailable(f"{display}: unreadable file for {symbol} ({type(exc).__name__}: {str(exc)[:200]})") from exc
        return raw.reset_index(drop=True)

    def _long_table_rows(self, path: str, display: str, stamp, symbol: str) -> pd.DataFrame:
        """``symbol``'s rows of a long table (their index: the file's data rows, 0-based)."""
        cached = self._tables.get(path)
        if cached is None or cached[0] != stamp:
            raw = self._read(path, display, symbol)
            raw.columns = [normalise_column(c) for c in raw.columns]
            col = next((c for c in TICKER_COLUMNS if c in raw.columns), None)
            if col is None:
                raise MarketDataUnavailable(f"{display}: missing column(s) ticker (a long table needs "
                                            f"ticker, date, close, ...) (invalid file for {symbol})")
            keys = raw[col].astype(str).map(normalize_ticker)
            groups = {k: idx for k, idx in keys.groupby(keys, sort=False).groups.items()}
            cached = (stamp, {"raw": raw.drop(columns=[col]), "groups": groups})
            self._tables[path] = cached
        rows = cached[1]["groups"].get(symbol)
        if rows is None:
            raise MarketDataError(f"no {path.rsplit('/', 1)[-1].split('.')[0]} bars for {symbol} in {display}")
        return cached[1]["raw"].loc[rows]

    def load(self, kind: str, ticker: str) -> pd.DataFrame:
        """The whole validated file of ``kind`` ('daily'|'minute') for ``ticker``.

        Re-read when the file's modification info changes; otherwise memoised. A rejected
        file leaves nothing behind (it is read again, and refused again, until fixed).
        """
        symbol = normalize_ticker(ticker)
        try:
            path, long_table = self._find(kind, symbol)
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
        if long_table:
            display = f"{self.root_url}/{path.rsplit('/', 1)[-1]} (ticker {symbol})"
            raw = self._long_table_rows(path, display, stamp, symbol)
        else:
            display = f"{self.root_url}/{kind}/{path.rsplit('/', 1)[-1]}"
            raw = self._read(path, display, symbol)
        try:
            bars = load_bar_file(display, raw, kind, max_gap_sessions=self.max_gap_sessions,
                                 intraday_tz=self.intraday_tz)
        except MarketDataError as exc:  # the file breaks a rule: the source is broken, not the request
            raise MarketDataUnavailable(f"{exc} (invalid file for {symbol})") from exc
        if kind == "minute":
            bars = regular_session_only(bars)
        self._loaded[key] = (stamp, bars)
        return bars

    def missing_columns(self, ticker: str) -> list[str]:
        """Columns ``ticker``'s daily file lacks: ``[]`` for full OHLCV bars, e.g. ``["open",
        "high", "low", "volume"]`` for a close-only series (its bars then carry open = high =
        low = close and volume 0: features that need them must refuse, naming these)."""
        return list(self.load("daily", ticker).attrs.get("missing_columns", []))

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
