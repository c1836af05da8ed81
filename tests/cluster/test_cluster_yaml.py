"""cluster.yaml is a valid Ray cluster launcher config and runs Sigma on the head."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _config() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_validates_against_rays_schema():
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(_config(), schema)


def test_cluster_yaml_passes_rays_own_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(_config())
    validate_config(config)
    assert config["head_node_type"] in config["available_node_types"]


def test_head_installs_the_package_and_serves_sigma():
    config = _config()
    setup = " ".join(config["setup_commands"])
    assert "pip install -e ~/sigma" in setup
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-port=8265" in head
    assert "sigma serve --address auto" in head and "--port 8001" in head
    # Redis owns 6379 on our machines: the head's GCS listens elsewhere.
    assert "--port=6380" in head
    assert config["file_mounts"]["~/sigma"] == "."
    assert "SIGMA_JWT_SECRET=" not in (ROOT / "cluster.yaml").read_text().replace("SIGMA_JWT_SECRET=%s", "")
