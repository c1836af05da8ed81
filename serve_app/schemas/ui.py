"""UI sync (portfolio spec 10): navigate, highlight, apply a filter preset; the event stream."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from serve_app.schemas.common import Timestamp

Text = str  # free text the dashboard shows escaped


class SortSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(max_length=40, description="gamma_risk, delta, delta_exposure, notional_exposure, value, pnl, "
                       "pnl_percent, theta, vega, expiration, ticker, quantity")
    order: Literal["asc", "desc"] = "desc"


class NavigateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: str | None = Field(None, max_length=120, description="a filter preset (see /ui/apply-filter)")
    sort: str | SortSpec | None = Field(None, description="'gamma_risk_desc' or {field, order}")
    highlight: list[str] = Field(default_factory=list, max_length=100, description="element ids to highlight")
    session_id: str | None = Field(None, max_length=40, pattern=r"^[A-Za-z0-9_\-]{1,40}$",
                                   description="modeling target: the caller's modeling session to open")


class NavigateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str = Field(max_length=40, description="portfolio, positions, risk, modeling, lab, reports "
                        "(or the same with _tab)")
    params: NavigateParams = Field(default_factory=NavigateParams)
    ai_context: dict[str, Any] | None = Field(None, description="why (shown to the user), e.g. {reason}")


class HighlightElement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(max_length=64, description="a fixed element id (gamma_metric, ...) or one of your position ids")
    style: str = Field("info", max_length=16, description="critical, danger, warning, info, success")
    reason: Text | None = Field(None, max_length=200)
    pulse: bool = False


class HighlightBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    elements: list[HighlightElement] = Field(min_length=1, max_length=100)


class FilterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: str = Field(max_length=120, description="all, expiring_today, expiring_this_week, options, stocks, "
                        "short_options, long_options, losers, winners, tag:<name>")
    sort: SortSpec | None = None


class ApplyFilterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    view: str = Field("positions", max_length=40, description="positions (the portfolio page's table)")
    filter: FilterSpec
    highlight_reason: Text | None = Field(None, max_length=200)


class UIEventOut(BaseModel):
    event_id: int = Field(description="the Server-Sent Events id (send it back as Last-Event-ID)")
    session_id: str
    type: Literal["navigate", "highlight", "filter"]
    event: dict[str, Any] = Field(description="what the dashboard receives as the event's data")
    published_at: Timestamp | None = None
