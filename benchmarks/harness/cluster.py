"""Several engines on one machine, as an operator runs them: Debian's redis-server, one Triton,
N engines (`python -m orchestrator`, ENGINE_REDIS_URL) and HAProxy in front, on free
loopback ports; and a client that follows a student to their engine."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from benchmarks.harness.processes import (
    ROOT,
    EngineProcess,
    create_session,
    free_port,
    listens,
    spawn,
    stop_process,
    wait_ready,
)
from orchestrator.cluster.front_door import Backend, haproxy_config

# Tutors 40 and 41 answer through a fake OpenAI-compatible endpoint (harness/fake_llm.py): 40 at
# once, 41 after the fake's delay (a reply in flight long enough to kill or drain its engine).
LLM_TUTORS = """
[[tutors]]
id = 40
name = "Quick"
persona = "Tutor 40."
voice = "joe"
[tutors.llm]
base_url = "{url}"
model = "scripted"

[[tutors]]
id = 41
name = "Slow"
persona = "Tutor 41."
voice = "joe"
[tutors.llm]
base_url = "{url}"
model = "slow"
first_token_timeout_s = 10
"""


def tutors_with_llm(workdir: Path, llm_url: str) -> Path:
    """The shipped tutors plus tutors 40 and 41 on the LLM at `llm_url`."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "tutors.toml"
    path.write_text((ROOT / "config" / "tutors.toml").read_text() + LLM_TUTORS.format(url=llm_url))
    return path


@dataclass
class RedisProcess:
    """Debian's redis-server, in memory only."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing: `make system-deps` installs it")
        log = self.workdir / "redis.log"
        command = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.workdir),
        ]  # fmt: skip
        self.process = spawn(command, log)
        wait_ready(listens(self.port), self.process, log, 20, "redis-server")
        return self

    def stop(self) -> None:
        stop_process(self.process)


@dataclass
class FrontDoor:
    """HAProxy with the front door's configuration (orchestrator/cluster/front_door.py)."""

    workdir: Path
    engines: list[Backend]
    port: int = field(default_factory=free_port)
    stats_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FrontDoor:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            raise RuntimeError("haproxy is missing: `make system-deps` installs it")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "haproxy.cfg"
        config.write_text(
            haproxy_config(
                self.engines, f"127.0.0.1:{self.port}", stats=f"127.0.0.1:{self.stats_port}"
            )
        )
        log = self.workdir / "haproxy.log"
        self.process = spawn([binary, "-db", "-f", str(config)], log)
        wait_ready(listens(self.port), self.process, log, 20, "haproxy")
        return self

    def up(self) -> dict[str, bool]:
        """Which engines HAProxy's checks see up now (its stats, as CSV)."""
        rows = httpx.get(f"http://127.0.0.1:{self.stats_port}/;csv", timeout=5).text.splitlines()
        header = rows[0].lstrip("# ").split(",")
        states = {}
        for row in rows[1:]:
            values = dict(zip(header, row.split(","), strict=False))
            if values.get("pxname") == "engines" and values.get("svname") not in (
                "FRONTEND",
                "BACKEND",
            ):
                states[values["svname"]] = values.get("status", "").startswith("UP")
        return states

    def stop(self) -> None:
        stop_process(self.process)


@dataclass
class Cluster:
    """`engines` engines sharing one Redis and one Triton behind one front door."""

    workdir: Path
    triton_url: str
    size: int = 3
    env: dict[str, str] = field(default_factory=dict)
    redis: RedisProcess | None = None
    front: FrontDoor | None = None
    engines: dict[str, EngineProcess] = field(default_factory=dict)

    def start(self) -> Cluster:
        self.redis = RedisProcess(self.workdir / "redis").start()
        ids = [f"engine-{i}" for i in range(1, self.size + 1)]
        ports = {engine_id: free_port() for engine_id in ids}
        self.front = FrontDoor(
            self.workdir / "haproxy", [Backend(e, f"127.0.0.1:{ports[e]}") for e in ids]
        )
        secret = secrets.token_urlsafe(48)
        for engine_id in ids:
            self.engines[engine_id] = EngineProcess(
                self.workdir / engine_id,
                port=ports[engine_id],
                env={
                    "ENGINE_TRITON_URL": self.triton_url,
                    "ENGINE_REDIS_URL": self.redis.url,
                    "ENGINE_ENGINE_ID": engine_id,
                    "ENGINE_PUBLIC_URL": f"ws://127.0.0.1:{self.front.port}/e/{engine_id}",
                    "ENGINE_SECRET_KEY": secret,
                    "ENGINE_KNOWLEDGE_DIR": str(self.workdir / "knowledge"),
                    "ENGINE_PHOTO_AVATARS_DIR": str(self.workdir / "avatars"),
                    "ENGINE_KEEP_WARM_S": "0",
                    **self.env,
                },
            )
        for engine in self.engines.values():
            engine.start(wait_healthy=False)
        for engine in self.engines.values():
            engine.wait_healthy()
        self.front.start()
        self.wait_up(set(ids))
        return self

    @property
    def base_url(self) -> str:
        assert self.front is not None
        return self.front.base_url

    def wait_up(self, engines: set[str], timeout_s: float = 20) -> None:
        """Until HAProxy sees exactly `engines` up."""
        assert self.front is not None
        deadline = time.monotonic() + timeout_s
        while {e for e, up in self.front.up().items() if up} != engines:
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy sees {self.front.up()}, not {engines} up")
            time.sleep(0.1)

    def kill(self, engine_id: str) -> None:
        """SIGKILL: the engine dies mid-whatever, leaving its heartbeat to lapse."""
        process = self.engines[engine_id].process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        for engine in self.engines.values():
            engine.stop()
        if self.front is not None:
            self.front.stop()
        if self.redis is not None:
            self.redis.stop()

    def create_session(self, student_id: int | str, tutor_id: int = 1) -> dict[str, Any]:
        return create_session(self.base_url, tutor_id, student_id)


def engine_of(url: str) -> str:
    """The engine an engine_url names (…/e/<engine_id>/ws/…)."""
    return url.split("/e/", 1)[1].split("/", 1)[0]


@dataclass
class Student:
    """A client as a browser would be: it connects to its engine_url, goes where an
    `engine_moved` error sends it, and connects again when its engine goes away."""

    url: str  # engine_url, for the socket's connection id
    token: str
    hops: list[str] = field(default_factory=list)  # every engine_url it connected to
    reconnects: int = 0

    @property
    def engine(self) -> str:
        return engine_of(self.url)

    async def _connect(self, deadline: float) -> ClientConnection:
        while True:
            try:
                ws = await connect(f"{self.url}?token={self.token}", open_timeout=5)
            except (OSError, InvalidStatus, TimeoutError, ConnectionClosed):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
                continue
            self.hops.append(self.url)
            return ws

    async def open(
        self, timeout_s: float = 60, **message: Any
    ) -> tuple[ClientConnection, dict[str, Any]]:
        """Sends `message` on a socket to the student's engine; returns the socket, still open,
        and the first answer that is not a progress note. On `engine_moved` it goes to the
        engine named; on a lost socket (its engine died or drains) it connects again; either
        way it asks again."""
        deadline = time.monotonic() + timeout_s
        while True:
            ws = await self._connect(deadline)
            try:
                await ws.send(json.dumps(message))
                while True:
                    remaining = deadline - time.monotonic()
                    answer = json.loads(await asyncio.wait_for(ws.recv(), remaining))
                    if answer["type"] not in ("thinking", "listening"):
                        break
            except ConnectionClosed:
                self.reconnects += 1
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
                continue
            if answer.get("code") != "engine_moved":
                return ws, answer
            await ws.close()
            self.url = answer.get("engine_url") or self.url
            await asyncio.sleep(0.1)

    async def ask(self, timeout_s: float = 60, **message: Any) -> dict[str, Any]:
        ws, answer = await self.open(timeout_s, **message)
        await ws.close()
        return answer
