"""A real Ray cluster on loopback for tests: ``ray start --head --block`` and ``ray start
--address --block`` as separate processes (each with its own ``--num-cpus`` and custom
resources), torn down by terminating exactly those processes (``--block`` makes ``ray start``
stop its raylet, GCS and workers when it gets SIGTERM). Never ``ray stop``: that would stop
every Ray on the machine, other sessions' included."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def sigma_env(home: Path, **extra) -> dict:
    """This process's environment without SIGMA_* settings, plus ``home`` and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGMA_")}
    env.setdefault("RAY_TMPDIR", tempfile.gettempdir())
    env.setdefault("NUMBA_CACHE_DIR", str(Path(tempfile.gettempdir()) / "sigma_numba_cache"))
    # Ray 2.60 clusters started with `ray start` require a token: one per test cluster, handed to
    # every process through the environment (as cluster.yaml's env file does)
    env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)})
    env.update({"SIGMA_HOME": str(home), "PYTHONPATH": str(REPO), **extra})
    return env


class LocalCluster:
    def __init__(self, env: dict, logdir: Path):
        self.env = env
        self.logdir = logdir
        self.gcs_port = free_port()
        self.metrics_port = free_port()
        self.address = f"127.0.0.1:{self.gcs_port}"
        self.head = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rt_", dir=env["RAY_TMPDIR"]))
        self.started_at = time.time()

    def _popen(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.logdir / f"ray-{name}.log", "w")
        return subprocess.Popen([str(BIN / "ray"), "start", "--block", *args], env={**self.env, **(env or {})},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start_head(self, num_cpus: float, resources: dict | None = None) -> None:
        """Start the head and wait for it; started again (new ports) if its raylet misses Ray's
        fixed 30 s registration window on a loaded machine."""
        for attempt in range(4):
            if attempt:
                self.gcs_port, self.metrics_port = free_port(), free_port()
                self.address = f"127.0.0.1:{self.gcs_port}"
            self.head = self._popen(f"head-{attempt}" if attempt else "head", [
                "--head", f"--port={self.gcs_port}", f"--num-cpus={num_cpus}",
                f"--resources={json.dumps(resources or {})}", "--include-dashboard=false",
                f"--dashboard-port={free_port()}",
                f"--metrics-export-port={self.metrics_port}", f"--temp-dir={self.temp_dir}",
                f"--ray-client-server-port={free_port()}", *self._agent_ports(),
                '--system-config={"metrics_report_interval_ms": 1000}',
            ])
            deadline = time.monotonic() + 240
            while self.head.poll() is None and time.monotonic() < deadline:
                if self.alive_nodes() >= 1:
                    return
                time.sleep(1)
            if self.head.poll() is None:
                break
        raise AssertionError("the Ray head did not start: " + (self.logdir / "ray-head.log").read_text()[-2000:])

    def add_worker(self, name: str, num_cpus: float, resources: dict | None = None, env: dict | None = None) -> None:
        """Start a worker node and wait until it has joined (``env``: variables of its own, e.g.
        another checkout's ``PYTHONPATH``). On a loaded machine a raylet can miss Ray's fixed
        30 s registration window and ``ray start`` exits: it is started again."""
        # joined = a node alive that was not before (a count would miss it when a node killed
        # earlier is declared dead meanwhile: seen in CI)
        before = set(self.alive_node_ids())
        for attempt in range(4):
            self._start_worker(name, num_cpus, resources, attempt, env)
            deadline = time.monotonic() + 240
            while self.workers[name].poll() is None and time.monotonic() < deadline:
                if set(self.alive_node_ids()) - before:
                    return
                time.sleep(1)
            if self.workers[name].poll() is None:
                break
        raise AssertionError(f"worker {name} did not join: " + (self.logdir / f"ray-{name}.log").read_text()[-2000:])

    def _start_worker(self, name: str, num_cpus: float, resources: dict | None, attempt: int,
                      env: dict | None = None) -> None:
        self.workers[name] = self._popen(f"{name}-{attempt}" if attempt else name, [
            f"--address={self.address}", f"--num-cpus={num_cpus}",
            f"--resources={json.dumps(resources or {})}", f"--metrics-export-port={free_port()}",
            *self._agent_ports(),
        ], env)

    @staticmethod
    def _agent_ports() -> list[str]:
        # every node of every cluster on this machine needs its own (defaults are fixed numbers)
        return [f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
                f"--runtime-env-agent-port={free_port()}"]

    def alive_nodes(self) -> int:
        return len(self.alive_node_ids())

    def alive_node_ids(self) -> list[str]:
        """The alive nodes' ids (none when the cluster cannot be asked just now)."""
        out = subprocess.run([str(BIN / "python"), "-c", (
            "import json, ray; ray.init(address=%r, log_to_driver=False); "
            "print('IDS=' + json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive']]))") % self.address],
            env=self.env, capture_output=True, text=True, timeout=120)
        found = [line for line in out.stdout.splitlines() if line.startswith("IDS=")]
        return json.loads(found[-1].removeprefix("IDS=")) if out.returncode == 0 and found else []

    def nodes(self) -> dict[str, dict]:
        """Alive node id -> its resources (custom resources name the node)."""
        out = subprocess.run([str(BIN / "python"), "-c", (
            "import json, ray; ray.init(address=%r, log_to_driver=False); "
            "print('NODES=' + json.dumps({n['NodeID']: n['Resources'] for n in ray.nodes() if n['Alive']}))")
            % self.address], env=self.env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        found = [line for line in out.stdout.splitlines() if line.startswith("NODES=")]
        return json.loads(found[-1].removeprefix("NODES="))

    def raylet_pid(self, name: str) -> int:
        """The raylet process of worker ``name`` (a child of its ``ray start --block``)."""
        import psutil

        for child in psutil.Process(self.workers[name].pid).children(recursive=True):
            if child.name() == "raylet":
                return child.pid
        raise AssertionError(f"no raylet under worker {name}")

    def nodes_running(self, mark: str) -> set[str]:
        """The nodes ("head" or a worker's name) with a process whose command line holds
        ``mark`` (an actor's process is titled ``ray::ClassName``)."""
        import psutil

        found = set()
        for name, proc in [("head", self.head), *self.workers.items()]:
            if proc is None or proc.poll() is not None:
                continue
            for child in psutil.Process(proc.pid).children(recursive=True):
                try:
                    if mark in " ".join(child.cmdline()):
                        found.add(name)
                except psutil.Error:
                    continue
        return found

    def wait_nodes(self, n: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.alive_nodes() < n:
            assert self.head.poll() is None, (self.logdir / "ray-head.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"{n} Ray nodes did not come up"
            time.sleep(1)

    def metrics_text(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text

    def stop(self) -> None:
        for proc in [*self.workers.values(), self.head]:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers.values(), self.head]:
            if proc is None:
                continue
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
