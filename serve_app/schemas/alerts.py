"""Alerts (portfolio spec section 12): active alerts and the rules behind them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from serve_app.schemas.common import Deleted, Number, ServiceBody, Timestamp

Priority = Literal["critical", "high", "medium", "low"]


class RuleCondition(BaseModel):
    metric: Literal["sector_exposure", "tag_exposure", "position_weight", "gross_exposure", "net_exposure"]
    operator: Literal["greater_than", "greater_or_equal", "less_than", "less_or_equal"]
    threshold: float = Field(description="a fraction of equity: 0.20 = 20 %")
    sector: str | None = Field(None, min_length=1, max_length=80, description="required for sector_exposure")
    tag: str | None = Field(None, min_length=1, max_length=80, description="required for tag_exposure")
    ticker: str | None = Field(None, min_length=1, max_length=80, description="optional for position_weight")


class AlertRuleCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    priority: Priority = "high"
    condition: RuleCondition


class AlertRule(BaseModel):
    rule_id: str
    name: str
    condition: dict[str, Any]
    priority: Priority
    active: bool
    created_at: Timestamp | None = None


class Alert(BaseModel):
    id: str
    type: str = Field(description="expiration_risk, or the rule's metric")
    priority: Priority
    title: str
    message: str
    positions_affected: list[str]
    triggered_at: Timestamp
    rule_id: str | None = None
    actions: list[str] = Field(default_factory=list)
    value: Number = None


class RuleDeleted(Deleted):
    rule_id: str


AlertRuleBody = ServiceBody(AlertRuleCreate, examples=[
    {"name": "Sector concentration", "priority": "critical",
     "condition": {"metric": "sector_exposure", "sector": "Technology", "operator": "greater_than", "threshold": 0.2}}])
