"""Scale-out figures (issue 17), in two parts.

1. Leaderboard writes per second on PostgreSQL under 1-8 concurrent chunk writers, through the
   real ``store_chunk`` transaction (chunk marker, one ``LeaderboardEntry`` per configuration,
   the sweep's progress and best), each writer its own process, as Tune trials on different
   nodes are. The peer in the same run: the same rows by a plain SQLAlchemy multi-row INSERT,
   one writer (``leaderboard_plain_insert_peer``).
2. Sweep throughput on one node vs three nodes with the same total CPUs (target: three nodes
   >= 90 % of one). Two real Ray clusters on loopback (``tests/raycluster.py``), one after the
   other, each with Sigma deployed by ``sigma serve --address`` (catalog on a fresh PostgreSQL
   schema, store on S3 on moto, ``SIGMA_TRIAL_RESOURCES='{"sigma_trials": 1}'``, as the
   3-node test's fixture): one head of 3 CPUs offering ``sigma_trials: 2``; then a head of 1 CPU
   (API, job driver, no trials) and two workers of 1 CPU with ``sigma_trials: 1`` each. Over
   HTTP on each: a user, a swingsigma_default AAPL model, its matrix (2015-2024, daily
   bars), a warm-up sweep (32 configurations, 11 chunks), then for each of two grids
   (``SWEEPS``: 8,000 configurations in 32 chunks of 250, mostly fixed costs; 100,000 in 32
   chunks of 3,125, mostly per-configuration work) ``--runs`` timed sweeps, and one of the same
   grid in coarser chunks (the difference gives the fixed cost of a chunk). Throughput is
   configurations over the client's wall time from the POST to the GET that says completed
   (``cluster_sweep_configs_per_s``, one line per sweep; ``cluster_sweep_throughput``, best of
   the runs; ``cluster_sweep_ratio_3_nodes_to_1``, best over best, and the medians' ratio);
   the job result gives the nodes and each one's configurations. Both clusters run in the same
   invocation so their ratio survives a noisy machine. A cluster started in 5-17 s on the
   2-core machine (minutes when it is loaded); the whole part took 5-6 minutes.

    .venv/bin/python benchmarks/scale.py              # both parts; SIGMA_TEST_PG overrides the database URL
    .venv/bin/python benchmarks/scale.py --writes     # part 1 only
    mkdir -p /tmp/ray_bench && RAY_TMPDIR=/tmp/ray_bench flock /tmp/sigma-ray.lock \
        .venv/bin/python benchmarks/scale.py --cluster [--runs 3]   # part 2 only

Part 2 stops only the processes it started (never ``ray stop``) and drops its schemas. On a
shared machine run it under the lock the other Ray-starting runs take, as above.
Run it from a checkout nobody edits meanwhile (e.g. ``git archive HEAD`` unpacked elsewhere,
with a NUMBA_CACHE_DIR of its own: numba caches kernels by source path):
a trial process started after a source file changed has another code version than the
service and refuses the work (CODE_VERSION_MISMATCH), which fails the sweep.

JSON lines (benchmarks/_common.emit). In part 1 the fixed cost per chunk (one transaction) and
the cost per row are fitted from two chunk sizes, for docs/scaling.md's model.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import cpu_model, emit  # noqa: E402

PG = os.environ.get("SIGMA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _rows(meta, start: int, n: int) -> list[dict]:
    from cluster.catalog.models import new_id, utcnow

    now = utcnow()
    metrics = {"sharpe": 1.1, "cum_ret": 0.2, "max_drawdown": -0.1, "win_rate": 0.55, "trades": 40}
    return [{"id": new_id("res"), "user_id": meta.user_id, "model_pk": meta.model_pk, "model_id": meta.model_id,
             "pack_id": meta.pack_id, "backtest_id": None, "sweep_id": meta.sweep_id, "config_index": start + j,
             "tag": None, "risk_profile": meta.risk_profile, "config": {"threshold": 0.5 + j * 1e-6},
             "metrics": metrics, "gate_pass": True, "gate_reasons": [], "score": 1.0 + j * 1e-6, "sharpe": 1.1,
             "deflated_sharpe": 0.9, "cum_ret": 0.2, "max_drawdown": -0.1, "win_rate": 0.55, "trades": 40,
             "created_at": now} for j in range(n)]


def _writer(url: str, meta, chunks: list[int], chunk_size: int, start_at: float, out) -> None:
    from cluster.catalog import Catalog
    from services.lab.sweeps import store_chunk

    catalog = Catalog(url)
    batches = [(c, _rows(meta, c * chunk_size, chunk_size)) for c in chunks]
    while time.time() < start_at:
        time.sleep(0.005)
    t0 = time.perf_counter()
    for c, rows in batches:
        assert store_chunk(catalog, meta, c, rows, 1.0)
    out.put(time.perf_counter() - t0)
    catalog.dispose()


def _setup(url: str, total: int):
    from cluster.catalog import Catalog, Sweep, upgrade_schema
    from services.lab.models import create_model
    from services.lab.sweeps import SweepMeta
    from serve_app.users import create_user

    catalog = Catalog(url)
    upgrade_schema(catalog)
    user = create_user(catalog, f"bench_{secrets.token_hex(3)}", "bench-password-1", tier="pro")
    model = create_model(catalog, user.id, "swingsigma_default", config={"ticker": "AAPL"})
    with catalog.session() as s:
        row = Sweep(user_id=user.id, model_pk=model.id, risk_profile="Balanced", tag=None, grid={"spec": {}},
                    total_configs=total, done_configs=0, status="running")
        s.add(row)
        s.flush()
        sweep_id = row.id
    meta = SweepMeta(sweep_id=sweep_id, user_id=user.id, model_pk=model.id, model_id=model.model_id,
                     pack_id=model.pack_id, tag=None, risk_profile="Balanced", n_trials=total, splits=5, embargo=None,
                     settings_json="{}")
    return catalog, meta


def run(url: str, writers: int, chunks_per_writer: int, chunk_size: int) -> dict:
    from sqlalchemy import func, select

    from cluster.catalog import LeaderboardEntry

    total = writers * chunks_per_writer * chunk_size
    catalog, meta = _setup(url, total)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 3.0 + writers  # every writer has built its rows and connected
    procs = [ctx.Process(target=_writer, args=(url, meta, list(range(w, writers * chunks_per_writer, writers)),
                                                chunk_size, start_at, out)) for w in range(writers)]
    for p in procs:
        p.start()
    seconds = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    with catalog.session() as s:
        stored = s.scalar(select(func.count()).select_from(LeaderboardEntry).where(LeaderboardEntry.sweep_id == meta.sweep_id))
    catalog.dispose()
    assert stored == total, (stored, total)
    wall = max(seconds)
    return {"rows": total, "seconds": wall, "rows_per_s": total / wall, "chunks_per_s": writers * chunks_per_writer / wall}


def _insert_peer(url: str, rows_n: int, chunk_size: int) -> float:
    """The peer in the same run: the same rows by a plain SQLAlchemy multi-row INSERT (what
    ``store_chunk`` did before COPY), one transaction per chunk, no progress or best; rows/s."""
    from sqlalchemy import insert

    from cluster.catalog import LeaderboardEntry

    catalog, meta = _setup(url, rows_n)
    batches = [_rows(meta, c * chunk_size, chunk_size) for c in range(rows_n // chunk_size)]
    t0 = time.perf_counter()
    for rows in batches:
        with catalog.session() as s:
            s.execute(insert(LeaderboardEntry), rows)
    seconds = time.perf_counter() - t0
    catalog.dispose()
    return rows_n / seconds


def writes_main() -> None:
    import psycopg

    schema = f"sigma_bench_{secrets.token_hex(4)}"
    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{PG}?options=-csearch_path%3D{schema}"
    try:
        cpu = cpu_model()
        for chunk_size in (10_000, 1000):
            peer = _insert_peer(url, 4 * chunk_size, chunk_size)
            emit("scale", "leaderboard_plain_insert_peer", round(peer), "rows/s", 4 * chunk_size, writers=1,
                 chunk_size=chunk_size, cpu=cpu, cores=os.cpu_count())
        for chunk_size in (10_000, 1000, 100):
            for writers in (1, 2, 4, 8):
                r = run(url, writers, chunks_per_writer=max(2, (4 if chunk_size >= 10_000 else 16) // writers),
                        chunk_size=chunk_size)
                emit("scale", "leaderboard_writes_postgresql", round(r["rows_per_s"]), "rows/s", r["rows"],
                     writers=writers, chunk_size=chunk_size, chunks_per_s=round(r["chunks_per_s"], 1),
                     seconds=round(r["seconds"], 3), cpu=cpu, cores=os.cpu_count())
    finally:
        with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres", autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


# ------------------------------------------------------------ part 2: one node vs three nodes

V1 = "/api/v1"
BENCH_PASSWORD = "bench-password-1"
_EXITS = [round(0.3 + 0.02 * i, 2) for i in range(10)]
_FEES = [0, 1, 2, 3, 5, 7, 10, 15, 20, 30]
# the timed grids: (name, sweep, chunk size, coarse chunk size). Each runs --runs times in chunks
# of the first size (32 chunks: Tune trials, so both workers get work) and once in the coarse
# size; the difference gives the fixed cost of a chunk.
SWEEPS = [
    # 40 entry x 10 exit thresholds x 10 fee levels x long/short-or-long-only = 8,000
    # configurations: a sweep of a few seconds, mostly fixed costs (Tune's start, trial actors)
    ("8k", {"thresholds": [round(0.5 + 0.01 * i, 2) for i in range(40)], "exit_thresholds": _EXITS,
            "fees_bps": _FEES, "long_only": [False, True]}, 250, 2000),
    # the same x 10 slippage levels (50 entry thresholds) = 100,000 configurations: the
    # per-configuration work (kernel, rows, COPY into PostgreSQL) dominates
    ("100k", {"thresholds": [round(0.5 + 0.01 * i, 2) for i in range(50)], "exit_thresholds": _EXITS,
              "fees_bps": _FEES, "slippage_bps": [0, 1, 2, 3, 4, 5, 6, 8, 10, 15], "long_only": [False, True]},
     3125, 10_000),
]
# the warm-up: 32 configurations in 11 chunks with every grid dimension of SWEEPS (exits, fee
# levels, slippage, long-only), so that every node's first trials pay imports and any kernel
# compilation before the timed sweeps
WARM_SWEEP = {"thresholds": [0.5, 0.6], "exit_thresholds": [0.3, 0.4], "fees_bps": [0, 5], "slippage_bps": [0, 2],
              "long_only": [False, True]}
LAYOUTS = {
    # one node holding every CPU; trials may run only where "sigma_trials" is offered
    1: {"head": (3, {"node_head": 1, "sigma_trials": 2}), "workers": {}},
    # the same 3 CPUs over three nodes: the head (API, job driver) and two trial workers
    3: {"head": (1, {"node_head": 1}), "workers": {"a": (1, {"node_a": 1, "sigma_trials": 1}),
                                                  "b": (1, {"node_b": 1, "sigma_trials": 1})}},
}


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class _Sigma:
    """A Ray cluster on loopback (``tests/raycluster.py``) in ``layout`` with Sigma deployed by
    ``sigma serve --address``, the catalog on a fresh PostgreSQL schema and the store on S3
    (moto), as ``tests/serve_app/test_multinode.py``'s ``three_nodes`` fixture does."""

    def __init__(self, n_nodes: int, moto_endpoint: str):
        self.n_nodes, self.moto_endpoint = n_nodes, moto_endpoint
        self.schema = self.cluster = self.serve_proc = None
        self.workdir = Path(tempfile.mkdtemp(prefix=f"sigma_scale_{n_nodes}n_"))

    def __enter__(self) -> "_Sigma":
        print(f"scale: {self.n_nodes}-node cluster, logs in {self.workdir}", file=sys.stderr, flush=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self) -> None:
        from tests.conftest import _make_pg_schema, free_port, s3_client
        from tests.raycluster import BIN, LocalCluster, sigma_env

        self.schema, self.db_url = _make_pg_schema()
        bucket = f"sigma-{secrets.token_hex(4)}"
        s3_client(self.moto_endpoint).create_bucket(Bucket=bucket)
        env = sigma_env(self.workdir / "home", SIGMA_DATABASE_URL=self.db_url, SIGMA_STORAGE_URL=f"s3://{bucket}/sigma",
                        SIGMA_JWT_SECRET=secrets.token_urlsafe(32), SIGMA_INGRESS_NUM_CPUS="0.25",
                        SIGMA_JOB_NUM_CPUS="0.5", SIGMA_TRIAL_RESOURCES='{"sigma_trials": 1}',
                        AWS_ENDPOINT_URL_S3=self.moto_endpoint, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
                        AWS_DEFAULT_REGION="us-east-1")
        layout = LAYOUTS[self.n_nodes]
        t0 = time.monotonic()
        self.cluster = LocalCluster(env, self.workdir)
        self.cluster.start_head(num_cpus=layout["head"][0], resources=layout["head"][1])
        for name, (cpus, resources) in layout["workers"].items():
            self.cluster.add_worker(name, num_cpus=cpus, resources=resources)
        self.cluster.wait_nodes(self.n_nodes, timeout=300)
        self.cluster_start_s = time.monotonic() - t0
        t0 = time.monotonic()
        serve_log = self.workdir / "serve.log"
        # chosen now, not before the Ray nodes started: one of their processes took a port
        # chosen earlier ("Failed to bind to address" from Serve's proxy, seen)
        port = free_port()
        with open(serve_log, "w") as log:
            self.serve_proc = subprocess.Popen([str(BIN / "sigma"), "serve", "--address", self.cluster.address,
                                                "--port", str(port), "--no-dashboard"], env=env, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 400
        while "Press Ctrl-C" not in serve_log.read_text():
            if self.serve_proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("sigma serve did not start: " + serve_log.read_text()[-3000:])
            time.sleep(1)
        self.serve_start_s = time.monotonic() - t0
        self.url = f"http://127.0.0.1:{port}"
        self.names = {node_id: next((k.removeprefix("node_") for k in resources if k.startswith("node_")), node_id)
                      for node_id, resources in self.cluster.nodes().items()}

    def stop(self) -> None:
        """Sigma's process group, then exactly the Ray processes started here (never ``ray
        stop``), the schema; each step runs even if one before it failed."""
        from tests.conftest import _drop_pg_schema

        try:
            if self.serve_proc is not None and self.serve_proc.poll() is None:
                os.killpg(self.serve_proc.pid, signal.SIGKILL)  # its cluster goes next
                self.serve_proc.wait(timeout=60)
        finally:
            try:
                if self.cluster is not None:
                    self.cluster.stop()
                    shutil.rmtree(self.cluster.temp_dir, ignore_errors=True)
            finally:
                if self.schema is not None:
                    _drop_pg_schema(self.schema)
                    self.schema = None


def _sweep(http, h: dict, mid: str, spec: dict, chunk_size: int, timeout: float = 1800) -> dict:
    """POST a sweep, poll it until final and its job's result is recorded; client wall seconds
    from the POST to the GET that said completed."""
    t0 = time.perf_counter()
    resp = http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": spec, "chunk_size": chunk_size}, headers=h)
    if resp.status_code != 202:
        raise RuntimeError(f"POST /backtest_sweep: {resp.status_code} {resp.text[:500]}")
    sweep_id = resp.json()["sweep_id"]
    deadline = time.monotonic() + timeout
    while (body := http.get(f"{V1}/backtest_sweep/{sweep_id}", headers=h).json())["status"] not in (
            "completed", "failed", "cancelled"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"sweep {sweep_id} not final after {timeout} s: {body}")
        time.sleep(0.25)
    wall = time.perf_counter() - t0
    if body["status"] != "completed":
        raise RuntimeError(f"sweep {sweep_id}: {body['status']}: {body.get('error')}")
    # the job records its result just after the sweep turns final
    while (job := http.get(f"{V1}/jobs/{body['job_id']}", headers=h).json()["data"])["status"] not in (
            "completed", "failed", "cancelled"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {body['job_id']} not final: {job}")
        time.sleep(0.2)
    result = http.get(f"{V1}/jobs/{body['job_id']}/result", headers=h).json()["data"]["result"]
    return {"wall_s": wall, "configs": body["done_configs"], "total": body["total_configs"], "result": result}


def _sweep_record(run: dict, names: dict) -> dict:
    res = run["result"]
    timings = res.get("timings") or {}
    trials = sorted(t for t in timings.get("trials_s") or [] if t is not None)
    waited = [t for t in timings.get("trials_waited_s") or [] if t is not None]
    return {"configs": run["configs"], "chunks": res.get("chunks"), "seconds": round(run["wall_s"], 3),
            "driver_seconds": res.get("seconds"), "tune_s": timings.get("tune_s"),
            "max_concurrent_trials": res.get("max_concurrent_trials"),
            "configs_per_node": {names.get(n, n): info["configs"] for n, info in (res.get("nodes") or {}).items()},
            "chunks_per_node": {names.get(n, n): len(info["chunks"]) for n, info in (res.get("nodes") or {}).items()},
            "trial_s_median": round(statistics.median(trials), 3) if trials else None,
            "trial_s_sum": round(sum(trials), 3), "trial_waited_s_sum": round(sum(waited), 3),
            "prepare_s": timings.get("prepare_s"), "finalize_s": timings.get("finalize_s"),
            "model_inputs_s": timings.get("model_inputs_s")}


def cluster_run(n_nodes: int, moto_endpoint: str, runs: int, cpu: str) -> dict:
    """Start the ``n_nodes`` layout, warm it with a small sweep, then time each of SWEEPS
    ``runs`` times in its chunk size and once in its coarse chunk size; one JSON line per sweep.
    Returns {grid name: {"fine": [records], "coarse": record}}."""
    import httpx

    from cluster.catalog import Catalog
    from serve_app.users import create_user

    got: dict[str, dict] = {}
    with _Sigma(n_nodes, moto_endpoint) as sigma:
        emit("scale", "cluster_start", round(sigma.cluster_start_s, 1), "s", n_nodes, nodes=n_nodes,
             serve_start_s=round(sigma.serve_start_s, 1), cpu=cpu)
        catalog = Catalog(sigma.db_url)
        # enterprise: more than pro's 10 sweeps a day; trials at once stay one per trial node
        create_user(catalog, "bench_scale", BENCH_PASSWORD, tier="enterprise", update=True)
        catalog.dispose()
        http = httpx.Client(base_url=sigma.url, timeout=300)
        try:
            token = http.post(f"{V1}/auth/token", json={"username": "bench_scale", "password": BENCH_PASSWORD})
            h = {"Authorization": f"Bearer {token.json()['access_token']}"}
            model = http.post(f"{V1}/models", json={"template_id": "swingsigma_default", "config": {"ticker": "AAPL"}},
                              headers=h)
            if model.status_code != 201:
                raise RuntimeError(f"POST /models: {model.status_code} {model.text[:500]}")
            mid = model.json()["model_id"]
            built = http.post(f"{V1}/build_matrix", json={"model_id": mid, "start_date": "2015-01-01",
                                                          "end_date": "2024-12-31"}, headers=h)
            if built.status_code != 200:
                raise RuntimeError(f"POST /build_matrix: {built.status_code} {built.text[:500]}")
            warm = _sweep_record(_sweep(http, h, mid, WARM_SWEEP, 3), sigma.names)
            emit("scale", "cluster_warmup_sweep", warm["seconds"], "s", warm["configs"], nodes=n_nodes, **warm, cpu=cpu)
            for name, spec, chunk, coarse_chunk in SWEEPS:
                got[name] = {"fine": []}
                for run, size in [(i + 1, chunk) for i in range(runs)] + [("coarse", coarse_chunk)]:
                    rec = _sweep_record(_sweep(http, h, mid, spec, size), sigma.names)
                    if run == "coarse":
                        got[name]["coarse"] = rec
                    else:
                        got[name]["fine"].append(rec)
                    emit("scale", "cluster_sweep_configs_per_s", round(rec["configs"] / rec["seconds"], 1),
                         "configs/s", rec["configs"], nodes=n_nodes, grid=name, run=run, chunk_size=size, **rec,
                         cpu=cpu, loadavg=_loadavg())
        finally:
            http.close()
    shutil.rmtree(sigma.workdir, ignore_errors=True)  # kept (logs, home) when the run failed
    return got


def cluster_main(runs: int) -> None:
    """One node, then three nodes of the same total CPUs, in the same run; the ratio of their
    sweep throughputs (issue 17's target: >= 0.9)."""
    from moto.server import ThreadedMotoServer

    from tests.conftest import free_port

    cpu = cpu_model()
    started = time.monotonic()
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    try:
        got = {n: cluster_run(n, f"http://127.0.0.1:{moto_port}", runs, cpu) for n in (1, 3)}
    finally:
        moto.stop()
    for name, *_ in SWEEPS:
        rate = {n: [r["configs"] / r["seconds"] for r in got[n][name]["fine"]] for n in got}
        for n in (1, 3):
            fine, coarse = got[n][name]["fine"], got[n][name]["coarse"]
            # the fixed cost of a chunk, from the same grid in two chunk sizes (best fine run):
            # wall seconds per extra chunk, and that times the trials at once (one trial's seconds)
            per_chunk = (min(r["seconds"] for r in fine) - coarse["seconds"]) / (fine[0]["chunks"] - coarse["chunks"])
            emit("scale", "cluster_sweep_throughput", round(max(rate[n]), 1), "configs/s", fine[0]["configs"],
                 nodes=n, grid=name, best_of=len(fine), median=round(statistics.median(rate[n]), 1),
                 range=[round(min(rate[n]), 1), round(max(rate[n]), 1)], seconds=[r["seconds"] for r in fine],
                 configs_per_node=[r["configs_per_node"] for r in fine],
                 max_concurrent_trials=fine[0]["max_concurrent_trials"], chunks=fine[0]["chunks"],
                 coarse_chunks=coarse["chunks"], coarse_seconds=coarse["seconds"], chunk_wall_s=round(per_chunk, 3),
                 chunk_trial_s=round(per_chunk * fine[0]["max_concurrent_trials"], 3), cpu=cpu, loadavg=_loadavg())
        ratio = max(rate[3]) / max(rate[1])
        emit("scale", "cluster_sweep_ratio_3_nodes_to_1", round(ratio, 3), "ratio", got[3][name]["fine"][0]["configs"],
             grid=name, target=0.9, met=ratio >= 0.9,
             median_ratio=round(statistics.median(rate[3]) / statistics.median(rate[1]), 3),
             one_node_configs_per_s=round(max(rate[1]), 1), three_nodes_configs_per_s=round(max(rate[3]), 1),
             cores=os.cpu_count(), cpu=cpu, loadavg=_loadavg(), seconds=round(time.monotonic() - started, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", action="store_true", help="only part 1: leaderboard writes on PostgreSQL")
    parser.add_argument("--cluster", action="store_true", help="only part 2: sweep throughput, 1 node vs 3 nodes")
    parser.add_argument("--runs", type=int, default=3, help="timed large sweeps per cluster (part 2)")
    args = parser.parse_args()
    both = args.writes == args.cluster
    if args.writes or both:
        writes_main()
    if args.cluster or both:
        cluster_main(args.runs)


if __name__ == "__main__":
    main()
