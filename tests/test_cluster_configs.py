"""The scale-out configurations in cluster/configs/ are valid where Ray can tell, and consistent with
what Foveate needs (GPU workers, token auth, the pinned Ray version)."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

CONFIGS = Path(__file__).resolve().parents[1] / "cluster" / "configs"


@pytest.fixture(scope="module")
def launcher() -> dict:
    return yaml.safe_load((CONFIGS / "aws-gpu.yaml").read_text())


@pytest.fixture(scope="module")
def raycluster() -> dict:
    return yaml.safe_load((CONFIGS / "kuberay-raycluster.yaml").read_text())


def test_launcher_yaml_passes_rays_own_schema(launcher):
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(launcher)))


def test_the_schema_check_can_fail(launcher):
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = copy.deepcopy(launcher)
    broken["available_node_types"]["gpu_worker"]["max_worker"] = 8  # a typo of max_workers
    with pytest.raises(jsonschema.ValidationError, match="'max_worker' was unexpected"):
        validate_config(prepare_config(broken))


def test_launcher_has_gpu_workers_token_auth_and_the_pinned_ray(launcher):
    types = launcher["available_node_types"]
    gpu = [t for t in types.values() if t.get("resources", {}).get("GPU", 0) >= 1]
    assert gpu and all(t["max_workers"] >= 1 for t in gpu)
    assert types[launcher["head_node_type"]]["resources"] == {"CPU": 0}  # no training on the head
    assert "--gpus all" in launcher["docker"]["worker_run_options"]
    assert f":{ray.__version__}-" in launcher["docker"]["image"]
    for cmd in launcher["head_start_ray_commands"][1:] + launcher["worker_start_ray_commands"][1:]:
        assert "RAY_AUTH_MODE=token" in cmd
    assert any(dst.endswith("/.ray/auth_token") for dst in launcher["file_mounts"])


def _containers(rc: dict) -> list[dict]:
    groups = [rc["spec"]["headGroupSpec"], *rc["spec"]["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def test_raycluster_structure(raycluster):
    assert raycluster["apiVersion"] == "ray.io/v1" and raycluster["kind"] == "RayCluster"
    spec = raycluster["spec"]
    assert spec["rayVersion"] == ray.__version__
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"  # the Jobs API, for the job service
    assert {p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]} >= {6379, 8265}
    for group in [head, *spec["workerGroupSpecs"]]:
        # KubeRay's CRD types rayStartParams as map[string]string.
        assert all(isinstance(v, str) for v in group["rayStartParams"].values())
    for g in spec["workerGroupSpecs"]:
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        assert len({g["groupName"] for g in spec["workerGroupSpecs"]}) == len(spec["workerGroupSpecs"])


def test_raycluster_gpu_workers_and_token_auth(raycluster):
    gpu_groups = [g for g in raycluster["spec"]["workerGroupSpecs"] if "num-gpus" in g["rayStartParams"]]
    assert gpu_groups
    for g in gpu_groups:
        res = g["template"]["spec"]["containers"][0]["resources"]
        n = g["rayStartParams"]["num-gpus"]
        assert res["limits"]["nvidia.com/gpu"] == res["requests"]["nvidia.com/gpu"] == n
    images = {c["image"] for c in _containers(raycluster)}
    assert len(images) == 1 and f"ray{ray.__version__}" in images.pop()
    for c in _containers(raycluster):
        env = {e["name"]: e for e in c["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "foveate-ray-token"


def _kuberay_schema(version: str) -> dict:
    """The RayCluster CRD's v1 openAPIV3Schema of KubeRay `version` (vendored: tests/data/kuberay/)."""
    import gzip

    path = Path(__file__).parent / "data" / "kuberay" / f"ray.io_rayclusters-{version}.yaml.gz"
    assert path.exists(), f"no vendored CRD for KubeRay {version} (tests/data/kuberay/README.md)"
    crd = yaml.safe_load(gzip.decompress(path.read_bytes()))
    return next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]


def test_raycluster_validates_against_the_crd_of_the_kuberay_it_names(raycluster):
    schema = _kuberay_schema(raycluster["metadata"]["labels"]["foveate.dev/kuberay-version"])
    jsonschema.validate(raycluster, schema)  # what `kubectl apply` checks against that operator's CRD


def test_the_crd_check_can_fail(raycluster):
    schema = _kuberay_schema(raycluster["metadata"]["labels"]["foveate.dev/kuberay-version"])
    bad = copy.deepcopy(raycluster)
    bad["spec"]["workerGroupSpecs"][0]["minReplicas"] = "one"  # an integer field
    with pytest.raises(jsonschema.ValidationError, match="minReplicas|'one'"):
        jsonschema.validate(bad, schema)
    bad = copy.deepcopy(raycluster)
    bad["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0  # map[string]string
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


@pytest.mark.parametrize("name", ["aws-gpu.yaml", "kuberay-raycluster.yaml"])
def test_each_config_names_the_serve_command_the_readme_documents(name):
    """The command in the config's header is the README's, word for word up to the token file's place."""
    import re

    text = (CONFIGS / name).read_text()
    readme = (CONFIGS.parents[1] / "README.md").read_text()
    command = re.search(r"^#\s+(foveate serve --address \S+ --ray-token-file)", text, re.M)
    assert command, name
    assert command.group(1) in readme, f"the README does not document `{command.group(1)}` ({name})"
