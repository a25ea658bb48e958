"""Soak: live WebRTC users talking to one engine for a long time, and what drifts or leaks.

    .venv/bin/python -m benchmarks.soak [--users 4] [--minutes 60] [--reply-every 20]

Starts the engine as `make run` does (embedded Triton; loopback ICE). Each user, an aiortc
client, asks a question every ~20 s (jittered), barges in on every third reply, reconnects
(new socket, new offer) every ~10 minutes (a third of a shorter run) and deletes its session
and opens a new one every other time. Halfway, tritonserver is killed (SIGKILL) and the engine
must bring it back.
Every 10 s: the engine's and Triton's (with its model processes) resident memory, the engine's
open file descriptors and asyncio tasks, and each stream's video frame rate. Every reply: its
outcome, text → first speech heard at the client, and the A/V offset at the client (speech
onset on the audio clock against the mouth's opening on the video clock) — drift would show
as that offset growing. Results: benchmarks/results/soak.{json,md,png} (or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from benchmarks.common import RESULTS, pyplot
from benchmarks.harness.client import receive, send
from benchmarks.harness.processes import EngineProcess, descendants
from benchmarks.harness.webrtc_client import LiveClient
from benchmarks.webrtc_load import onset, sample

QUESTIONS = (
    "What is photosynthesis?",
    "What is a planet?",
    "Why do we have seasons?",
    "What is gravity?",
    "How do plants drink water?",
    "What is the water cycle?",
)
OUTCOMES = ("text", "interrupted", "error", "timeout")


@dataclass
class Sample:
    t_s: float
    engine_rss_mb: float
    engine_fds: int
    engine_tasks: int
    triton_rss_mb: float
    fps_min: float | None


@dataclass
class Reply:
    t_s: float
    user: int
    outcome: str
    code: str | None = None
    first_speech_s: float | None = None
    av_offset_ms: float | None = None
    barge_in_ms: float | None = None  # interrupt sent → the client's audio silent


@dataclass
class Run:
    began: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    clients: dict[int, LiveClient] = field(default_factory=dict)

    def now(self) -> float:
        return round(time.monotonic() - self.began, 2)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def sample_forever(engine: EngineProcess, run: Run, every_s: float) -> None:
    assert engine.process is not None
    pid = engine.process.pid
    frames: dict[int, int] = {}  # frames each client had at the last sample
    async with httpx.AsyncClient(timeout=10) as http:
        while True:
            await asyncio.sleep(every_s)
            triton = 0.0
            for child in descendants(pid):
                try:
                    triton += rss_mb(child)
                except OSError:
                    continue
            fps = []
            for client in list(run.clients.values()):
                if id(client) in frames:  # a client that just connected counts from now on
                    fps.append((client.video_frames - frames[id(client)]) / every_s)
                frames[id(client)] = client.video_frames
            text = (await http.get(engine.base_url + "/metrics")).text
            tasks = sample(text, "tutor_engine_asyncio_tasks")
            run.samples.append(
                Sample(
                    run.now(),
                    round(rss_mb(pid), 1),
                    len(os.listdir(f"/proc/{pid}/fd")),
                    int(tasks) if tasks is not None else -1,
                    round(triton, 1),
                    round(min(fps), 2) if fps else None,
                )
            )


def av_offset_ms(client: LiveClient, sent: float) -> tuple[float | None, float | None]:
    """(first speech after `sent` in seconds, A/V offset in ms) as the client saw them."""
    loud = next((r for r in client.audio if r.arrived >= sent and r.value > 0.01), None)
    if loud is None:
        return None, None
    video = [r for r in client.video if r.arrived >= sent]
    rest = float(np.median([r.value for r in video[:5]])) if video else 0.0
    mouth = onset([r.media_s for r in video], [r.value for r in video], rest + 150)
    offset = None if mouth is None else round((mouth - loud.media_s) * 1000, 1)
    return round(loud.arrived - sent, 3), offset


async def quiet(client: LiveClient, limit_s: float) -> None:
    """Until the client has heard silence for half a second (at most `limit_s`)."""
    for _ in range(int(limit_s / 0.1)):
        recent = [r for r in client.audio if r.arrived >= time.monotonic() - 0.5]
        if recent and all(r.value <= 0.01 for r in recent):
            return
        await asyncio.sleep(0.1)


async def barge_in_ms(
    ws: ClientConnection, client: LiveClient, session_id: str, sent: float
) -> float | None:
    """Interrupts the reply while it is heard; how long until the client's audio is silent."""
    for _ in range(100):
        if client.first_speech_after(sent) is not None:
            break
        await asyncio.sleep(0.05)
    else:
        return None
    await asyncio.sleep(0.5)
    cut = time.monotonic()
    await send(ws, type="interrupt", engine_session_id=session_id)
    for _ in range(100):
        await asyncio.sleep(0.02)
        after = [r for r in client.audio if r.arrived >= cut]
        loud = [i for i, r in enumerate(after) if r.value > 0.01]
        silent_from = loud[-1] + 1 if loud else 0
        if len(after) - silent_from >= 5:  # 100 ms of silence since
            return round((after[silent_from].arrived - cut) * 1000, 1)
    return None


async def outcome(ws: ClientConnection, timeout_s: float) -> tuple[str, str | None]:
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await receive(ws, timeout_s=left)
        except TimeoutError:
            break
        if message["type"] in ("text", "interrupted"):
            return message["type"], message.get("reason")
        if message["type"] == "error":
            return "error", message.get("code")
    return "timeout", None


async def user_loop(
    engine: EngineProcess, run: Run, user: int, end: float, every_s: float, rng: random.Random
) -> None:
    student, asked, connections = 9000 + user, 0, 0
    session = await asyncio.to_thread(engine.create_session, student_id=student)
    reconnect_s = min(600.0, (end - time.monotonic()) / 3) * (0.8 + 0.4 * rng.random())
    while time.monotonic() < end:
        async with connect(
            engine.ws_url(f"user_{student}", session["engine_token"]), max_size=None
        ) as ws:
            client = LiveClient()
            run.clients[user] = client
            await client.connect(ws, student)
            until = min(end, time.monotonic() + reconnect_s)
            while time.monotonic() < until - every_s / 2:
                await asyncio.sleep(every_s * (0.75 + 0.5 * rng.random()))
                await quiet(client, 15.0)  # the last reply has finished playing
                sent = time.monotonic()
                client.forget_before(sent - 5)
                await send(
                    ws,
                    type="text_webrtc",
                    content=QUESTIONS[asked % len(QUESTIONS)],
                    user_id=student,
                    engine_session_id=session["session_id"],
                )
                asked += 1
                result, code = await outcome(ws, 60)
                barge_in = None
                if asked % 3 == 0:  # the student barges in once the tutor is heard
                    barge_in = await barge_in_ms(ws, client, session["session_id"], sent)
                await asyncio.sleep(3.0)  # let the speech and the mouth reach the client
                first, offset = av_offset_ms(client, sent)
                run.replies.append(
                    Reply(round(sent - run.began, 2), user, result, code, first, offset, barge_in)
                )
            await client.close()
            run.clients.pop(user, None)
        connections += 1
        run.events.append({"t_s": run.now(), "user": user, "event": "reconnect"})
        if connections % 2 == 0:
            async with httpx.AsyncClient(timeout=10) as http:
                await http.delete(f"{engine.base_url}/v1/sessions/{session['session_id']}")
            session = await asyncio.to_thread(engine.create_session, student_id=student)
            run.events.append({"t_s": run.now(), "user": user, "event": "new session"})


async def restart_triton(engine: EngineProcess, run: Run, at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    async with httpx.AsyncClient(timeout=10) as http:
        pid = (await http.get(engine.base_url + "/health")).json()["triton"]["pid"]
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        run.events.append({"t_s": run.now(), "event": "tritonserver killed", "pid": pid})
        for _ in range(1200):
            await asyncio.sleep(0.25)
            if (await http.get(engine.base_url + "/health")).status_code == 200:
                break
    run.events.append(
        {"t_s": run.now(), "event": "healthy again", "after_s": round(time.monotonic() - killed, 1)}
    )


def windows(run: Run, count: int) -> list[dict[str, Any]]:
    """The run cut into `count` equal windows: what each held."""
    span = max([s.t_s for s in run.samples] + [r.t_s for r in run.replies] + [1.0])
    rows = []
    for k in range(count):
        lo, hi = span * k / count, span * (k + 1) / count
        samples = [s for s in run.samples if lo <= s.t_s < hi or (k == count - 1 and s.t_s == hi)]
        replies = [r for r in run.replies if lo <= r.t_s < hi]
        firsts = [r.first_speech_s for r in replies if r.first_speech_s is not None]
        barge_ins = [r.barge_in_ms for r in replies if r.barge_in_ms is not None]
        offsets = [abs(r.av_offset_ms) for r in replies if r.av_offset_ms is not None]
        fps = [s.fps_min for s in samples if s.fps_min is not None]
        rows.append(
            {
                "from_min": round(lo / 60, 1),
                "to_min": round(hi / 60, 1),
                "engine_rss_mb": max((s.engine_rss_mb for s in samples), default=None),
                "triton_rss_mb": max((s.triton_rss_mb for s in samples), default=None),
                "engine_fds": max((s.engine_fds for s in samples), default=None),
                "engine_tasks": max((s.engine_tasks for s in samples), default=None),
                "fps_min": min(fps, default=None),
                "fps_median": statistics.median(fps) if fps else None,
                "replies": {o: sum(r.outcome == o for r in replies) for o in OUTCOMES},
                "first_speech_ms_median": round(statistics.median(firsts) * 1000)
                if firsts
                else None,
                "first_speech_ms_max": round(max(firsts) * 1000) if firsts else None,
                "av_offset_ms_abs_median": statistics.median(offsets) if offsets else None,
                "av_offset_ms_abs_max": max(offsets) if offsets else None,
                "barge_in_ms_max": max(barge_ins) if barge_ins else None,
            }
        )
    return rows


def report(run: Run, settings: dict[str, Any], out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    rows = windows(run, 6)
    result = {
        "settings": settings,
        "windows": rows,
        "events": run.events,
        "samples": [asdict(s) for s in run.samples],
        "replies": [asdict(r) for r in run.replies],
    }
    (out / "soak.json").write_text(json.dumps(result, indent=1))
    lines = [
        f"{settings['users']} live users, {settings['minutes']} min, a question every "
        f"~{settings['reply_every_s']} s each; events: "
        + "; ".join(
            f"{e['event']} at {e['t_s'] / 60:.1f} min"
            + (f" (after {e['after_s']} s)" if "after_s" in e else "")
            for e in run.events
            if "user" not in e
        ),
        "",
        "| minutes | engine RSS | Triton RSS | engine FDs | engine tasks | fps/stream min (median) "
        "| replies: text / interrupted / error / timeout | first speech median, max "
        "| abs A/V offset median, max | barge-in → silence, max |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        counts = " / ".join(str(row["replies"][o]) for o in OUTCOMES)
        lines.append(
            f"| {row['from_min']}–{row['to_min']} | {row['engine_rss_mb']} MB "
            f"| {row['triton_rss_mb']} MB | {row['engine_fds']} | {row['engine_tasks']} "
            f"| {row['fps_min']} ({row['fps_median']}) | {counts} "
            f"| {row['first_speech_ms_median']} ms, {row['first_speech_ms_max']} ms "
            f"| {row['av_offset_ms_abs_median']} ms, {row['av_offset_ms_abs_max']} ms "
            f"| {row['barge_in_ms_max']} ms |"
        )
    (out / "soak.md").write_text("\n".join(lines) + "\n")
    plot(run, out / "soak.png")
    return result


def plot(run: Run, path: Path) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(4, 1, figsize=(9, 11), sharex=True)
    minutes = [s.t_s / 60 for s in run.samples]
    axes[0].plot(minutes, [s.engine_rss_mb for s in run.samples], label="engine RSS (MB)")
    axes[0].plot(minutes, [s.triton_rss_mb for s in run.samples], label="Triton RSS (MB)")
    axes[0].legend()
    axes[1].plot(minutes, [s.engine_fds for s in run.samples], label="engine FDs")
    axes[1].plot(minutes, [s.engine_tasks for s in run.samples], label="engine asyncio tasks")
    axes[1].legend()
    axes[2].plot(minutes, [s.fps_min or 0 for s in run.samples], label="lowest stream fps")
    axes[2].legend()
    heard = [r for r in run.replies if r.av_offset_ms is not None]
    axes[3].scatter([r.t_s / 60 for r in heard], [r.av_offset_ms for r in heard], s=8)
    axes[3].set_ylabel("A/V offset at the client (ms)")
    axes[3].set_xlabel("minutes")
    for event in run.events:
        if "user" not in event:
            for axis in axes:
                axis.axvline(event["t_s"] / 60, color="grey", linestyle=":")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


async def soak(users: int, minutes: float, every_s: float, out: Path) -> dict[str, Any]:
    settings = {"users": users, "minutes": minutes, "reply_every_s": every_s}
    with tempfile.TemporaryDirectory(prefix="soak-") as workdir:
        engine = EngineProcess(Path(workdir)).start(timeout_s=300)
        run = Run()
        end = time.monotonic() + minutes * 60
        sampler = asyncio.create_task(sample_forever(engine, run, 10.0))
        rng = random.Random(0)
        try:
            await asyncio.gather(
                restart_triton(engine, run, run.began + minutes * 30),
                *(user_loop(engine, run, n, end, every_s, rng) for n in range(users)),
            )
        finally:
            sampler.cancel()
            engine.stop()
        return report(run, settings, out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--reply-every", type=float, default=20.0, help="seconds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = asyncio.run(soak(args.users, args.minutes, args.reply_every, args.out))
    print((args.out / "soak.md").read_text())
    return result


if __name__ == "__main__":
    main()
