"""What every benchmark script shares: the JSON line format and best-of timing."""

from __future__ import annotations

import json
import os
import time


def emit(benchmark: str, metric: str, value, unit: str, n: int, **extra) -> None:
    """One JSON line: benchmark, metric, value, unit, n, the extras, the 1-minute load and threads."""
    record = {"benchmark": benchmark, "metric": metric, "value": value, "unit": unit, "n": n}
    record.update(extra)
    record.setdefault("loadavg_1m", round(os.getloadavg()[0], 2))
    try:
        import numba

        record.setdefault("threads", numba.get_num_threads())
    except ImportError:
        pass
    print(json.dumps(record), flush=True)


def timings(fn, repeats: int = 5) -> tuple[list[float], object]:
    """Seconds of each of ``repeats`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def best_of(fn, repeats: int = 5) -> float:
    """The fastest of ``repeats`` timed calls, in seconds (the least disturbed by other load)."""
    return min(timings(fn, repeats)[0])


# ----------------------------------------------------------------- the user's path: a live Sigma

def cpu_model() -> str:
    """The CPU's model name (every figure names the machine it was measured on)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveSigma:
    """``sigma serve --demo`` in its own process on a free port with a fresh ``SIGMA_HOME``,
    exactly as ``make run`` starts it; ``with LiveSigma() as sigma:`` waits until the demo user
    can log in and stops the service (SIGINT) on exit."""

    def __init__(self, home=None, demo_user: str = "demo_hnw", timeout: float = 300):
        import secrets
        import tempfile
        from pathlib import Path

        self.root = Path(__file__).resolve().parent.parent
        self.home = Path(home) if home else Path(tempfile.mkdtemp(prefix="sigma-bench-"))
        self.port = free_port()
        self.password = "bench-" + secrets.token_urlsafe(8)
        self.base = f"http://127.0.0.1:{self.port}/api/v1"
        self.demo_user = demo_user
        self.timeout = timeout
        self.proc = None
        self.started_at = None
        self.healthy_s = None
        self.login_s = None

    def __enter__(self) -> "LiveSigma":
        import subprocess

        import httpx

        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGMA_")}
        env.update(SIGMA_HOME=str(self.home), SIGMA_DEMO_PASSWORD=self.password,
                   SIGMA_ADMIN_PASSWORD=self.password + "-admin", RAY_USAGE_STATS_ENABLED="0")
        log = open(self.home / "serve.log", "w")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen([str(self.root / ".venv" / "bin" / "sigma"), "serve", "--demo", "--port",
                                      str(self.port)], cwd=self.root, env=env, stdout=log,
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
        import httpx

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

    def __exit__(self, *exc) -> None:
        import signal
        import subprocess

        self.http.close()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def latencies_ms(http, path: str, headers: dict, n: int) -> list[float]:
    """Wall milliseconds of ``n`` sequential GETs of ``path`` (each must answer 200)."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = http.get(path, headers=headers)
        out.append((time.perf_counter() - t0) * 1000)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {path}: {resp.status_code} {resp.text[:200]}")
    return out


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]
