"""Market data behind one interface: synthetic (default, offline), files, polygon.

    from compute.marketdata import make_provider
    p = make_provider("synthetic", seed=0)
    p = make_provider("files:s3://bucket/bars", cache_url="file:///tmp/cache")
    p = make_provider("polygon", cache_url="s3://bucket/artifacts", cache_ttl_s=86400)

See :class:`compute.marketdata.base.MarketDataProvider` for the methods and frame shapes.
"""

from __future__ import annotations

from compute.marketdata.base import (
    BAR_COLUMNS,
    FREQ_MINUTES,
    OPTION_CHAIN_COLUMNS,
    MarketDataError,
    MarketDataProvider,
)
from compute.marketdata.cache import DEFAULT_TTL_S, BarCache
from compute.marketdata.factors import FACTOR_DISPLAY_NAMES, FACTOR_PROXIES, FACTORS, STYLE_FACTORS

__all__ = [
    "BAR_COLUMNS", "FREQ_MINUTES", "OPTION_CHAIN_COLUMNS", "FACTORS", "STYLE_FACTORS",
    "FACTOR_PROXIES", "FACTOR_DISPLAY_NAMES", "MarketDataError", "MarketDataProvider",
    "BarCache", "make_provider",
]


def make_provider(spec: str = "synthetic", *, seed: int = 0, cache_url: str | None = None,
                  cache_ttl_s: float = DEFAULT_TTL_S, clock=None, sleep=None,
                  **kwargs) -> MarketDataProvider:
    """Build a provider from a ``SIGMA_MARKET_DATA``-style spec.

    ``"synthetic"`` (``seed``), ``"files:<fsspec url>"`` or ``"polygon"`` (kwargs api_key,
    base_url, plan, max_retries).  ``cache_url`` (fsspec URL) caches fetched bars as Parquet
    for ``cache_ttl_s`` seconds (files and polygon; synthetic bars are generated faster than
    they are read, so it ignores the cache).  ``clock`` (epoch seconds) and ``sleep`` are
    injectable for tests.
    """
    spec = (spec or "synthetic").strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "synthetic":
        from compute.marketdata.synthetic import SyntheticProvider

        return SyntheticProvider(seed=seed, clock=clock)
    cache = None
    if cache_url:
        cache = BarCache(cache_url, source=kind if kind != "files" else f"files-{arg}",
                         ttl_s=cache_ttl_s, clock=clock)
    if kind == "files":
        if not arg:
            raise MarketDataError("files provider needs a location: 'files:<fsspec url>'")
        from compute.marketdata.files import FilesProvider

        return FilesProvider(arg, clock=clock, cache=cache, **kwargs)
    if kind == "polygon":
        from compute.marketdata.polygon import PolygonProvider

        return PolygonProvider(clock=None, sleep=sleep, cache=cache, **kwargs)
    raise MarketDataError(f"unknown market data provider {spec!r}: use synthetic, files:<url> or polygon")
