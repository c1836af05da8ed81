"""The market-data provider a deployment's settings name (``SIGMA_MARKET_DATA``).

One construction for the whole platform, one provider per process and settings: the API
replicas, job tasks, the batch and the demo seeding all get theirs here.
"""

from __future__ import annotations

import threading

from compute.marketdata import MarketDataProvider, make_provider

_lock = threading.Lock()
_providers: dict[tuple, MarketDataProvider] = {}


def market_provider(settings) -> MarketDataProvider:
    """The provider of ``settings`` (source, seed, bar cache under the artifact store)."""
    key = (settings.market_data, settings.market_data_seed, settings.resolved_storage_url)
    provider = _providers.get(key)
    if provider is None:
        with _lock:
            provider = _providers.get(key)
            if provider is None:
                kwargs = {"cache_url": f"{settings.resolved_storage_url.rstrip('/')}/cache/marketdata"}
                if settings.market_data == "synthetic":
                    kwargs["seed"] = settings.market_data_seed
                provider = _providers[key] = make_provider(settings.market_data, **kwargs)
    return provider
