"""Real processes on free ports: Triton (`python -m triton_ops.server`) and the engine."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    log: Path,
    timeout_s: float,
    what: str,
) -> None:
    """Until `ready()`; RuntimeError with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited {process.returncode}:\n{tail(log)}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout_s} s:\n{tail(log)}")


def answers_ok(url: str) -> Callable[[], bool]:
    def ok() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return ok


def listens(port: int) -> Callable[[], bool]:
    def open_() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
        except OSError:
            return False
        return True

    return open_


def create_session(
    base_url: str,
    tutor_id: int,
    student_id: int | str,
    headers: dict[str, str] | None = None,
    timeout_s: float = 10,
    **extra: Any,
) -> dict[str, Any]:
    """`POST /v1/sessions` on an engine (or the front door before several): its answer."""
    response = httpx.post(
        base_url + "/v1/sessions",
        json={"tutor_id": tutor_id, "student_id": student_id, **extra},
        headers=headers,
        timeout=timeout_s,
    )
    response.raise_for_status()
    session: dict[str, Any] = response.json()
    return session


def spawn(command: list[str], log: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """Starts `command` with its output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **popen)


def descendants(root: int) -> list[int]:
    """Every live process under `root` (Triton's model stubs under the engine, say)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, queue = [], list(children.get(root, []))
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_process(process: subprocess.Popen[bytes] | None, timeout_s: float = 30) -> int:
    """SIGTERM, then SIGKILL after `timeout_s`; the exit code."""
    if process is None:
        return 0
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@dataclass
class TritonProcess:
    """A Triton server as an operator runs one beside the engine (ENGINE_TRITON_URL)."""

    workdir: Path
    model_repository: Path = ROOT / "model_repository"
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def log(self) -> Path:
        return self.workdir / "triton-process.log"

    def start(self, timeout_s: float = 180) -> TritonProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "triton_ops.server",
            "--model-repository", str(self.model_repository),
            "--workdir", str(self.workdir),
            "--grpc-port", str(self.grpc_port),
            "--http-port", str(self.http_port),
            "--metrics-port", str(self.metrics_port),
        ]  # fmt: skip
        self.process = spawn(command, self.log, cwd=ROOT)
        ready = answers_ok(f"http://127.0.0.1:{self.http_port}/v2/health/ready")
        wait_ready(ready, self.process, self.log, timeout_s, "Triton")
        return self

    def stop(self) -> int:
        return stop_process(self.process)


@dataclass
class EngineProcess:
    """`python -m orchestrator`, exactly as `make run` starts it, on free ports."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "engine.log"

    def start(self, timeout_s: float = 180, wait_healthy: bool = True) -> EngineProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "ENGINE_PORT": str(self.port),
            "ENGINE_HOST": "127.0.0.1",
            "ENGINE_DATA_DIR": str(self.workdir / "data"),
            "ENGINE_LOG_FORMAT": "json",
            "ENGINE_TRITON_GRPC_PORT": str(free_port()),
            "ENGINE_TRITON_HTTP_PORT": str(free_port()),
            "ENGINE_TRITON_METRICS_PORT": str(free_port()),
            # WebRTC on loopback only: host candidates on 127.0.0.1, remote ones accepted there
            "ENGINE_WEBRTC_HOST_ADDRESSES": '["127.0.0.1"]',
            "ENGINE_WEBRTC_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
            **self.env,
        }
        self.process = spawn([sys.executable, "-m", "orchestrator"], self.log, cwd=ROOT, env=env)
        path = "/health" if wait_healthy else "/health/live"
        wait_ready(answers_ok(self.base_url + path), self.process, self.log, timeout_s, path)
        return self

    def wait_healthy(self, timeout_s: float = 180) -> None:
        assert self.process is not None
        ready = answers_ok(self.base_url + "/health")
        wait_ready(ready, self.process, self.log, timeout_s, "/health")

    def stop(self) -> int:
        return stop_process(self.process)

    def stopped_cleanly(self) -> bool:
        """Exited on its own or by SIGTERM (uvicorn re-raises it) after an orderly shutdown."""
        code = self.process.returncode if self.process else None
        return code in (0, -signal.SIGTERM) and '"msg": "engine stopped"' in self.log.read_text()

    def health(self) -> httpx.Response:
        return httpx.get(self.base_url + "/health", timeout=10)

    def create_session(
        self,
        tutor_id: int = 1,
        student_id: int | str = 123,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        return create_session(self.base_url, tutor_id, student_id, headers, **extra)

    def ws_url(self, connection_id: str, token: str | None, proxied: bool = True) -> str:
        prefix = "/ws/ws/" if proxied else "/ws/"
        url = self.base_url.replace("http://", "ws://") + prefix + connection_id
        return url + (f"?token={token}" if token is not None else "")
