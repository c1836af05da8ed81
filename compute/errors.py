"""Errors the compute layer raises where the caller must tell them apart."""

from __future__ import annotations


class MarketDataError(Exception):
    """A market-data request cannot be served (bad input, invalid file, upstream failure)."""


class InvalidTicker(MarketDataError, ValueError):
    """A symbol that breaks the ticker rule (``compute.instruments.normalize_ticker``).

    A ``MarketDataError`` to market-data callers and a ``ValueError`` to everyone else.
    """


class MarketDataUnavailable(MarketDataError):
    """The source itself cannot serve a ticker: its file is unreadable or invalid, or the
    source is unreachable. The message names the ticker and the file (or source); the API
    answers 503, never 400 (the request was fine)."""
