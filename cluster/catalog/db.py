"""Engine, sessions and schema migrations for the catalog."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers (API replicas) proceed while a worker writes; the busy timeout turns
    # brief writer contention into a short wait instead of "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


class Catalog:
    """One engine and session factory per process."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back whole on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def owned_row(session: Session, model, key, user_id: int, what: str, *, active_only: bool = False):
    """The row ``key`` of ``model`` if it belongs to ``user_id`` (and, with ``active_only``, its
    ``active`` flag is set: a deactivated row is gone for its owner); ``LookupError("<what> <key>
    not found")`` otherwise (another user's row is as absent as a missing one: the API answers 404)."""
    row = session.get(model, key)
    if row is None or row.user_id != user_id or (active_only and not row.active):
        raise LookupError(f"{what} {key} not found")
    return row


def alembic_config(catalog: Catalog):
    # Imported here: every Ray worker imports the catalog, only start-up runs migrations.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = catalog.engine
    return config


def prepare_catalog(settings: Settings) -> Catalog:
    """The deployment's catalog, migrated. A multi-node deployment (``SIGMA_MULTI_NODE``) on
    node-local storage is refused first, before anything is written."""
    from cluster.config import require_shared_storage

    require_shared_storage(settings, 0)
    settings.ensure_home()
    catalog = get_catalog(settings)
    upgrade_schema(catalog)
    return catalog


def upgrade_schema(catalog: Catalog, revision: str = "heads") -> None:
    """Apply versioned migrations so an upgrade keeps existing data.

    ``heads`` (plural) applies every branch, so areas can add migrations independently.
    """
    from alembic import command

    command.upgrade(alembic_config(catalog), revision)


_catalogs: dict[str, Catalog] = {}
_lock = threading.Lock()


def get_catalog(settings: Settings | None = None) -> Catalog:
    settings = settings or get_settings()
    url = settings.resolved_database_url
    with _lock:
        if url not in _catalogs:
            _catalogs[url] = Catalog(url)
        return _catalogs[url]
