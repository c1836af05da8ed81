"""A deployment on more than one node refuses node-local storage (require_shared_storage)."""

from __future__ import annotations

import pytest

from cluster.config import Settings, SharedStorageRequired, require_shared_storage


def test_single_node_accepts_local_storage(tmp_path):
    require_shared_storage(Settings(home=tmp_path), 0)
    require_shared_storage(Settings(home=tmp_path), 1)


@pytest.mark.parametrize("nodes, flag", [(3, False), (0, True), (1, True)])
def test_cluster_with_workers_refuses_sqlite_and_file_store(tmp_path, nodes, flag):
    with pytest.raises(SharedStorageRequired) as err:
        require_shared_storage(Settings(home=tmp_path, multi_node=flag), nodes)
    message = str(err.value)
    assert "SIGMA_DATABASE_URL" in message and "SIGMA_STORAGE_URL" in message
    assert (f"{nodes} Ray nodes" if nodes > 1 else "SIGMA_MULTI_NODE=true") in message
    assert not (tmp_path / "catalog.db").exists()


def test_cluster_with_shared_storage_starts(tmp_path):
    shared = Settings(home=tmp_path, database_url="postgresql://db:5432/sigma", storage_url="s3://bucket/sigma",
                      multi_node=True)
    require_shared_storage(shared, 3)
    with pytest.raises(SharedStorageRequired, match="SIGMA_STORAGE_URL") as err:
        require_shared_storage(shared.model_copy(update={"storage_url": "/mnt/local"}), 3)
    assert "SIGMA_DATABASE_URL" not in str(err.value)
