"""UI sync (spec 10): what an agent may ask the dashboard to show, and the event log it reads.

``POST /ui/navigate``, ``/ui/highlight`` and ``/ui/apply-filter`` validate their request here
against the names below (unknown ones are refused with the valid list) and append an event to
the caller's UI session; ``GET /ui/events`` (and the dashboard's own stream) read the events
back in id order. Events live in the catalog (``ui_events``), so every ingress replica, on
SQLite or PostgreSQL, serves the same stream and a reconnect with ``Last-Event-ID`` replays
what was missed. Sessions are per user: the (user, session id) pair is the key, so one user can
neither publish to nor read another's session whatever id they send.

The positions-table presets and sorts are pure functions over the API's position records
(``filter_positions``), used by the dashboard to render exactly the rows the preset names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Iterable

from sqlalchemy import delete, func, select

from cluster.catalog import Catalog, UIEvent

#: The dashboard's pages (``/app/<page>``): a navigate target is one of these, or ``<page>_tab``.
PAGES = ("portfolio", "positions", "risk", "modeling", "lab", "reports")
TARGETS = PAGES + tuple(f"{p}_tab" for p in PAGES)
#: Ids of the dashboard's fixed elements a highlight may name (besides the caller's position ids).
ELEMENTS = (
    "value_metric", "pnl_metric", "positions_metric", "gross_metric", "net_metric", "long_metric", "short_metric",
    "delta_metric", "gamma_metric", "theta_metric", "vega_metric", "alerts_panel", "exposures_panel",
    "positions_table", "greeks_panel", "factors_panel", "scenarios_panel", "var_panel", "factor_betas_panel",
    "modeling_panel", "hedges_panel", "models_panel", "leaderboard_panel", "sweep_panel", "backtest_panel",
    "reports_panel",
)
STYLES = ("critical", "danger", "warning", "info", "success")
#: Filter views: the positions table (shown on the portfolio page).
VIEWS = ("positions", "portfolio")
PRESETS = ("all", "expiring_today", "expiring_this_week", "options", "stocks", "short_options", "long_options",
           "losers", "winners", "tag:<name>")
SORT_FIELDS = ("gamma_risk", "delta", "delta_exposure", "notional_exposure", "value", "pnl", "pnl_percent",
               "theta", "vega", "expiration", "ticker", "quantity")
SORT_ORDERS = ("asc", "desc")
#: The stream's session when the caller sends no ``X-Session-ID``.
DEFAULT_SESSION = "default"
SESSION_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
#: Events older than this are pruned (every PRUNE_EVERY-th publish) (a reconnect replays at most these).
RETENTION = dt.timedelta(hours=24)
REPLAY_LIMIT = 500
PRUNE_EVERY = 50
_OPTION_TYPES = {"LC", "LP", "SC", "SP"}


class UIInputError(ValueError):
    """Bad UI-sync input: ``field``, the reason, and the valid values when there is a list."""

    def __init__(self, field: str, reason: str, valid: Iterable[str] | None = None):
        super().__init__(reason)
        self.field, self.reason = field, reason
        self.valid = list(valid) if valid is not None else None


def session_id(raw: str | None) -> str:
    if raw is None or raw == "":
        return DEFAULT_SESSION
    if not SESSION_RE.match(raw):
        raise UIInputError("X-Session-ID", "1-64 characters of letters, digits, '_', '-' or '.'")
    return raw


def page_of(target: str) -> str:
    """The page a navigate target names; ``UIInputError`` listing the valid targets."""
    if target not in TARGETS:
        raise UIInputError("target", f"unknown target {target!r}", TARGETS)
    page = target.removesuffix("_tab")
    return "portfolio" if page == "positions" else page


def check_preset(preset: str, tag_names: Iterable[str], field: str = "filter.preset") -> str:
    if preset.startswith("tag:"):
        names = sorted(tag_names)
        if preset[4:] not in names:
            raise UIInputError(field, f"unknown tag {preset[4:]!r}", [f"tag:{n}" for n in names])
        return preset
    if preset not in PRESETS:
        raise UIInputError(field, f"unknown preset {preset!r}", PRESETS)
    return preset


def parse_sort(raw, field: str = "filter.sort") -> dict | None:
    """``{"field", "order"}`` from the spec's object or its ``gamma_risk_desc`` string form."""
    if raw is None:
        return None
    if isinstance(raw, str):
        name, _, order = raw.rpartition("_")
        if order not in SORT_ORDERS:
            name, order = raw, "desc"
        raw = {"field": name, "order": order}
    if raw.get("field") not in SORT_FIELDS:
        raise UIInputError(f"{field}.field", f"unknown sort field {raw.get('field')!r}", SORT_FIELDS)
    if (raw.get("order") or "desc") not in SORT_ORDERS:
        raise UIInputError(f"{field}.order", "use asc or desc", SORT_ORDERS)
    return {"field": raw["field"], "order": raw.get("order") or "desc"}


def check_elements(ids: Iterable[str], position_ids: Iterable[str], field: str = "elements") -> None:
    known = set(ELEMENTS) | set(position_ids)
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise UIInputError(field, f"unknown element id(s) {', '.join(map(repr, unknown))}; "
                                  "use a fixed element or one of your position ids (pos_...)", ELEMENTS)


def check_style(style: str, field: str) -> None:
    if style not in STYLES:
        raise UIInputError(field, f"unknown style {style!r}", STYLES)


# -- the positions table ---------------------------------------------------------------------

def _sort_value(p: dict, name: str):
    greeks = p.get("position_greeks") or {}
    if name == "gamma_risk":
        g = greeks.get("gamma")
        return abs(g) if g is not None else None
    if name in ("delta", "theta", "vega"):
        return greeks.get(name)
    return p.get(name)


def filter_positions(positions: list[dict], preset: str | None, sort: dict | None, today: dt.date) -> list[dict]:
    """The position records a preset keeps, in the sort's order (missing values last)."""
    preset = preset or "all"
    week = today + dt.timedelta(days=7)

    def expiry(p):
        return dt.date.fromisoformat(p["expiration"]) if p.get("expiration") else None

    keep = {
        "all": lambda p: True,
        "expiring_today": lambda p: expiry(p) == today,
        "expiring_this_week": lambda p: expiry(p) is not None and today <= expiry(p) <= week,
        "options": lambda p: p["type"] in _OPTION_TYPES,
        "stocks": lambda p: p["type"] not in _OPTION_TYPES,
        "short_options": lambda p: p["type"] in ("SC", "SP"),
        "long_options": lambda p: p["type"] in ("LC", "LP"),
        "losers": lambda p: (p.get("pnl") or 0) < 0,
        "winners": lambda p: (p.get("pnl") or 0) > 0,
    }
    if preset.startswith("tag:"):
        rows = [p for p in positions if preset[4:] in (p.get("tags") or [])]
    else:
        rows = [p for p in positions if keep[preset](p)]
    if sort:
        present = [p for p in rows if _sort_value(p, sort["field"]) is not None]
        missing = [p for p in rows if _sort_value(p, sort["field"]) is None]
        present.sort(key=lambda p: _sort_value(p, sort["field"]), reverse=sort["order"] == "desc")
        rows = present + missing
    return rows


# -- the event log ----------------------------------------------------------------------------

def token_fingerprint(token: str) -> str:
    """What a logout row keeps of a token (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def publish(catalog: Catalog, user_id: int, session: str, kind: str, payload: dict) -> int:
    """Append an event to the user's session; returns its id (the SSE id)."""
    now = dt.datetime.now(dt.timezone.utc)
    with catalog.session() as s:
        row = UIEvent(user_id=user_id, session_id=session, kind=kind, payload=payload, created_at=now)
        s.add(row)
        s.flush()
        if row.id % PRUNE_EVERY == 0:  # now and then, not on every write
            s.execute(delete(UIEvent).where(UIEvent.kind != "logout", UIEvent.created_at < now - RETENTION))
        return int(row.id)


def latest_id(catalog: Catalog, user_id: int, session: str) -> int:
    with catalog.session() as s:
        return int(s.scalar(select(func.max(UIEvent.id)).where(UIEvent.user_id == user_id,
                                                                UIEvent.session_id.in_((session, "*")))) or 0)


def events_after(catalog: Catalog, user_id: int, session: str, after: int, limit: int = REPLAY_LIMIT) -> list[dict]:
    """The user's events of this session (and the user-wide ``*`` ones) with id > ``after``."""
    with catalog.session() as s:
        rows = s.execute(select(UIEvent.id, UIEvent.kind, UIEvent.payload, UIEvent.token_fp, UIEvent.created_at)
                         .where(UIEvent.user_id == user_id, UIEvent.session_id.in_((session, "*")), UIEvent.id > after)
                         .order_by(UIEvent.id).limit(limit)).all()
    return [{"id": int(r.id), "kind": r.kind, "payload": r.payload, "token_fp": r.token_fp,
             "at": r.created_at.isoformat().replace("+00:00", "Z")} for r in rows]


def record_logout(catalog: Catalog, user_id: int, token: str) -> None:
    """The dashboard logged this token out: its streams close and the dashboard refuses it."""
    now = dt.datetime.now(dt.timezone.utc)
    with catalog.session() as s:
        s.add(UIEvent(user_id=user_id, session_id="*", kind="logout", payload={}, token_fp=token_fingerprint(token),
                      created_at=now))


def is_logged_out(catalog: Catalog, token: str) -> bool:
    with catalog.session() as s:
        return s.scalar(select(UIEvent.id).where(UIEvent.token_fp == token_fingerprint(token)).limit(1)) is not None
