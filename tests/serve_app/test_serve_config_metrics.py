"""deploy/serve.yaml deployed the way Ray users deploy (``ray start`` + ``serve run <config>``,
separate processes), then a sweep through the API; Ray's metrics endpoint (scraped and parsed
with prometheus_client) carries Sigma's own metrics: request latency by route, jobs by kind,
sweep configurations and chunk durations, webhook deliveries and rate-limit rejections."""

from __future__ import annotations

import secrets
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import yaml

from tests.conftest import TEST_PASSWORD, free_port
from tests.raycluster import BIN, LocalCluster, sigma_env
from tests.serve_app.test_api_sweeps import SPEC_SWEEP

ROOT = Path(__file__).resolve().parents[2]
V1 = "/api/v1"


class _Hook(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        _Hook.received.append(self.rfile.read(int(self.headers.get("content-length", 0))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _families(text: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def _total(samples, **labels) -> float:
    return sum(v for lab, v in samples if all(lab.get(k) == want for k, want in labels.items()))


def test_serve_config_deploys_and_sigma_metrics_reach_rays_endpoint(tmp_path):
    home = tmp_path / "home"
    env = sigma_env(home, SIGMA_JWT_SECRET=secrets.token_urlsafe(32), SIGMA_ALLOW_PRIVATE_WEBHOOKS="true",
                    SIGMA_RATE_LIMITS='{"free": {"per_minute": 3, "per_hour": 100}, '
                                      '"anonymous": {"per_minute": 100000, "per_hour": 1000000}}')
    cluster = LocalCluster(env, tmp_path)
    hook = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        cluster.start_head(num_cpus=2)
        config = yaml.safe_load((ROOT / "deploy" / "serve.yaml").read_text())
        port = free_port()  # chosen after the head started, so no Ray process has taken it
        config["http_options"] = {"host": "127.0.0.1", "port": port}  # a free port on loopback
        config["grpc_options"]["port"] = free_port()
        config["applications"][0]["deployments"][0]["ray_actor_options"]["num_cpus"] = 0.1
        path = tmp_path / "serve.yaml"
        path.write_text(yaml.safe_dump(config))
        done = subprocess.run([str(BIN / "serve"), "run", "--address", cluster.address, "--non-blocking", str(path)],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        from serve_app.cli import wait_healthy

        wait_healthy(f"http://127.0.0.1:{port}{V1}", timeout=300)

        from cluster.catalog import get_catalog
        from cluster.config import Settings
        from serve_app.users import create_user

        catalog = get_catalog(Settings(home=home))
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)  # a loaded 2-core machine

        def login(user, tier):
            create_user(catalog, user, TEST_PASSWORD, tier=tier, update=True)
            resp = http.post(f"{V1}/auth/token", json={"username": user, "password": TEST_PASSWORD})
            assert resp.status_code == 200, resp.text
            return {"Authorization": f"Bearer {resp.json()['access_token']}"}

        h = login("metrics_pro", "pro")
        hooked = http.post(f"{V1}/webhooks", json={"url": f"http://127.0.0.1:{hook.server_port}/hook",
                                                   "events": ["sweep.completed"], "secret": "s" * 24}, headers=h)
        assert hooked.status_code == 201, hooked.text
        model = http.post(f"{V1}/models", json={"template_id": "swingsigma_default", "config": {"ticker": "AAPL"}},
                          headers=h)
        assert model.status_code == 201, model.text
        mid = model.json()["model_id"]
        built = http.post(f"{V1}/build_matrix", json={"model_id": mid, "start_date": "2020-01-01",
                                                      "end_date": "2023-12-31"}, headers=h)
        assert built.status_code == 200, built.text
        sweep = http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": SPEC_SWEEP, "chunk_size": 12},
                          headers=h)
        assert sweep.status_code == 202, sweep.text
        sweep_id = sweep.json()["sweep_id"]
        deadline = time.monotonic() + 400
        while (body := http.get(f"{V1}/backtest_sweep/{sweep_id}", headers=h).json())["status"] not in (
                "completed", "failed", "cancelled"):
            assert time.monotonic() < deadline, body
            time.sleep(0.5)
        assert body["status"] == "completed" and body["done_configs"] == 36, body

        free = login("metrics_free", "free")
        codes = [http.get(f"{V1}/auth/me", headers=free).status_code for _ in range(5)]
        assert 429 in codes, codes

        wanted = {
            # the route label is the path template under /api/v1
            "sigma_request_latency_s_count": lambda s: _total(s, route="/backtest_sweep", method="POST",
                                                               status="202") >= 1,
            "sigma_jobs": lambda s: any(lab.get("kind") == "lab.sweep" for lab, _ in s),
            "sigma_sweep_configs_total": lambda s: _total(s) >= 36,
            "sigma_sweep_chunk_duration_s_count": lambda s: _total(s) >= 3,
            "sigma_sweep_configs_per_second_count": lambda s: _total(s) >= 1,
            "sigma_rate_limited_total": lambda s: _total(s, tier="free") >= 1,
            "sigma_webhook_deliveries_total": lambda s: _total(s, outcome="delivered") >= 1,
        }
        deadline = time.monotonic() + 90
        while True:
            fams = _families(cluster.metrics_text())
            # Ray names custom metrics with a ray_ prefix on the endpoint
            missing = [name for name, ok in wanted.items() if not ok(fams.get(f"ray_{name}", []))]
            if not missing:
                break
            if time.monotonic() > deadline:
                sigma = [line for line in cluster.metrics_text().splitlines() if "sigma_" in line and "#" not in line]
                raise AssertionError(f"missing {missing}:\n" + "\n".join(sigma)[-12000:])
            time.sleep(2)
        assert _Hook.received  # the delivery counted is the one the server got
    finally:
        hook.shutdown()
        cluster.stop()
