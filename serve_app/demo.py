"""Demo data seeded by ``sigma serve --demo`` beyond the users (portfolios, Lab models)."""

from __future__ import annotations

import importlib

from cluster.catalog import Catalog
from cluster.config import Settings

#: Each module has ``seed(catalog, settings)``; it must be idempotent (re-running --demo).
SEEDER_MODULES = ("serve_app.demo_portfolio", "serve_app.demo_lab")


def seed_demo_data(catalog: Catalog, settings: Settings) -> None:
    for name in SEEDER_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.seed(catalog, settings)
