"""The catalog: every row Sigma keeps (SQLAlchemy 2; SQLite by default, PostgreSQL for a cluster)."""

from cluster.catalog.db import Catalog, get_catalog, upgrade_schema
from cluster.catalog.models import Base, Job, User

__all__ = ["Base", "Catalog", "Job", "User", "get_catalog", "upgrade_schema"]
