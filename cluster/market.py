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
    key = (settings.market_data, settings.market_data_seed, settings.resolved_storage_url,
           settings.files_max_gap_sessions, settings.files_intraday_tz)
    provider = _providers.get(key)
    if provider is None:
        with _lock:
            provider = _providers.get(key)
            if provider is None:
                kwargs = {"cache_url": f"{settings.resolved_storage_url.rstrip('/')}/cache/marketdata"}
                if settings.market_data == "synthetic":
                    kwargs["seed"] = settings.market_data_seed
                if settings.market_data.strip().lower().startswith("files:"):
                    kwargs["max_gap_sessions"] = (settings.files_max_gap_sessions
                                                  if settings.files_max_gap_sessions >= 0 else None)
                    kwargs["intraday_tz"] = settings.files_intraday_tz
                provider = _providers[key] = make_provider(settings.market_data, **kwargs)
    return provider


# -- what could not be priced: kept for /healthz ---------------------------------------------

_SKIPPED_FILE = "market_data_skipped.json"


def record_skipped(settings, source: str, items: list[dict]) -> None:
    """Keep what ``source`` (``demo_seed``, ``batch``) could not price (``{ticker, reason, ...}``
    dicts; an empty list clears it) in ``SIGMA_HOME``, where ``/healthz`` reads it
    (:func:`skipped_report`). Written atomically; one file per deployment home."""
    import datetime as dt
    import json
    import os

    home = settings.ensure_home()
    path = home / _SKIPPED_FILE
    with _lock:
        report = skipped_report(settings)
        if items:
            report[source] = {"at": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
                              "items": list(items)}
        else:
            report.pop(source, None)
        tmp = home / f".{_SKIPPED_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(report, indent=1, default=str))
        os.replace(tmp, path)


def skipped_report(settings) -> dict:
    """``{source: {at, items: [{ticker, reason, ...}]}}`` of what could not be priced."""
    import json

    path = settings.home / _SKIPPED_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
