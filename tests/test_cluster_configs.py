"""cluster/: launcher configs valid against the schema shipped inside ray, KubeRay manifests with
a GPU worker group, one Ray version everywhere, and no Ray port opened to public addresses."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

CLUSTER = Path(__file__).resolve().parents[1] / "cluster"
PYPROJECT = CLUSTER.parent / "pyproject.toml"
LAUNCHER = ["aws.yaml", "gcp.yaml"]
KUBERAY = ["kuberay/raycluster.yaml", "kuberay/rayjob.yaml"]
RAY_PORTS = {6379, 8265, 10001}  # GCS, dashboard and Jobs API, Ray client
#: Every way a file here names a Ray version: images, pins, KubeRay's rayVersion, our image tags.
VERSION_PATTERNS = [r"rayproject/ray:(\d+\.\d+\.\d+)", r"\bray(?:\[[a-z,]+\])?==(\d+\.\d+\.\d+)",
                    r"rayVersion:\s*\"?(\d+\.\d+\.\d+)", r"claimbench:ray(\d+\.\d+\.\d+)",
                    r"ray\.__version__ == '(\d+\.\d+\.\d+)'"]


def pinned_ray() -> str:
    deps = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    pins = [m.group(1) for d in deps if (m := re.fullmatch(r"ray(?:\[[a-z,]+\])?==(\d+\.\d+\.\d+)", d.replace(" ", "")))]
    assert len(pins) == 1, f"pyproject must pin ray exactly once (ray[default]==X.Y.Z), got {deps}"
    return pins[0]


def load(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((CLUSTER / name).read_text(encoding="utf-8")) if d]


def test_the_pinned_ray_is_the_installed_one():
    ray = pytest.importorskip("ray")
    assert ray.__version__ == pinned_ray()


def test_every_ray_version_named_in_cluster_matches_the_pin():
    pin = pinned_ray()
    named = {}
    for path in sorted(p for p in CLUSTER.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8")
        for pattern in VERSION_PATTERNS:
            for version in re.findall(pattern, text):
                named.setdefault(version, set()).add(str(path.relative_to(CLUSTER)))
    assert set(named) == {pin}, f"pyproject pins ray {pin}; cluster/ names {named}"
    for name in [*LAUNCHER, *KUBERAY, "Dockerfile"]:  # each file names it at least once
        assert any(name in files for files in named.values()), f"{name} names no Ray version"


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_config_is_valid_against_rays_schema(name):
    jsonschema = pytest.importorskip("jsonschema")
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text(encoding="utf-8"))
    (config,) = load(name)
    jsonschema.validate(config, schema)
    assert config["docker"]["image"] == f"rayproject/ray:{pinned_ray()}-py311-gpu"
    gpu_types = {t for t, spec in config["available_node_types"].items() if spec.get("resources", {}).get("GPU", 0) > 0}
    assert gpu_types and config["head_node_type"] not in gpu_types
    assert config["head_node_type"] in config["available_node_types"]


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_config_keeps_ray_ports_private(name):
    (config,) = load(name)
    for rule in config["provider"].get("security_group", {}).get("IpPermissions", []):
        ports = set(range(rule["FromPort"], rule["ToPort"] + 1))
        public = any(r.get("CidrIp") == "0.0.0.0/0" for r in rule.get("IpRanges", []))
        assert not (public and ports & RAY_PORTS), f"{name} opens {ports & RAY_PORTS} to 0.0.0.0/0"
    start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start
    assert "0.0.0.0" not in start and "--ray-client-server-port" not in start


def ray_cluster_specs() -> list[tuple[str, dict]]:
    out = []
    for name in KUBERAY:
        for doc in load(name):
            assert doc["apiVersion"] in ("ray.io/v1", "v1"), f"{name}: {doc['apiVersion']}"
            if doc["kind"] == "RayCluster":
                out.append((name, doc["spec"]))
            elif doc["kind"] == "RayJob":
                assert doc["spec"]["entrypoint"].startswith("claimbench run ")
                out.append((name, doc["spec"]["rayClusterSpec"]))
            else:
                assert doc["kind"] == "PersistentVolumeClaim"
    return out


def test_kuberay_manifests_have_a_gpu_worker_group_and_a_private_head():
    specs = ray_cluster_specs()
    assert {n for n, _ in specs} == set(KUBERAY)
    for name, spec in specs:
        assert spec["rayVersion"] == pinned_ray()
        head = spec["headGroupSpec"]
        assert head.get("serviceType", "ClusterIP") == "ClusterIP", f"{name}: the head's Service must stay in-cluster"
        assert "0.0.0.0" not in json.dumps(head.get("rayStartParams", {}))
        gpu_groups = [g for g in spec["workerGroupSpecs"]
                      if any("nvidia.com/gpu" in c.get("resources", {}).get("limits", {})
                             for c in g["template"]["spec"]["containers"])]
        assert gpu_groups, f"{name}: no worker group asks for nvidia.com/gpu"
        for g in gpu_groups:
            assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        images = [c["image"] for part in [head, *spec["workerGroupSpecs"]] for c in part["template"]["spec"]["containers"]]
        assert all(i.endswith(f":ray{pinned_ray()}-py311-gpu") for i in images), images


def test_runtime_env_ships_code_only():
    env = yaml.safe_load((CLUSTER / "runtime_env.yaml").read_text(encoding="utf-8"))
    assert set(env) <= {"excludes", "env_vars", "working_dir", "pip", "py_modules"}
    assert {".venv", "runs", ".git"} <= set(env["excludes"])


def test_dockerfile_builds_on_the_pinned_gpu_image():
    text = (CLUSTER / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM rayproject/ray:(\S+)$", text, re.M).group(1) == f"{pinned_ray()}-py311-gpu"
