"""The one input error: bad input that names the request field it came from.

Every service raises a subclass (``LabInputError``, ``PortfolioInputError``,
``WebhookError``); the HTTP layer maps this base class, once, to the spec's error format
(400 ``INVALID_PARAMETER`` with ``field``).
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input; ``field`` names the offending request field, ``reason`` says why."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
