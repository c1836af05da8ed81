"""Shared fixtures: catalogs on SQLite and PostgreSQL, one Ray per session, a live Serve app."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from pathlib import Path

import httpx
import pytest

# Before any test module imports numba: the machine's kernel cache that `make install` filled.
from cluster.config import default_numba_cache_dir  # noqa: E402

os.environ.setdefault("NUMBA_CACHE_DIR", str(default_numba_cache_dir()))

PG_BASE = os.environ.get("SIGMA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_PASSWORD = "correct-horse-battery"


from cluster.runtime import free_port  # noqa: E402,F401 - one home; tests import it from here


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres", connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001
        return False


def _make_pg_schema() -> tuple[str, str]:
    import psycopg

    schema = f"sigma_test_{secrets.token_hex(4)}"
    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    # Every connection of this run searches only its own schema, so runs never see each other.
    return schema, f"{PG_BASE}?options=-csearch_path%3D{schema}"


def _drop_pg_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres", autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's S3 server on a loopback port, once per test session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")


@pytest.fixture(scope="session")
def session_tmp() -> Path:
    path = Path(tempfile.mkdtemp(prefix="sigma_test_"))
    return path


def _database_url(kind: str, home: Path):
    if kind == "sqlite":
        return f"sqlite:///{home / 'catalog.db'}", None
    if not _pg_available():
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (every machine of this project has one)")
    schema, url = _make_pg_schema()
    return url, schema


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request, tmp_path):
    """A migrated, empty catalog on each back end."""
    from cluster.catalog import Catalog, upgrade_schema

    url, schema = _database_url(request.param, tmp_path)
    cat = Catalog(url)
    upgrade_schema(cat)
    yield cat
    cat.dispose()
    if schema:
        _drop_pg_schema(schema)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session: 2 CPUs, no dashboard."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, namespace="sigma", log_to_driver=False)
    yield ray
    try:
        from ray import serve

        serve.shutdown()
    finally:
        ray.shutdown()


class Api:
    """A running Sigma on Ray Serve plus helpers to log in and call it."""

    def __init__(self, base_url: str, settings, catalog, backend: str):
        self.base_url = base_url
        self.settings = settings
        self.catalog = catalog
        self.backend = backend
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self._tokens: dict[str, str] = {}

    def user(self, username: str, *, role: str = "user", tier: str = "pro") -> str:
        """Create the user once; return a bearer token for it."""
        if username not in self._tokens:
            from serve_app.users import create_user

            create_user(self.catalog, username, TEST_PASSWORD, role=role, tier=tier, update=True)
            resp = self.http.post("/api/v1/auth/token", json={"username": username, "password": TEST_PASSWORD})
            assert resp.status_code == 200, resp.text
            self._tokens[username] = resp.json()["access_token"]
        return self._tokens[username]

    def headers(self, username: str, **kw) -> dict:
        return {"Authorization": f"Bearer {self.user(username, **kw)}"}

    def wait_job(self, job_id: str, username: str, timeout: float = 120, until=("completed", "failed", "cancelled")) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self.http.get(f"/api/v1/jobs/{job_id}", headers=self.headers(username))
            assert resp.status_code == 200, resp.text
            data = resp.json()["data"]
            if data["status"] in until:
                return data
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not reach {until} in {timeout} s")


def pytest_configure(config):
    config.addinivalue_line("markers", "postgresql_only: a live-API test whose subject does not depend on the "
                                       "catalog back end (rendering, pricing, search): run on PostgreSQL only")


def pytest_collection_modifyitems(config, items):
    """Drop the SQLite run of ``postgresql_only`` tests: the suite keeps both back ends for
    everything that reads or writes the catalog in its own way, and saves the time of running
    PDF rendering, charts and searches twice."""
    dropped = [i for i in items if i.get_closest_marker("postgresql_only") and "[sqlite" in i.nodeid]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def api(request, ray_session, session_tmp):
    """The real Serve application on a free port, once per catalog back end."""
    from ray import serve

    from cluster.catalog import get_catalog, upgrade_schema
    from cluster.config import Settings
    from serve_app.app import build_app
    from serve_app.cli import wait_healthy

    home = session_tmp / request.param
    home.mkdir(parents=True, exist_ok=True)
    url, schema = _database_url(request.param, home)
    port = free_port()
    settings = Settings(
        home=home,
        database_url=url,
        host="127.0.0.1",
        port=port,
        jwt_secret=secrets.token_urlsafe(32),
        # free = 30/min so a test reaches a 429 quickly; the suite's own logins and unauthenticated
        # checks (one client address) get a budget of their own
        rate_limits='{"free": {"per_minute": 30, "per_hour": 1000}, "anonymous": {"per_minute": 100000, "per_hour": 1000000}}',
        ingress_num_cpus=0.1,
        ingress_max_replicas=1,  # one replica: the suite's figures and caches live in one process
        job_num_cpus=0.5,
        allow_private_webhooks=True,
    )
    catalog = get_catalog(settings)
    upgrade_schema(catalog)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(settings), name="sigma", route_prefix="/", blocking=False)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(f"{base}/api/v1")
    client = Api(base, settings, catalog, request.param)
    yield client
    client.http.close()
    # Serve binds its HTTP port once per cluster: shut it down so the next back end can rebind.
    serve.shutdown()
    import ray

    from cluster.jobs import manager_name
    from cluster.ratelimit import limiter_name

    for name in (manager_name(settings), limiter_name(settings.tier_limits())):
        try:
            ray.kill(ray.get_actor(name, namespace="sigma"), no_restart=True)
        except ValueError:
            pass
    if schema:
        catalog.dispose()
        _drop_pg_schema(schema)
