"""A node that runs other code than the service, or cannot reach the catalog or the store, refuses
the work with an error naming the node and the setting, and the job reports it (issue 17)."""

from __future__ import annotations

import shutil
import time

import pytest

from cluster.config import Settings
from cluster.nodecheck import NodeRefused, check_node
from cluster.version import code_version, source_digest
from tests.conftest import free_port


def test_the_code_version_is_a_digest_of_the_source(tmp_path):
    import cluster

    assert code_version() == code_version() and len(code_version()) == 16
    copy = tmp_path / "cluster"
    shutil.copytree(cluster.__path__[0], copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = source_digest([copy])
    assert source_digest([copy]) == before
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"compiled")
    assert source_digest([copy]) == before  # only the source counts
    with open(copy / "jobs.py", "a") as handle:
        handle.write("\n# one more line\n")
    assert source_digest([copy]) != before


def test_a_node_on_other_code_refuses(tmp_path):
    settings = Settings(home=tmp_path, service_code_version="0" * 16)
    with pytest.raises(NodeRefused) as info:
        check_node(settings)
    assert info.value.code == "CODE_VERSION_MISMATCH"
    assert "0" * 16 in str(info.value) and code_version() in str(info.value)
    # stamped by the service, the same code passes, and the stamp survives a worker's round trip
    stamped = Settings.model_validate_json(Settings(home=tmp_path).worker_json())
    assert stamped.service_code_version == code_version()
    check_node(stamped)
    assert Settings.model_validate_json(stamped.worker_json()).service_code_version == code_version()


def test_a_node_without_the_catalog_names_the_setting_and_hides_the_password(tmp_path):
    url = f"postgresql+psycopg://sigma:hunter2-secret@127.0.0.1:{free_port()}/sigma?connect_timeout=3"
    with pytest.raises(NodeRefused) as info:
        check_node(Settings(home=tmp_path, database_url=url))
    assert info.value.code == "CATALOG_UNREACHABLE"
    message = str(info.value)
    assert "SIGMA_DATABASE_URL" in message and "127.0.0.1" in message and "hunter2" not in message


def test_a_node_without_the_store_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    started = time.monotonic()
    with pytest.raises(NodeRefused) as info:
        check_node(Settings(home=tmp_path, storage_url="s3://sigma-nowhere/artifacts"))
    assert info.value.code == "STORE_UNREACHABLE"
    assert "SIGMA_STORAGE_URL" in str(info.value) and "s3://sigma-nowhere/artifacts" in str(info.value)
    assert time.monotonic() - started < 60


def test_the_job_manager_fails_a_refused_job_with_the_nodes_reason(ray_session, tmp_path):
    """A service on other code than this node (its stamp differs): the job task refuses before
    touching the job, and the manager fails the job with the refusal; nothing else is written."""
    import ray

    from cluster.catalog import Job, get_catalog, upgrade_schema
    from cluster.jobs import create_job, get_job_manager, manager_name
    from serve_app.users import create_user

    settings = Settings(home=tmp_path, service_code_version="f" * 16, job_num_cpus=0.1)
    catalog = get_catalog(settings)
    upgrade_schema(catalog)
    user = create_user(catalog, "node_nina", "a-long-enough-password-1")
    job = create_job(catalog, user_id=user.id, kind="system.probe", params={"duration_s": 0.1})
    manager = get_job_manager(settings)
    try:
        ray.get(manager.submit.remote(job.id, user.id, "default", None))
        deadline = time.monotonic() + 120
        while True:
            with catalog.session() as s:
                row = s.get(Job, job.id)
                status, error, attempts, started = row.status, row.error, row.attempts, row.started_at
            if status in ("failed", "completed") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == "failed", (status, error)
        assert error["code"] == "CODE_VERSION_MISMATCH"
        assert "f" * 16 in error["message"] and code_version() in error["message"]
        assert not attempts and started is None  # the refusing node never started it
    finally:
        ray.kill(ray.get_actor(manager_name(settings), namespace="sigma"))
        catalog.dispose()


def refusing_trial(config, inputs=None, meta=None, bounds=None):
    """A sweep trial on a node that refuses the work: notes the attempt, then refuses."""
    import json
    from pathlib import Path

    with open(Path(json.loads(meta.settings_json)["marker"]), "a") as handle:
        handle.write(f"{config['chunk']}\n")
    raise NodeRefused("node test-node runs Sigma code 1111111111111111, the service 2222222222222222: refused",
                      "CODE_VERSION_MISMATCH")


def test_a_refused_trial_stops_the_whole_sweep_at_once(ray_session, tmp_path):
    """Tune would retry each trial max_failures times in a new actor that refuses again (37
    refusals in 2 min 44 s for 12 chunks, seen on the 3-node cluster): the first refusal ends
    the run, and the driver fails the job with the node's reason."""
    import json

    import ray

    from cluster.jobs import JobFailed
    from services.lab.sweeps import SweepMeta
    from tuning.sweep import run_chunks_on_tune

    marker = tmp_path / "attempts.txt"
    meta = SweepMeta(sweep_id="sweep_refused", user_id=1, model_pk=1, model_id="m", pack_id="p", tag=None,
                     risk_profile="Balanced", n_trials=8, splits=5, embargo=None,
                     settings_json=json.dumps({"marker": str(marker)}))
    started = time.monotonic()
    with pytest.raises(JobFailed) as info:
        run_chunks_on_tune(ray.put({}), list(range(8)), None, meta, storage_path=str(tmp_path / "tune"),
                           max_concurrent=1, trial_fn=refusing_trial)
    assert info.value.code == "CODE_VERSION_MISMATCH"
    # the node's own words, without Ray's traceback around them
    assert str(info.value) == "node test-node runs Sigma code 1111111111111111, the service 2222222222222222: refused"
    attempts = marker.read_text().split()
    # 8 chunks x 3 runs each without the stop; one trial at a time, so at most its retry began
    assert 1 <= len(attempts) <= 2, attempts
    print(f"refused after {len(attempts)} attempt(s) in {time.monotonic() - started:.1f} s")
