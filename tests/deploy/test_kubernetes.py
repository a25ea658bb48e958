"""deploy/kubernetes/, checked offline: every manifest against Kubernetes' own schemas
(kubernetes-validate bundles them), yamllint, and the parts held together — the front door's
HAProxy configuration is the one our generator makes and HAProxy accepts, the engines drain
within their grace period, the autoscaler reads a metric the engine exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from orchestrator.cluster.front_door import RESOLV_CONF, Backend, haproxy_config
from orchestrator.metrics import ACTIVE_PEERS

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES = "1.30.0"
LINT = YamlLintConfig(
    "{extends: default, rules: {line-length: {max: 100}, document-start: disable,"
    " braces: {max-spaces-inside: 1}}}"
)


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def resource(kind: str, name: str) -> dict[str, Any]:
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for document in documents(path.name):
            if document.get("kind") == kind and document["metadata"]["name"] == name:
                return document
    raise AssertionError(f"no {kind} {name} in {MANIFESTS}")


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("path", sorted(MANIFESTS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_is_valid_and_tidy(path: Path) -> None:
    problems = [str(p) for p in linter.run(path.read_text(), LINT) if p.level == "error"]
    assert not problems, problems
    if path.name == "kustomization.yaml":
        listed = set(documents(path.name)[0]["resources"])
        assert listed == {p.name for p in MANIFESTS.glob("*.yaml")} - {path.name}
        return
    for document in documents(path.name):
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_the_validator_refuses_a_broken_manifest() -> None:
    engine = resource("StatefulSet", "engine")
    engine["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["prot"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(engine, KUBERNETES, strict=True)
    del engine["spec"]["selector"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(engine, KUBERNETES, strict=False)


def test_the_front_door_routes_every_engine_the_autoscaler_may_start() -> None:
    hpa = resource("HorizontalPodAutoscaler", "engine")
    engines = resource("StatefulSet", "engine")
    headless = engines["spec"]["serviceName"]
    assert resource("Service", headless)["spec"]["clusterIP"] == "None"
    expected = haproxy_config(
        [
            Backend(f"engine-{i}", f"engine-{i}.{headless}:9000")
            for i in range(hpa["spec"]["maxReplicas"])
        ],
        ":8080",
        resolver=RESOLV_CONF,
    )
    config = resource("ConfigMap", "front-door")["data"]["haproxy.cfg"]
    assert config == expected
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    assert Path(haproxy).exists(), "haproxy is installed by `make test` (system-deps)"
    check = subprocess.run(
        [haproxy, "-c", "-f", "/dev/stdin"], input=config, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    ports = resource("Deployment", "front-door")["spec"]["template"]["spec"]["containers"][0]
    assert ports["ports"][0]["containerPort"] == 8080
    ingress = resource("Ingress", "tutor-engine")["spec"]["rules"][0]["http"]["paths"]
    assert {p["path"]: p["backend"]["service"]["name"] for p in ingress} == {
        "/v1": "front-door",
        "/e": "front-door",
    }


def test_engines_are_named_placed_and_drained_as_the_engine_expects() -> None:
    engine = resource("StatefulSet", "engine")
    pod = engine["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = env_of(container)
    assert env["ENGINE_ENGINE_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["ENGINE_PUBLIC_URL"].endswith("/e/$(ENGINE_ENGINE_ID)")
    assert env["ENGINE_REDIS_URL"].startswith("redis://redis:")
    assert env["ENGINE_TRITON_URL"] == "triton:8001"
    assert resource("Service", "redis") and resource("Service", "triton")
    drain = float(env["ENGINE_DRAIN_TIMEOUT_S"])
    stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > drain + stop + 5
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"  # 503 while draining
    shared = resource("PersistentVolumeClaim", "shared")
    assert shared["spec"]["accessModes"] == ["ReadWriteMany"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    for variable in ("ENGINE_KNOWLEDGE_DIR", "ENGINE_PHOTO_AVATARS_DIR"):
        assert any(env[variable].startswith(mount + "/") for mount in mounts), variable


def test_autoscalers_read_metrics_that_mean_load() -> None:
    engine = resource("HorizontalPodAutoscaler", "engine")
    assert engine["spec"]["scaleTargetRef"]["name"] == "engine"
    metric = engine["spec"]["metrics"][0]["pods"]["metric"]["name"]
    assert metric == ACTIVE_PEERS.describe()[0].name  # the engine exports it on /metrics
    triton = resource("Deployment", "triton")["spec"]["template"]["spec"]["containers"][0]
    assert triton["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "--model-config-name=gpu" in triton["args"]
