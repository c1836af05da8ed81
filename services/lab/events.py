"""Lab events to the user's webhooks."""

from __future__ import annotations

import logging
from typing import Any


from cluster.catalog import Catalog
from cluster.webhooks import enqueue
from compute.jsonsafe import json_safe

log = logging.getLogger("sigma.lab")


def emit_event(catalog: Catalog, user_id: int, event: str, data: dict) -> Any:
    """Hand an event to the webhooks area (``cluster.webhooks.enqueue``). A delivery problem
    never undoes the result it announces."""
    try:
        return enqueue(catalog, user_id, event, json_safe(data))
    except Exception:  # noqa: BLE001
        log.exception("could not enqueue %s for user %s", event, user_id)
        return None
