"""cluster.yaml is a valid Ray cluster launcher config and runs Sigma on the head."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from cluster.config import Settings

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
    assert "pip install -c ~/sigma/constraints.txt -e ~/sigma" in setup
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-port=8265" in head
    assert "sigma serve --address auto" in head and "--port 8001" in head
    # Redis owns 6379 on our machines: the head's GCS listens elsewhere.
    assert "--port=6380" in head
    assert config["file_mounts"]["~/sigma"] == "."
    # settings travel in a shipped env file, never through ${...} in the YAML (Ray does not
    # substitute the laptop's environment) and never as values in the file
    assert config["file_mounts"]["~/sigma.env"] == "./sigma.env"
    text = (ROOT / "cluster.yaml").read_text()
    assert "${SIGMA" not in text and "SIGMA_JWT_SECRET=" not in text
    assert "/sigma.env" in (ROOT / ".gitignore").read_text().splitlines()


def test_workers_get_an_instance_profile_for_the_bucket():
    config = _config()
    worker = config["available_node_types"]["cpu_worker"]["node_config"]
    assert worker["IamInstanceProfile"] == {"Name": "sigma-worker"}
    # the head keeps Ray's default profile (created by `ray up`, with S3 access)
    assert "IamInstanceProfile" not in config["available_node_types"]["head"]["node_config"]


# ----------------------------------------------------------- what each node would run

STUB = """#!{python}
import json, os, sys
keep = ("SIGMA_", "POLYGON_", "AWS_", "RAY_HEAD_IP")
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps({{"prog": os.path.basename(sys.argv[0]), "argv": sys.argv[1:],
                          "env": {{k: v for k, v in os.environ.items() if k.startswith(keep)}}}}) + "\\n")
"""

ENV_FILE = """SIGMA_DATABASE_URL=postgresql://sigma:pw@db.internal:5432/sigma
SIGMA_STORAGE_URL=s3://sigma-bucket/prod
SIGMA_JWT_SECRET=not-a-real-secret-but-long-enough
SIGMA_HOME=/home/ubuntu/.sigma
SIGMA_MARKET_DATA=polygon
POLYGON_API_KEY=pk_test_123
"""


def _render(role: str, tmp_path: Path) -> list[dict]:
    """Run what the launcher would run on a ``role`` node, in order, with Ray's own command
    preparation (``prepare_config``, the head IP exported into worker start commands), in a
    fake home whose ``~/venv/bin/{pip,ray,sigma}`` and ``sudo`` only record their arguments and
    the SIGMA_/POLYGON_/AWS_ environment they were started with."""
    import os
    import shutil
    import stat
    import subprocess
    import sys
    import time

    from ray.autoscaler._private.util import prepare_config, with_head_node_ip

    config = prepare_config(_config())
    home = tmp_path / role
    stubs = home / "venv" / "bin"
    stubs.mkdir(parents=True)
    sysbin = home / "sysbin"
    sysbin.mkdir()
    for path in (stubs / "pip", stubs / "ray", stubs / "sigma", sysbin / "sudo", sysbin / "python3.11"):
        path.write_text(STUB.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    # file_mounts: the repository and the env file (its example, filled in)
    for remote, local in config["file_mounts"].items():
        target = home / remote.removeprefix("~/")
        if Path(local).name == "sigma.env":
            target.write_text(ENV_FILE)
        else:
            os.symlink(ROOT, target)
    log = home / "calls.jsonl"
    env = {"HOME": str(home), "PATH": f"{sysbin}:/usr/bin:/bin", "STUB_LOG": str(log)}
    if role == "head":
        commands = (config["initialization_commands"] + config["setup_commands"] + config["head_setup_commands"]
                    + config["head_start_ray_commands"])
    else:
        commands = (config["initialization_commands"] + config["setup_commands"] + config["worker_setup_commands"]
                    + with_head_node_ip(config["worker_start_ray_commands"], "10.0.0.5"))
    for command in commands:
        done = subprocess.run(["bash", "-c", f"export OMP_NUM_THREADS=1 PYTHONWARNINGS=ignore && ({command})"],
                              env=env, cwd=home, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (command, done.stderr)
    import json

    calls = lambda: [json.loads(line) for line in log.read_text().splitlines()]  # noqa: E731
    deadline = time.monotonic() + 30  # `nohup ... &` finishes after its shell
    while role == "head" and not any(c["argv"][:1] == ["serve"] for c in calls()):
        assert time.monotonic() < deadline, calls()
        time.sleep(0.1)
    assert stat.S_IMODE((home / "sigma.env").stat().st_mode) == 0o600
    shutil.rmtree(sysbin)
    return calls()


def _expected_env():
    env = dict(line.split("=", 1) for line in ENV_FILE.splitlines())
    env["SIGMA_MULTI_NODE"] = "true"
    return env


def test_head_commands_start_ray_and_sigma_with_the_env_file(tmp_path):
    calls = _render("head", tmp_path)
    home = tmp_path / "head"
    pip = [c for c in calls if c["prog"] == "pip" and "-e" in c["argv"]]
    assert pip and pip[0]["argv"] == ["install", "-c", f"{home}/sigma/constraints.txt", "-e", f"{home}/sigma"]
    ray_start = [c for c in calls if c["prog"] == "ray" and c["argv"][:1] == ["start"]]
    assert len(ray_start) == 1 and "--head" in ray_start[0]["argv"] and "--port=6380" in ray_start[0]["argv"]
    assert "--metrics-export-port=8080" in ray_start[0]["argv"]
    sigma = [c for c in calls if c["prog"] == "sigma"]
    assert [c["argv"] for c in sigma] == [["migrate"], ["serve", "--address", "auto", "--host", "0.0.0.0", "--port", "8001"]]
    # the raylet (so every Ray worker process), the migration and the service all see the settings
    for call in ray_start + sigma[:1]:
        assert call["env"] == _expected_env(), call
    # the service also asks every sweep trial for a resource only the worker type offers (the
    # autoscaler starts workers with their type's resources and adds them for the trials' demand)
    serve_env = dict(sigma[1]["env"])
    asked = Settings(trial_resources=json.loads(serve_env.pop("SIGMA_TRIAL_RESOURCES"))).trial_resources
    assert serve_env == _expected_env()
    types = _config()["available_node_types"]
    assert asked and all(types["cpu_worker"]["resources"].get(k, 0) >= v for k, v in asked.items())
    assert not set(asked) & set(types["head"]["resources"])


def test_worker_commands_join_the_head_with_the_same_settings(tmp_path):
    calls = _render("worker", tmp_path)
    home = tmp_path / "worker"
    pip = [c for c in calls if c["prog"] == "pip" and "-e" in c["argv"]]
    assert pip[0]["argv"] == ["install", "-c", f"{home}/sigma/constraints.txt", "-e", f"{home}/sigma"]
    ray_start = [c for c in calls if c["prog"] == "ray" and c["argv"][:1] == ["start"]]
    assert len(ray_start) == 1 and ray_start[0]["argv"] == ["start", "--address=10.0.0.5:6380", "--metrics-export-port=8080"]
    assert ray_start[0]["env"] == {**_expected_env(), "RAY_HEAD_IP": "10.0.0.5"}
    assert not [c for c in calls if c["prog"] == "sigma"]  # workers run no service of their own


def test_env_example_names_every_setting_a_node_needs():
    example = (ROOT / "deploy" / "sigma.env.example").read_text()
    keys = {line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")}
    assert {"SIGMA_DATABASE_URL", "SIGMA_STORAGE_URL", "SIGMA_JWT_SECRET"} <= keys
