"""Demo Lab models for ``sigma serve --demo``: a swing and a 0DTE model per demo user, plus a
momentum model for the hedge-fund-style user. Idempotent: existing models are left alone.
Matrices are not pre-built (the walk-through in docs/lab.md builds them in a few seconds)."""

from __future__ import annotations

from sqlalchemy import select

from cluster.catalog import Catalog, User
from cluster.config import Settings
from services.lab import common, models
DEMO_MODELS = {
    "demo_individual": [("swingsigma_default", "AAPL swing", "Balanced", {"ticker": "AAPL"}),
                        ("zerosigma_default", "SPY 0DTE", "Conservative", {"ticker": "SPY", "allowed_hours": [13, 14, 15]})],
    "demo_hnw": [("swingsigma_default", "MSFT swing", "Conservative", {"ticker": "MSFT"}),
                 ("longsigma_default", "SPY quarterly", "Balanced", {"ticker": "SPY"})],
    "demo_hedgefundstyle": [("swingsigma_default", "NVDA swing", "Aggressive", {"ticker": "NVDA"}),
                            ("zerosigma_mlp", "SPY 0DTE MLP", "Aggressive", {"ticker": "SPY", "variant": "mlp"}),
                            ("momentumsigma_default", "QQQ hourly momentum", "Balanced", {"ticker": "QQQ"})],
}


def seed(catalog: Catalog, settings: Settings) -> None:
    with catalog.session() as s:
        users = {u.username: u.id for u in s.scalars(select(User).where(User.username.in_(list(DEMO_MODELS))))}
    for username, specs in DEMO_MODELS.items():
        user_id = users.get(username)
        if user_id is None:
            continue
        for template_id, name, profile, config in specs:
            try:
                models.create_model(catalog, user_id, template_id, name=name, risk_profile=profile, config=config)
            except common.LabInputError as exc:
                if exc.field != "config.variant":  # already seeded
                    raise
