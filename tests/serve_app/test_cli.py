"""The ``sigma`` command: migrate, users, and a full ``sigma serve --demo`` in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

SIGMA = str(Path(sys.executable).parent / "sigma")


def _env(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGMA_")}
    env.update({"SIGMA_HOME": str(home), **extra})
    return env


def test_help_lists_the_commands():
    out = subprocess.run([SIGMA, "--help"], capture_output=True, text=True, check=True).stdout
    for word in ("serve", "status", "users", "migrate"):
        assert word in out


def test_migrate_and_add_user(tmp_path):
    env = _env(tmp_path)
    subprocess.run([SIGMA, "migrate"], env=env, check=True, capture_output=True)
    assert (tmp_path / "catalog.db").exists()
    done = subprocess.run(
        [SIGMA, "users", "add", "quant1", "--password", "quant1-password", "--tier", "basic"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    again = subprocess.run([SIGMA, "users", "add", "quant1", "--password", "quant1-password"], env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "already exists" in again.stderr
    short = subprocess.run([SIGMA, "users", "add", "quant2", "--password", "short"], env=env, capture_output=True, text=True)
    assert short.returncode == 2 and "8 characters" in short.stderr


def test_serve_demo_end_to_end(tmp_path):
    """What `make run` does: start Ray, deploy, seed demo users, answer, stop cleanly on SIGINT."""
    port = free_port()
    env = _env(tmp_path, SIGMA_DEMO_PASSWORD="demo-password-1", SIGMA_NUM_CPUS="1", SIGMA_INGRESS_NUM_CPUS="0.1")
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(
        [SIGMA, "serve", "--demo", "--port", str(port), "--no-dashboard"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 180
        while "Press Ctrl-C" not in (tmp_path / "serve.log").read_text():
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "sigma serve did not come up"
            time.sleep(1)
        banner = (tmp_path / "serve.log").read_text()
        assert f"Sigma API:      {base}" in banner and f"{base}/docs" in banner
        # The admin password was generated (unset) and kept 0600 in SIGMA_HOME; the log (not a
        # terminal) names the file and never holds a password, generated or configured.
        admin_file = tmp_path / "admin_password"
        assert oct(admin_file.stat().st_mode & 0o777) == "0o600"
        assert admin_file.read_text().strip() not in banner and "demo-password-1" not in banner
        assert f"password in {admin_file} (mode 0600)" in banner
        assert "password from SIGMA_DEMO_PASSWORD" in banner
        assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0
        token = httpx.post(f"{base}/auth/token", json={"username": "demo_hnw", "password": "demo-password-1"}).json()["access_token"]
        resp = httpx.get(f"{base}/jobs", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200 and resp.json()["success"] is True
        status = subprocess.run([SIGMA, "status", "--port", str(port)], env=env, capture_output=True, text=True, timeout=60)
        assert '"status": "healthy"' in status.stdout or '"status": "degraded"' in status.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()[-3000:]


def test_multi_node_refuses_node_local_storage_before_writing(tmp_path):
    """SIGMA_MULTI_NODE (what cluster.yaml sets): SQLite or file:// is a clear error, and no
    catalog file is created; with PostgreSQL only the store is named."""
    env = _env(tmp_path, SIGMA_MULTI_NODE="true")
    for command in (["migrate"], ["serve", "--port", str(free_port()), "--no-dashboard"]):
        done = subprocess.run([SIGMA, *command], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "refusing to start a multi-node deployment" in done.stderr
        assert "SIGMA_DATABASE_URL" in done.stderr and "SIGMA_STORAGE_URL" in done.stderr
        assert not (tmp_path / "catalog.db").exists()
    env["SIGMA_DATABASE_URL"] = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    done = subprocess.run([SIGMA, "migrate"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "SIGMA_STORAGE_URL" in done.stderr and "SIGMA_DATABASE_URL" not in done.stderr
