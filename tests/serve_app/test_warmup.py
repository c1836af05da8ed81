"""A replica's background warm-up loads what the first requests need (in a fresh process)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = """
import json
from numba.core.registry import CPUDispatcher
import compute.indicators_nb as ind
from compute.marketdata import calendar
from serve_app import warmup

def loaded():
    return sorted(n for n, f in vars(ind).items() if isinstance(f, CPUDispatcher) and f.signatures)

import threading, time

calls = []

class JobManagerHandle:  # records the replica's calls to the job manager's actor handle
    class warm_workers:
        @staticmethod
        def remote(*args):
            calls.append((time.monotonic(), list(args)))

before = {"kernels": loaded(), "calendar": calendar._session_table.cache_info().currsize}
activity = warmup.Activity()
thread = warmup.start(activity, JobManagerHandle(), wait_s=120, quiet_s=1.0, quiet_wait_max_s=120)
activity.begin()  # the replica's first request, not answered yet
time.sleep(1.5)  # nothing may load
waiting = {"kernels": loaded(), "calendar": calendar._session_table.cache_info().currsize, "calls": len(calls),
           "alive": thread.is_alive()}
activity.end()
activity.begin()  # the next request: in flight while the replica warms and after
assert thread.warmed.wait(120)
time.sleep(1.5)
busy = {"calls": [args for _, args in calls], "alive": thread.is_alive()}
ended = time.monotonic()
activity.end()
thread.join(120)
after = {"kernels": loaded(), "calendar": calendar._session_table.cache_info().currsize}
print(json.dumps({"before": before, "waiting": waiting, "busy": busy, "after": after, "calls": [a for _, a in calls],
                  "quiet_before_call": calls[-1][0] - ended if calls else None, "alive": thread.is_alive()}))
"""


def test_warm_up_loads_calendar_and_indicator_kernels():
    out = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["before"] == {"kernels": [], "calendar": 0}
    # it waits for the replica's first answer, warms the replica, then asks the job manager for
    # one warm worker at once (a request still in flight) and for the rest once no request has
    # been in flight for quiet_s (1 s here)
    assert got["waiting"] == {"kernels": [], "calendar": 0, "calls": 0, "alive": True}
    assert got["busy"] == {"calls": [[1]], "alive": True}
    assert got["calls"] == [[1], []] and got["quiet_before_call"] >= 1.0, got
    assert not got["alive"] and got["after"]["calendar"] == 1
    # RSI, MACD (EMA), Bollinger and ATR kernels are loaded and ready to call
    assert len(got["after"]["kernels"]) >= 3, got


WARM_BOOK = """
from compute.marketdata.synthetic import SyntheticProvider
from services.warmup import warm_report
warm_report(SyntheticProvider(seed=0))
"""

# A demo book through the routes' own service functions, then numba's count of signatures that
# were not in the cache (compiled in this process) across every kernel module
ROUTES_AFTER_WARM = """
import importlib, json, pkgutil, tempfile
import compute
from numba.core.registry import CPUDispatcher
from cluster.config import Settings
from cluster.catalog import prepare_catalog
from cluster.market import market_provider
from serve_app.demo import seed_demo_data
from serve_app.users import seed_demo_users
from services.portfolio import views
from services.reports.portfolio_charts import PORTFOLIO_CHARTS, portfolio_chart_bytes
from services.risk import service as risk
from sqlalchemy import select
from cluster.catalog import User

settings = Settings(home=tempfile.mkdtemp())
catalog = prepare_catalog(settings)
seed_demo_users(catalog, settings)
seed_demo_data(catalog, settings)
provider = market_provider(settings)
with catalog.session() as s:
    uid = s.scalar(select(User.id).where(User.username == "demo_hedgefundstyle"))
book = risk.get_priced_book(catalog, provider, uid, risk.default_portfolio_id(catalog, uid, None))
views.portfolio_overview(book)
views.portfolio_exposures(book)
views.risk_greeks(book, "portfolio", True)
risk.portfolio_var(catalog, provider, uid)
for name in PORTFOLIO_CHARTS:
    portfolio_chart_bytes(catalog, provider, uid, name, "png")
missed = {}
for info in pkgutil.iter_modules(compute.__path__):
    if info.name.endswith("_nb"):
        module = importlib.import_module("compute." + info.name)
        for name, fn in vars(module).items():
            if isinstance(fn, CPUDispatcher) and fn.stats.cache_misses:
                missed[info.name + "." + name] = [str(sig) for sig in fn.stats.cache_misses]
print(json.dumps(missed))
"""


def test_warm_book_puts_every_portfolio_and_risk_kernel_in_the_cache(tmp_path):
    """On a fresh install the first GET /portfolio compiled a kernel for 2.5 s, the first factors,
    scenarios and VaR views one each (1.3-1.5 s): the warm-up's book must meet the argument types
    of the routes, so that a later process only loads them."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    env = {k: v for k, v in env.items() if not k.startswith("SIGMA_")}
    warm = subprocess.run([sys.executable, "-c", WARM_BOOK], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)
    assert warm.returncode == 0, warm.stderr[-2000:]
    out = subprocess.run([sys.executable, "-c", ROUTES_AFTER_WARM], capture_output=True, text=True, cwd=ROOT,
                         env={**env, "SIGMA_DEMO_PASSWORD": "warm-demo-1", "SIGMA_ADMIN_PASSWORD": "warm-admin-1"},
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {}


def test_first_answer_opens_the_warm_up_gate(tmp_path):
    """The middleware sets the app's ``serving`` event once a request has been answered."""
    import secrets

    from fastapi.testclient import TestClient

    from cluster.config import Settings
    from serve_app.app import local_app

    app = local_app(Settings(home=tmp_path, jwt_secret=secrets.token_urlsafe(32)))
    activity = app.state.sigma.activity
    assert not activity.serving.is_set()
    with TestClient(app) as client:
        # an event stream's request (open as long as the dashboard is) is not activity
        assert client.get("/api/v1/healthz", headers={"Accept": "text/event-stream"}).status_code in (200, 503)
        assert not activity.serving.is_set() and activity.in_flight == 0
        assert client.get("/api/v1/healthz").status_code in (200, 503)
    assert activity.serving.is_set() and activity.in_flight == 0 and activity.quiet_for() > 0
