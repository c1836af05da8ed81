"""Sigma on a real 3-node Ray cluster on loopback: a head and two workers, each its own
``ray start`` process with its own CPUs and custom resource, Sigma deployed with
``sigma serve --address``, the catalog on PostgreSQL and the store on S3 (moto), as a cluster
requires. A sweep's trials run on both workers (the job result names the nodes and the
configurations each evaluated); SIGKILL of one worker's raylet mid-sweep loses nothing: the
sweep completes on the rest with every configuration stored exactly once and the same
leaderboard as the run without the fault."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import TEST_PASSWORD, _drop_pg_schema, _make_pg_schema, free_port, s3_client
from tests.raycluster import BIN, LocalCluster, sigma_env
from tests.serve_app.test_api_sweeps import SPEC_SWEEP

V1 = "/api/v1"


@pytest.fixture()
def three_nodes(tmp_path, moto_endpoint):
    schema, db_url = _make_pg_schema()
    bucket = f"sigma-{secrets.token_hex(4)}"
    s3_client(moto_endpoint).create_bucket(Bucket=bucket)
    env = sigma_env(tmp_path / "home", SIGMA_DATABASE_URL=db_url, SIGMA_STORAGE_URL=f"s3://{bucket}/sigma",
                    SIGMA_JWT_SECRET=secrets.token_urlsafe(32), SIGMA_INGRESS_NUM_CPUS="0.25",
                    SIGMA_JOB_NUM_CPUS="0.5", SIGMA_TRIAL_RESOURCES='{"sigma_trials": 1}', AWS_ENDPOINT_URL_S3=moto_endpoint, AWS_ACCESS_KEY_ID="x",
                    AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    cluster = LocalCluster(env, tmp_path)
    serve_proc = None
    try:
        # trials ask for one "sigma_trials" (SIGMA_TRIAL_RESOURCES), which only the workers offer:
        # one trial at a time on each worker, none on the head. Workers of 2 CPUs: after losing
        # one, the other must hold what moves to it (the restarted sweep driver,
        # its inputs task) beside a trial; with 1 CPU the trial waited for ever (seen)
        cluster.start_head(num_cpus=1, resources={"node_head": 1})
        cluster.add_worker("a", num_cpus=2, resources={"node_a": 1, "sigma_trials": 1})
        cluster.add_worker("b", num_cpus=2, resources={"node_b": 1, "sigma_trials": 1})
        cluster.wait_nodes(3, timeout=300)
        # the port is chosen now, not before the nodes started: a Ray process could have taken it
        # by then ("Failed to bind to address", seen in benchmarks/scale.py)
        port = free_port()
        log = open(tmp_path / "serve.log", "w")
        # run from a folder without Sigma's code: Ray puts the driver's working directory on every
        # worker's path, which would hide the other checkout that step 3 starts a node from
        serve_proc = subprocess.Popen([str(BIN / "sigma"), "serve", "--address", cluster.address, "--port", str(port),
                                       "--no-dashboard"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True, cwd=tmp_path)
        deadline = time.monotonic() + 400
        while "Press Ctrl-C" not in (tmp_path / "serve.log").read_text():
            assert serve_proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(1)
        names = {}
        for node_id, resources in cluster.nodes().items():
            names[node_id] = next(k.removeprefix("node_") for k in resources if k.startswith("node_"))
        yield {"cluster": cluster, "url": f"http://127.0.0.1:{port}", "db_url": db_url, "names": names,
               "tmp_path": tmp_path}
    finally:
        if serve_proc is not None and serve_proc.poll() is None:
            os.killpg(serve_proc.pid, signal.SIGKILL)  # its cluster goes next: no graceful stop to wait for
            serve_proc.wait(timeout=60)
        cluster.stop()
        _drop_pg_schema(schema)


def _sweep(http, h, mid, timeout=600, during=None):
    resp = http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": SPEC_SWEEP, "chunk_size": 3}, headers=h)
    assert resp.status_code == 202, resp.text
    sweep_id = resp.json()["sweep_id"]
    deadline = time.monotonic() + timeout
    fired = False
    while (body := http.get(f"{V1}/backtest_sweep/{sweep_id}", headers=h).json())["status"] not in (
            "completed", "failed", "cancelled"):
        if during is not None and not fired and body["done_configs"] >= 3:
            fired = during()
        assert time.monotonic() < deadline, body
        time.sleep(0.3 if during is None or fired else 0.05)  # a warm sweep of 12 chunks takes 3 s
    job = http.get(f"{V1}/jobs/{body['job_id']}/result", headers=h).json()["data"]
    return body, job


def _leaderboard(db_url, sweep_id):
    from cluster.catalog import Catalog, LeaderboardEntry

    catalog = Catalog(db_url)
    with catalog.session() as s:
        rows = s.execute(select(LeaderboardEntry.config_index, LeaderboardEntry.sharpe, LeaderboardEntry.score,
                                LeaderboardEntry.deflated_sharpe, LeaderboardEntry.cum_ret)
                         .where(LeaderboardEntry.sweep_id == sweep_id).order_by(LeaderboardEntry.config_index)).all()
        dupes = s.scalar(select(func.count()).select_from(
            select(LeaderboardEntry.config_index).where(LeaderboardEntry.sweep_id == sweep_id)
            .group_by(LeaderboardEntry.config_index).having(func.count() > 1).subquery()))
    catalog.dispose()
    return [tuple(r) for r in rows], dupes


@pytest.mark.timeout(2400)  # four Ray processes and Sigma on a shared 2-core machine
def test_sweep_spreads_over_workers_and_survives_a_lost_node(three_nodes):
    from cluster.catalog import Catalog, Job
    from serve_app.users import create_user

    http = httpx.Client(base_url=three_nodes["url"], timeout=300)
    catalog = Catalog(three_nodes["db_url"])
    create_user(catalog, "scale_ann", TEST_PASSWORD, tier="pro", update=True)
    create_user(catalog, "scale_admin", TEST_PASSWORD, role="admin", tier="pro", update=True)
    catalog.dispose()

    def login(username):
        token = http.post(f"{V1}/auth/token", json={"username": username, "password": TEST_PASSWORD}).json()
        return {"Authorization": f"Bearer {token['access_token']}"}

    h, admin = login("scale_ann"), login("scale_admin")
    # a position, so that the daily batch below has a book to price
    assert http.post(f"{V1}/positions", json={"ticker": "AAPL", "quantity": 10, "price": 150},
                     headers=h).status_code == 201
    model = http.post(f"{V1}/models", json={"template_id": "swingsigma_default", "config": {"ticker": "AAPL"}}, headers=h)
    assert model.status_code == 201, model.text
    mid = model.json()["model_id"]
    built = http.post(f"{V1}/build_matrix", json={"model_id": mid, "start_date": "2020-01-01",
                                                  "end_date": "2023-12-31"}, headers=h)
    assert built.status_code == 200, built.text

    # 1. no fault: 12 chunks of 3 configurations, trials on several nodes
    started = time.monotonic()
    clean, job = _sweep(http, h, mid)
    clean_s = time.monotonic() - started
    assert clean["status"] == "completed" and clean["done_configs"] == 36, clean
    by_node = {three_nodes["names"][node]: info for node, info in job["result"]["nodes"].items()}
    # the trials ran on the workers, never on the head (which offers no "sigma_trials"), one
    # trial per worker at a time. Whether both workers get chunks of so short a sweep depends on
    # which worker's trial actor is up first: a warm one can finish all twelve alone (seen).
    assert by_node and set(by_node) <= {"a", "b"}, by_node
    assert job["result"]["max_concurrent_trials"] == 2
    assert sum(info["configs"] for info in by_node.values()) == 36
    ranges = sorted(r for info in by_node.values() for r in info["ranges"])
    assert ranges == [[i, i + 3] for i in range(0, 36, 3)]  # every configuration once, on one node
    reference, dupes = _leaderboard(three_nodes["db_url"], clean["sweep_id"])
    assert len(reference) == 36 and dupes == 0
    # the API replica and the service actors live on the head: losing a worker never takes the
    # API, the job queue or the rate limits with it
    cluster = three_nodes["cluster"]
    for actor in ("SigmaIngress", "ray::JobManager", "ray::RateLimiter"):
        assert cluster.nodes_running(actor) == {"head"}, actor

    # 2. once 3 configurations are stored, SIGKILL the raylet of a worker running a trial; a
    # training job and the daily batch run beside the sweep
    train = http.post(f"{V1}/train", json={"model_id": mid}, headers=h)
    assert train.status_code == 202, train.text
    batch = http.post(f"{V1}/admin/batch/run", json={}, headers=admin)
    assert batch.status_code == 202, batch.text
    others = {"train": (train.json()["job_id"], h), "batch": (batch.json()["job_id"], admin)}
    killed = {}

    def kill() -> bool:
        for name in ("a", "b"):
            if _runs_a_trial(cluster.raylet_pid(name)):
                killed.update(at=time.monotonic(), node=name)
                os.kill(cluster.raylet_pid(name), signal.SIGKILL)
                return True
        return False

    for _ in range(3):  # a warm sweep can finish between two looks: run another until one is hit
        started = time.monotonic()
        faulty, job = _sweep(http, h, mid, during=kill)
        faulty_s = time.monotonic() - started
        if killed:
            break
    assert killed, "three sweeps finished before the fault could be injected"
    assert faulty["status"] == "completed" and faulty["done_configs"] == 36, (faulty, job)
    rows, dupes = _leaderboard(three_nodes["db_url"], faulty["sweep_id"])
    assert dupes == 0 and [r[0] for r in rows] == list(range(36))
    assert rows == reference  # same metrics, scores and deflated Sharpe as without the fault
    # the API kept answering and the head's service is still there
    assert http.get(f"{V1}/healthz").status_code == 200
    # the training job and the batch complete, wherever they ran (a job on the lost node runs again)
    for what, (job_id, headers) in others.items():
        deadline = time.monotonic() + 600
        while (other := http.get(f"{V1}/jobs/{job_id}", headers=headers).json()["data"])["status"] not in (
                "completed", "failed", "cancelled"):
            assert time.monotonic() < deadline, (what, other)
            time.sleep(0.5)
        assert other["status"] == "completed", (what, other)
    catalog = Catalog(three_nodes["db_url"])
    with catalog.session() as s:
        runs = {what: s.get(Job, job_id).attempts for what, (job_id, _) in others.items()}
    catalog.dispose()
    print(f"\nscale: clean sweep {clean_s:.1f} s, with worker {killed['node']} lost {faulty_s:.1f} s "
          f"(runs of the training job and the batch: {runs}) "
          f"(recovery cost {faulty_s - clean_s:.1f} s); clean run's nodes {by_node}; faulty run's nodes "
          f"{ {three_nodes['names'][n]: i['configs'] for n, i in job['result']['nodes'].items()} }")

    # 3. a node started from another checkout of Sigma (one line differs) joins, and the last
    # good trial node goes: the sweep's trials can only go to the new node, which refuses them
    # (CODE_VERSION_MISMATCH naming itself and both code versions, in the job and in its log);
    # nothing is stored and the API answers on
    from cluster.version import code_version

    checkout, other_version = _second_checkout(three_nodes["tmp_path"] / "other-checkout")
    assert other_version != code_version()
    survivor = "b" if killed["node"] == "a" else "a"
    cluster.add_worker("c", num_cpus=2, resources={"node_c": 1, "sigma_trials": 1}, env={"PYTHONPATH": str(checkout)})
    os.kill(cluster.raylet_pid(survivor), signal.SIGKILL)
    deadline = time.monotonic() + 300
    while cluster.alive_nodes() != 2:  # the head and the new node
        assert time.monotonic() < deadline, "the killed node is still counted alive"
        time.sleep(1)
    resp = http.post(f"{V1}/backtest_sweep", json={"model_id": mid, "sweep": SPEC_SWEEP, "chunk_size": 3}, headers=h)
    assert resp.status_code == 202, resp.text
    refused_id, refused_job = resp.json()["sweep_id"], resp.json()["job_id"]
    deadline = time.monotonic() + 600
    while (refused := http.get(f"{V1}/jobs/{refused_job}", headers=h).json()["data"])["status"] not in (
            "completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, refused
        time.sleep(0.5)
    assert refused["status"] == "failed", refused
    assert refused["error"]["code"] == "CODE_VERSION_MISMATCH", refused
    assert other_version in refused["error"]["message"] and code_version() in refused["error"]["message"], refused
    assert http.get(f"{V1}/backtest_sweep/{refused_id}", headers=h).json()["status"] == "failed"
    assert _leaderboard(three_nodes["db_url"], refused_id) == ([], 0)
    assert http.get(f"{V1}/healthz").status_code == 200
    logged = [p for p in _ray_logs(cluster) if other_version in p.read_text(errors="replace")]
    assert logged, "no worker log names the refused code version"


def _second_checkout(root):
    """Sigma's packages copied to ``root`` with one comment line added: another checkout, whose
    ``code_version`` differs. Returns (root, its code version)."""
    import shutil

    from cluster.version import PACKAGES, source_digest
    from tests.raycluster import REPO

    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    with open(root / "tuning" / "sweep.py", "a") as handle:
        handle.write("\n# another checkout: one line more than the service's\n")
    return root, source_digest(root / package for package in PACKAGES)


def _ray_logs(cluster):
    """The log files of the test cluster's sessions (worker nodes keep theirs beside the head's
    or under RAY_TMPDIR)."""
    from pathlib import Path

    roots = {cluster.temp_dir, Path(cluster.env["RAY_TMPDIR"])}
    started = cluster.started_at
    return [p for root in roots for p in root.glob("**/logs/*") if p.is_file() and p.stat().st_mtime >= started]


def _runs_a_trial(raylet_pid: int) -> bool:
    """A Tune trial actor (``ray::ImplicitFunc...`` / the trainable's name) among the raylet's workers."""
    import psutil

    for proc in psutil.Process(raylet_pid).children(recursive=True):
        try:
            title = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if any(mark in title for mark in ("ImplicitFunc", "chunk_trial", "ResourceTrainable")):
            return True
    return False
