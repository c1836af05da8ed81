"""The deployment files Ray users deploy with: deploy/serve.yaml (validated with Ray Serve's own
``ServeDeploySchema`` and built from its import path), the KubeRay manifests (the embedded
Serve config, structure, image, resources, settings from the Secret) and the Dockerfile."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from cluster.config import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBERAY = ROOT / "deploy" / "kuberay"


def _serve_config() -> dict:
    return yaml.safe_load((ROOT / "deploy" / "serve.yaml").read_text())


def _validate(config: dict):
    from ray.serve.schema import ServeDeploySchema

    return ServeDeploySchema.model_validate(config)


def _pin(name: str) -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==", 1)[1]
    raise AssertionError(f"{name} is not pinned in constraints.txt")


def test_serve_config_is_valid_for_ray_serve():
    schema = _validate(_serve_config())
    assert schema.http_options.port == 8001 and schema.http_options.host == "0.0.0.0"
    (app,) = schema.applications
    assert app.import_path == "serve_app.app:app" and app.route_prefix == "/"
    (dep,) = app.deployments
    auto = dep.autoscaling_config
    assert auto["min_replicas"] == 1 and auto["max_replicas"] == 8 and auto["target_ongoing_requests"] == 16
    assert 0 < dep.ray_actor_options.num_cpus < 1  # fractional CPUs: replicas fit beside compute


def test_import_path_builds_the_app_from_the_environment(tmp_path, monkeypatch):
    """What `serve run serve_app.app:app` and the config's import_path do: settings from SIGMA_*,
    the catalog migrated, the one deployment the config names."""
    from ray.serve import Application

    from serve_app import app as module

    monkeypatch.setenv("SIGMA_HOME", str(tmp_path))
    monkeypatch.setenv("SIGMA_INGRESS_NUM_CPUS", "0.1")
    built = module.app
    assert isinstance(built, Application)
    names = {d["name"] for d in _serve_config()["applications"][0]["deployments"]}
    assert names == {built._bound_deployment.name}
    assert (tmp_path / "catalog.db").exists()
    # a multi-node deployment on node-local storage is refused before anything is written
    monkeypatch.setenv("SIGMA_HOME", str(tmp_path / "cluster"))
    monkeypatch.setenv("SIGMA_MULTI_NODE", "true")
    with pytest.raises(ValueError, match="SIGMA_DATABASE_URL"):
        module.app
    assert not (tmp_path / "cluster" / "catalog.db").exists()
    with pytest.raises(AttributeError):
        module.no_such_thing


def _manifest(name: str) -> dict:
    return yaml.safe_load((KUBERAY / name).read_text())


def _pods(cluster: dict):
    yield "head", cluster["headGroupSpec"]["template"]["spec"]
    for group in cluster["workerGroupSpecs"]:
        yield group["groupName"], group["template"]["spec"]


def _check_cluster(cluster: dict) -> None:
    assert cluster["rayVersion"] == _pin("ray")
    assert cluster["enableInTreeAutoscaling"] is True
    assert [g["groupName"] for g in cluster["workerGroupSpecs"]] == ["cpu-workers"]
    workers = cluster["workerGroupSpecs"][0]
    assert workers["minReplicas"] <= workers["replicas"] <= workers["maxReplicas"]
    assert cluster["headGroupSpec"]["rayStartParams"]["metrics-export-port"] == "8080"
    # sweep trials ask for "sigma_trials" (SIGMA_TRIAL_RESOURCES), which only the workers offer;
    # the value is ray start's --resources JSON inside the quotes KubeRay passes on
    offered = json.loads(json.loads(workers["rayStartParams"]["resources"]))
    assert "resources" not in cluster["headGroupSpec"]["rayStartParams"]
    for _, pod in _pods(cluster):
        asked = {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}["SIGMA_TRIAL_RESOURCES"]
        trial = Settings(trial_resources=json.loads(asked)).trial_resources
        assert trial and all(offered.get(name, 0) >= amount for name, amount in trial.items())
    for _, pod in _pods(cluster):
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        (container,) = pod["containers"]
        assert container["image"] == "ghcr.io/your-org/sigma:0.1.0"
        assert container["resources"]["requests"] == container["resources"]["limits"]
        assert float(container["resources"]["requests"]["cpu"]) >= 1
        assert container["envFrom"] == [{"secretRef": {"name": "sigma-settings"}}]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env["SIGMA_MULTI_NODE"] == "true"
        # no setting value is written into a manifest: they all come from the Secret
        assert not {"SIGMA_DATABASE_URL", "SIGMA_STORAGE_URL", "SIGMA_JWT_SECRET"} & set(env)
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in head["ports"]}["serve"] == 8001


def test_rayservice_embeds_the_serve_config_and_reads_the_secret():
    doc = _manifest("rayservice.yaml")
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayService"
    embedded = yaml.safe_load(doc["spec"]["serveConfigV2"])
    assert embedded == _serve_config()  # one Serve config, not two that drift
    _validate(embedded)
    _check_cluster(doc["spec"]["rayClusterConfig"])


def test_rayjob_runs_a_sweep_with_the_real_cli():
    from serve_app.cli import build_parser
    from serve_app.sweep_cli import cmd_sweep_run

    doc = _manifest("rayjob-sweep.yaml")
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
    assert doc["spec"]["shutdownAfterJobFinishes"] is True
    argv = shlex.split(doc["spec"]["entrypoint"])
    assert argv[0] == "sigma"
    args = build_parser().parse_args(argv[1:])
    assert args.func is cmd_sweep_run and args.address == "auto"
    assert isinstance(yaml.safe_load(args.grid), dict)
    _check_cluster(doc["spec"]["rayClusterSpec"])


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def test_dockerfile_is_pinned_non_root_and_keeps_the_numba_cache():
    steps = _dockerfile()
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11")
    pips = [i for i, (op, args) in enumerate(steps) if op == "RUN" and "pip install" in args]
    assert pips
    for i in pips:
        for install in re.findall(r"pip install[^&]*", steps[i][1]):
            assert "-c constraints.txt" in install, install  # every install uses the pins
    copied = [i for i, (op, args) in enumerate(steps) if op == "COPY" and "constraints.txt" in args]
    assert copied and copied[0] < pips[0]
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    env = " ".join(args for op, args in steps if op == "ENV")
    cache = re.search(r"NUMBA_CACHE_DIR=(\S+)", env).group(1)
    volumes = [args for op, args in steps if op == "VOLUME"]
    assert volumes and cache in volumes[-1]
    # kernels are compiled into the cache by the image's user, after USER
    warm = [i for i, (op, args) in enumerate(steps) if op == "RUN" and "sigma warm" in args]
    assert warm and warm[0] > max(i for i, (op, _) in enumerate(steps) if op == "USER")
    assert any(op == "CMD" and "sigma" in args and "serve" in args for op, args in steps)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "sigma.env" in ignored and ".venv" in ignored
