"""docker-compose.gpu.yml and the Dockerfiles, checked without a Docker engine.

Compose resolves the file with Debian's `docker-compose config` (the schema, interpolation,
profiles); the Dockerfiles are read for the rule that their build steps are `make` targets.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cluster.front_door import Backend, haproxy_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.gpu.yml"
SECRET = "s" * 40


def compose_config(*profiles: str, **env: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is installed by `make test` (system-deps)"
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    return subprocess.run(
        [binary, "-f", str(COMPOSE), *flags, "config"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    result = compose_config("turn", "perf", ENGINE_SECRET_KEY=SECRET)
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)["services"]
    return resolved


def dockerfile_stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Instructions per stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            words = rest.split()
            current = words[2] if len(words) > 2 and words[1].upper() == "AS" else words[0]
            stages[current] = [("FROM", rest)]
        elif current:
            stages[current].append((keyword.upper(), rest))
    return stages


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume, in compose's short syntax or its long one."""
    pairs = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        pairs.append((source, target))
    return pairs


def ports(service: dict[str, Any]) -> set[tuple[int, int]]:
    return {(int(p["target"]), int(p["published"])) for p in service["ports"]}


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", text, flags=re.MULTILINE))


def make_run_command() -> list[str]:
    """What `make run` execs, with $(BIN) resolved."""
    recipe = re.search(r"^run:.*\n\texec (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe
    return shlex.split(recipe.group(1).replace("$(BIN)", ".venv/bin"))


def test_the_stack_starts_in_order_builders_first(services: dict[str, Any]) -> None:
    assert set(services) == {
        "model-builder", "engine-builder", "triton", "orchestrator", "coturn", "perf",
        "redis", "engine-1", "engine-2", "engine-3", "front-door",  # profile scale
    }  # fmt: skip

    def waits_for(service: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in services[service].get("depends_on", {}).items()}

    assert waits_for("engine-builder") == {"model-builder": "service_completed_successfully"}
    assert waits_for("triton") == {"engine-builder": "service_completed_successfully"}
    assert waits_for("orchestrator") == {"triton": "service_healthy"}
    assert waits_for("perf") == {"triton": "service_healthy"}


def test_triton_is_nvidias_image_on_the_gpu_with_the_tensorrt_variant(
    services: dict[str, Any],
) -> None:
    triton = services["triton"]
    assert triton["image"] == services["engine-builder"]["image"]  # plans built where served
    base = dockerfile_stages(ROOT / services["engine-builder"]["build"]["dockerfile"])
    arg = re.search(r"ARG TRITON_IMAGE=(\S+)", (ROOT / "Dockerfile.triton").read_text())
    assert arg and arg.group(1).startswith("nvcr.io/nvidia/tritonserver:")
    assert list(base) == ["${TRITON_IMAGE}"]
    for name in ("triton", "engine-builder"):
        (device,) = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "--model-config-name=gpu" in triton["command"]
    assert "--model-repository=/models" in triton["command"]
    assert mounts(triton) == [(str(ROOT / "model_repository"), "/models")]
    assert ports(triton) == {(8000, 8000), (8001, 8001), (8002, 8002)}
    assert "/v2/health/ready" in " ".join(triton["healthcheck"]["test"])
    dockerfile_cmd = ast.literal_eval(
        re.search(r"^CMD (\[.*?\])", (ROOT / "Dockerfile.triton").read_text(), re.M | re.S)
        .group(1)  # type: ignore[union-attr]
        .replace("\\\n", "")
    )
    assert triton["command"] == dockerfile_cmd


def test_every_model_has_the_variant_triton_is_told_to_use(services: dict[str, Any]) -> None:
    name = next(
        a.split("=", 1)[1]
        for a in services["triton"]["command"]
        if a.startswith("--model-config-name=")
    )
    variants = {
        p.parent.parent.name for p in (ROOT / "model_repository").glob(f"*/configs/{name}.pbtxt")
    }
    # the rest fall back to their config.pbtxt: CPU models that need no GPU build
    assert {"asr", "lipsync", "embed", "tts", "tts_zh"} <= variants


def test_the_engine_builder_runs_our_build_script_on_the_shared_repository(
    services: dict[str, Any],
) -> None:
    builder = services["engine-builder"]
    command = builder["command"]
    assert command[:3] == ["python3", "-m", "triton_ops.build_engines"] and "--check" in command
    assert mounts(builder) == [
        (str(ROOT / "model_repository"), command[command.index("--repository") + 1])
    ]
    # Dockerfile.triton copies the script and every triton_ops module it imports
    copied = set(re.findall(r"triton_ops/\w+\.py", (ROOT / "Dockerfile.triton").read_text()))
    needed, queue = set(), ["triton_ops/build_engines.py"]
    while queue:
        module = queue.pop()
        needed.add(module)
        for imported in re.findall(
            r"^from (triton_ops\.\w+) import", (ROOT / module).read_text(), re.M
        ):
            path = imported.replace(".", "/") + ".py"
            if path not in needed:
                queue.append(path)
    assert needed | {"triton_ops/__init__.py"} <= copied


def test_the_orchestrator_uses_that_triton_and_reports_health(services: dict[str, Any]) -> None:
    engine = services["orchestrator"]
    assert engine["build"]["target"] == "runtime"
    assert engine["environment"]["ENGINE_TRITON_URL"] == "triton:8001"
    assert engine["environment"]["ENGINE_SECRET_KEY"] == SECRET
    assert "localhost:9000/health" in " ".join(engine["healthcheck"]["test"])
    assert ports(engine) == {(9000, 9000)}


def test_without_a_token_secret_compose_refuses_to_start() -> None:
    result = compose_config()
    assert result.returncode != 0 and "set ENGINE_SECRET_KEY" in result.stderr


def test_optional_services_stay_behind_their_profiles(services: dict[str, Any]) -> None:
    assert services["coturn"]["profiles"] == ["turn"]
    assert services["coturn"]["network_mode"] == "host"
    perf = services["perf"]
    assert perf["profiles"] == ["perf"] and perf["image"].endswith("-py3-sdk")
    assert perf["command"] == ["bash", "benchmarks/perf_analyzer/run.sh"]
    assert perf["environment"]["TRITON_GRPC"] == "triton:8001"
    plain = compose_config(ENGINE_SECRET_KEY=SECRET)
    assert plain.returncode == 0, plain.stderr
    resolved = yaml.safe_load(plain.stdout)["services"]
    assert {name for name, service in resolved.items() if not service.get("profiles")} == {
        "model-builder", "engine-builder", "triton", "orchestrator"
    }  # fmt: skip


def test_the_dockerfile_builds_with_make_and_runs_what_make_run_runs(
    services: dict[str, Any],
) -> None:
    stages = dockerfile_stages(ROOT / "Dockerfile")
    targets = make_targets()
    for stage, instructions in stages.items():
        runs = [rest for keyword, rest in instructions if keyword == "RUN"]
        for run in runs:
            if run.startswith("apt-get update"):  # make itself, before make can run
                assert "make" in run.split() and stage == "base"
                continue
            words = shlex.split(run)
            assert words[0] == "make", f"{stage}: RUN {run} is not a make target"
            assert {w for w in words[1:] if "=" not in w} <= targets
    # every package the project installs is in the image; no test code is
    copied = {
        rest.split()[0] for keyword, rest in stages["base"] + stages["builder"] if keyword == "COPY"
    }
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {name.rstrip("*") for name in packages["packages"]["find"]["include"]} <= copied
    assert not any(path.startswith("tests") for path in copied)
    (runtime_cmd,) = [rest for keyword, rest in stages["runtime"] if keyword == "CMD"]
    assert ast.literal_eval(runtime_cmd) == make_run_command()
    (builder_cmd,) = [rest for keyword, rest in stages["builder"] if keyword == "CMD"]
    assert ast.literal_eval(builder_cmd) == services["model-builder"]["command"]
    assert services["model-builder"]["build"]["target"] == "builder"
    assert {w for w in ast.literal_eval(builder_cmd)[1:]} <= targets


def test_the_scale_profile_runs_engines_behind_the_front_door() -> None:
    result = compose_config(
        "scale", ENGINE_SECRET_KEY=SECRET, FRONT_DOOR_URL="wss://tutor.example.com"
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    engines = {
        name: service
        for name, service in services.items()
        if "ENGINE_REDIS_URL" in service.get("environment", {})
    }
    assert sorted(engines) == ["engine-1", "engine-2", "engine-3"]
    for name, engine in engines.items():
        env = engine["environment"]
        assert env["ENGINE_ENGINE_ID"] == name
        assert env["ENGINE_PUBLIC_URL"] == f"wss://tutor.example.com/e/{name}"
        assert env["ENGINE_REDIS_URL"] == "redis://redis:6379/0"
        assert env["ENGINE_TRITON_URL"] == "triton:8001" and env["ENGINE_SECRET_KEY"] == SECRET
        assert "shared:/shared:rw" in engine["volumes"]
        assert env["ENGINE_KNOWLEDGE_DIR"].startswith("/shared/")
        assert env["ENGINE_PHOTO_AVATARS_DIR"].startswith("/shared/")
        assert engine["depends_on"]["redis"]["condition"] == "service_healthy"
        assert float(env["ENGINE_DRAIN_TIMEOUT_S"]) < int(engine["stop_grace_period"].rstrip("s"))
        assert engine["profiles"] == ["scale"]
    front = services["front-door"]
    assert ports(front) >= {(8080, 8080)}
    (mount,) = front["volumes"]
    config = Path(mount.split(":")[0])
    assert config == ROOT / "deploy" / "haproxy" / "haproxy.cfg"
    expected = haproxy_config(
        [Backend(name, f"{name}:9000") for name in sorted(engines)],
        ":8080",
        stats=":8404",
        resolver="127.0.0.11:53",
    )
    assert config.read_text() == expected
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    check = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
