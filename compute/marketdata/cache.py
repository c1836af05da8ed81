"""Parquet cache of fetched bars under any fsspec URL, with a time-to-live.

Layout: ``<cache_url>/marketdata/<source>/<kind>/<TICKER>.parquet`` plus a ``.json`` sidecar
holding the covered session range and the fetch time.  A request fully inside a fresh cached
range is a *hit*; one overlapping it fetches only the missing sessions and merges (*partial*);
anything else (no file, expired, disjoint) fetches the whole range (*miss*).  A merged file
keeps the older fetch time, so data is never served past its TTL.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Callable

import fsspec
import pandas as pd

from compute.marketdata.base import empty_bars

DEFAULT_TTL_S = 86_400.0


class BarCache:
    """Bar cache for one data source (``source`` keeps sources apart, e.g. 'polygon')."""

    def __init__(self, url: str, source: str, ttl_s: float = DEFAULT_TTL_S,
                 clock: Callable[[], float] | None = None):
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/") + "/marketdata/" + re.sub(r"[^A-Za-z0-9_.-]+", "_", source)
        self.ttl_s = float(ttl_s)
        self.clock = clock or time.time

    def _paths(self, kind: str, ticker: str) -> tuple[str, str]:
        base = f"{self.root}/{kind}/{ticker}"
        return base + ".parquet", base + ".json"

    def _read(self, kind: str, ticker: str):
        data_path, meta_path = self._paths(kind, ticker)
        if not (self.fs.exists(meta_path) and self.fs.exists(data_path)):
            return None
        with self.fs.open(meta_path, "r") as fh:
            meta = json.load(fh)
        if self.clock() - float(meta["fetched_at"]) > self.ttl_s:
            return None
        with self.fs.open(data_path, "rb") as fh:
            bars = pd.read_parquet(fh)
        return bars, pd.Timestamp(meta["start"]), pd.Timestamp(meta["end"]), float(meta["fetched_at"])

    def _write(self, kind, ticker, bars, start, end, fetched_at):
        data_path, meta_path = self._paths(kind, ticker)
        self.fs.makedirs(data_path.rsplit("/", 1)[0], exist_ok=True)
        # Write-then-rename so a concurrent reader never sees half a file.
        tmp = f"{data_path}.{uuid.uuid4().hex}.tmp"
        with self.fs.open(tmp, "wb") as fh:
            bars.to_parquet(fh)
        self.fs.mv(tmp, data_path)
        with self.fs.open(meta_path, "w") as fh:
            json.dump({"start": str(start.date()), "end": str(end.date()),
                       "fetched_at": fetched_at}, fh)

    def get(self, kind: str, ticker: str, start: pd.Timestamp, end: pd.Timestamp,
            fetch: Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame]) -> tuple[pd.DataFrame, str]:
        """Bars of sessions [start, end] (naive New York dates) and 'hit'|'partial'|'miss'.

        ``fetch(lo, hi)`` returns the bars of sessions lo..hi from the source.
        """
        cached = self._read(kind, ticker)
        if cached is not None:
            bars, lo, hi, fetched_at = cached
            if lo <= start and end <= hi:
                return _slice(bars, start, end), "hit"
            if start <= hi and end >= lo:
                pieces = [bars]
                if start < lo:
                    pieces.append(fetch(start, lo - pd.Timedelta(days=1)))
                if end > hi:
                    pieces.append(fetch(hi + pd.Timedelta(days=1), end))
                merged = pd.concat([p for p in pieces if len(p)] or [empty_bars()]).sort_index()
                merged = merged[~merged.index.duplicated(keep="first")]
                self._write(kind, ticker, merged, min(start, lo), max(end, hi), fetched_at)
                return _slice(merged, start, end), "partial"
        bars = fetch(start, end)
        self._write(kind, ticker, bars, start, end, self.clock())
        return bars, "miss"


def _slice(bars: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    dates = bars.index.tz_convert("America/New_York").tz_localize(None).normalize()
    return bars[(dates >= start) & (dates <= end)]
