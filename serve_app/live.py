"""A local Sigma in a process of its own, started exactly as ``make run`` starts it.

``with LiveSigma() as sigma:`` runs ``sigma serve --demo`` on a free port with a fresh
``SIGMA_HOME`` (or the ``home`` given: a restart on the same catalog and artifacts), waits until
the demo user can log in, and stops the service (SIGINT) on exit. ``kill()`` is what a power
cut does: SIGKILL to the service and every Ray process it started, nothing shut down cleanly.
Benchmarks and the restart tests use it; so can a notebook that wants a throwaway Sigma.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from cluster.runtime import free_port

ROOT = Path(__file__).resolve().parent.parent


class LiveSigma:
    """``sigma serve --demo`` in its own process group (see the module docstring)."""

    def __init__(self, home=None, demo_user: str = "demo_hnw", timeout: float = 300, password: str | None = None,
                 extra_env: dict | None = None):
        self.home = Path(home) if home else Path(tempfile.mkdtemp(prefix="sigma-live-"))
        # Ray's sockets live under its temp dir: a short path of our own (AF_UNIX paths are
        # limited to 107 bytes) that also names every Ray process this service started.
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="sray-"))
        self.port = free_port()
        self.password = password or "live-" + secrets.token_urlsafe(8)
        self.base = f"http://127.0.0.1:{self.port}/api/v1"
        self.demo_user = demo_user
        self.timeout = timeout
        self.extra_env = dict(extra_env or {})
        self.proc = None
        self.started_at = None
        self.healthy_s = None
        self.login_s = None
        self.headers: dict = {}

    def __enter__(self) -> "LiveSigma":
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGMA_") and k != "RAY_ADDRESS"}
        env.update(SIGMA_HOME=str(self.home), SIGMA_DEMO_PASSWORD=self.password,
                   SIGMA_ADMIN_PASSWORD=self.password + "-admin", SIGMA_DASHBOARD_PORT=str(free_port()),
                   RAY_USAGE_STATS_ENABLED="0", RAY_TMPDIR=str(self.ray_tmp))
        if os.environ.get("SIGMA_INGRESS"):  # a benchmark run with SIGMA_INGRESS=haproxy measures that ingress
            env["SIGMA_INGRESS"] = os.environ["SIGMA_INGRESS"]
        env.update(self.extra_env)
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "serve.log", "a")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "sigma"), "serve", "--demo", "--port",
                                      str(self.port)], cwd=ROOT, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.http = httpx.Client(base_url=self.base, timeout=120)
        try:
            self._wait(lambda: self.http.get("/healthz", timeout=5).status_code == 200, "healthy")
            self.healthy_s = time.perf_counter() - self.started_at
            self.headers = self.login(self.demo_user)
            self.login_s = time.perf_counter() - self.started_at
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def login(self, username: str) -> dict:
        def token():
            r = self.http.post("/auth/token", json={"username": username, "password": self.password}, timeout=5)
            return r.json()["access_token"] if r.status_code == 200 else None

        return {"Authorization": f"Bearer {self._wait(token, 'login of ' + username)}"}

    def _wait(self, fn, what: str):
        deadline = time.monotonic() + self.timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sigma serve exited ({self.proc.returncode}); see {self.home / 'serve.log'}")
            try:
                out = fn()
                if out:
                    return out
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.2)
        raise RuntimeError(f"{what} not reached in {self.timeout} s (last: {last})")

    def kill(self) -> None:
        """SIGKILL the service and every process of its Ray (no clean shutdown of anything)."""
        if self.proc is not None and self.proc.poll() is None:
            import psutil

            # every process the service started, at once: Ray's workers sit in process groups
            # of their own and rename themselves (``ray::...``), so neither the group kill nor
            # the temp-dir match below reaches them, and a worker outliving its raylet for a
            # second or two finishes its task and writes its result: no power cut at all
            try:
                victims = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                victims = []
            for victim in victims:
                try:
                    victim.kill()
                except psutil.NoSuchProcess:
                    pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        # Ray's daemons may sit in another process group; they all name our temp dir.
        subprocess.run(["pkill", "-9", "-f", str(self.ray_tmp)], check=False)
        time.sleep(0.5)
        self.http.close()

    def __exit__(self, *exc) -> None:
        self.http.close()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-9", "-f", str(self.ray_tmp)], check=False)
