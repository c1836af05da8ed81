"""Demo data seeded by ``sigma serve --demo`` beyond the users (portfolios, Lab models)."""

from __future__ import annotations

from cluster.catalog import Catalog
from cluster.config import Settings

#: Seeders added by the portfolio and Lab modules: each takes (catalog, settings).
SEEDERS: list = []


def seed_demo_data(catalog: Catalog, settings: Settings) -> None:
    for seeder in SEEDERS:
        seeder(catalog, settings)
