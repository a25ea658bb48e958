"""Live WebRTC streams under load: N users at once, each an aiortc client on loopback.

    .venv/bin/python -m benchmarks.webrtc_load [--users 1,4,8]

Starts Triton and the engine (loopback-only ICE). For each N: offer → first video frame,
sustained frames per second per stream while idle, the engine's CPU per stream (from
/proc), then every user asks at once: text_webrtc sent → first speech heard at the client
(the headline latency), and the A/V offset (speech onset on the audio clock against the
mouth's first opening on the video clock). The first-speech latency is split per stage from
the engine's structured logs (AI engine, TTS, lip-sync) and per-frame render and VP8 encode
costs. Results: benchmarks/results/webrtc_load.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.codecs.vpx import Vp8Encoder
from websockets.asyncio.client import connect

from benchmarks.common import RESULTS, ROOT
from orchestrator.avatar.registry import load_avatar
from orchestrator.avatar.render import FaceAnimator
from tests.support.client import receive, send
from tests.support.processes import EngineProcess, TritonProcess
from tests.support.webrtc_client import LiveClient

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def onset(times: list[float], values: list[float], level: float) -> float | None:
    return next((t for t, v in zip(times, values, strict=True) if v > level), None)


async def one_round(engine: EngineProcess, users: int, base: int) -> dict[str, Any]:
    sockets, clients, sessions = [], [], []
    first_frames = []
    for n in range(users):
        student = base + n
        session = engine.create_session(student_id=student)
        ws = await connect(engine.ws_url(f"user_{student}", session["engine_token"]), max_size=None)
        client = LiveClient()
        started = time.monotonic()
        await client.connect(ws, student)
        sockets.append(ws)
        clients.append(client)
        sessions.append((student, session["session_id"]))
        while not client.video:  # noqa: ASYNC110 - the client appends from its own task
            await asyncio.sleep(0.01)
        first_frames.append(client.video[0].arrived - started)

    await asyncio.sleep(2.0)
    assert engine.process is not None
    cpu0, wall0 = cpu_seconds(engine.process.pid), time.monotonic()
    counts0 = [len(c.video) for c in clients]
    await asyncio.sleep(5.0)
    cpu1, wall1 = cpu_seconds(engine.process.pid), time.monotonic()
    fps = [(len(c.video) - k) / (wall1 - wall0) for c, k in zip(clients, counts0, strict=True)]
    idle_cpu = (cpu1 - cpu0) / (wall1 - wall0)

    sent = time.monotonic()
    for ws, (student, sid) in zip(sockets, sessions, strict=True):
        await send(
            ws,
            type="text_webrtc",
            content="What is a planet?",
            user_id=student,
            engine_session_id=sid,
        )
    for ws in sockets:
        await receive(ws, timeout_s=60)
    await asyncio.sleep(12.0)
    first_audio, offsets = [], []
    for client in clients:
        heard = [r for r in client.audio if r.arrived >= sent]
        loud = next((r for r in heard if r.value > 0.01), None)
        if loud is None:
            continue
        first_audio.append(loud.arrived - sent)
        video = [r for r in client.video if r.arrived >= sent]
        rest = np.median([r.value for r in video[:5]]) if video else 0.0
        mouth = onset([r.media_s for r in video], [r.value for r in video], rest + 150)
        if mouth is not None:
            offsets.append(mouth - loud.media_s)
    for client in clients:
        await client.close()
    for ws in sockets:
        await ws.close()
    return {
        "users": users,
        "offer_to_first_frame_ms": round(statistics.median(first_frames) * 1000, 1),
        "idle_fps_per_stream_min": round(min(fps), 2),
        "idle_fps_per_stream_median": round(statistics.median(fps), 2),
        "engine_cpu_per_stream_pct": round(100 * idle_cpu / users, 1),
        "first_speech_ms_median": round(statistics.median(first_audio) * 1000, 1)
        if first_audio
        else None,
        "first_speech_ms_max": round(max(first_audio) * 1000, 1) if first_audio else None,
        "av_offset_ms_median": round(statistics.median(offsets) * 1000, 1) if offsets else None,
        "streams_heard": len(first_audio),
    }


def stage_medians(log: Path, skip_lines: int = 0) -> dict[str, float]:
    """Per reply, the stages the first sentence went through; medians over the replies."""
    firsts: dict[tuple[str, str], float] = {}
    for line in log.read_text().splitlines()[skip_lines:]:
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        stage, session = entry.get("stage"), entry.get("session_id", "")
        if stage == "reply" and "first_audio_s" in entry:
            firsts[("first speech scheduled", session)] = entry["first_audio_s"] * 1000
        elif stage in ("ai_engine", "tts", "lipsync") and "ms" in entry:
            firsts.setdefault((f"{stage} (first sentence)", session), entry["ms"])
    names = sorted({name for name, _ in firsts})
    return {
        name: round(statistics.median(v for (n, _), v in firsts.items() if n == name), 1)
        for name in names
    }


def per_frame_costs() -> dict[str, float]:
    avatar = load_avatar(ROOT / "avatars" / "avatar_tutor_13")
    frames = FaceAnimator(avatar).idle(100)
    started = time.perf_counter()
    FaceAnimator(avatar).speak(
        np.random.default_rng(0).dirichlet(np.ones(15), 100).astype(np.float32)
    )
    render = (time.perf_counter() - started) / 100
    encoder = Vp8Encoder()
    started = time.perf_counter()
    for index, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = index * 3600, Fraction(1, 90000)
        encoder.encode(frame)
    encode = (time.perf_counter() - started) / len(frames)
    return {
        "render_ms_per_frame": round(render * 1000, 2),
        "vp8_encode_ms_per_frame": round(encode * 1000, 2),
    }


def markdown(report: dict[str, Any]) -> str:
    rows = report["rounds"]
    lines = [
        "| users | offer→first frame | idle fps/stream (min) | engine CPU/stream "
        "| text→first speech (median, max) | A/V offset |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['users']} | {r['offer_to_first_frame_ms']} ms | {r['idle_fps_per_stream_min']} "
            f"| {r['engine_cpu_per_stream_pct']} % "
            f"| {r['first_speech_ms_median']} ms, {r['first_speech_ms_max']} ms "
            f"| {r['av_offset_ms_median']} ms |"
        )
    lines += [
        "",
        "Where the first speech's time goes (medians per round, from the engine's logs):",
        "",
    ]
    for r in rows:
        stages = ", ".join(f"{k} {v} ms" for k, v in r["stages_ms"].items())
        lines.append(f"- {r['users']} users: {stages}")
    costs = report["per_frame_ms"]
    lines += [
        "",
        f"Per video frame: render {costs['render_ms_per_frame']} ms, "
        f"VP8 encode {costs['vp8_encode_ms_per_frame']} ms.",
        "",
    ]
    return "\n".join(lines)


async def main(users: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-webrtc-") as tmp:
        triton = TritonProcess(Path(tmp) / "triton").start()
        engine = EngineProcess(
            Path(tmp) / "engine", env={"ENGINE_TRITON_URL": triton.grpc_url}
        ).start()
        try:
            rounds = []
            for index, count in enumerate(users):
                lines = len(engine.log.read_text().splitlines())
                row = await one_round(engine, count, base=10_000 * (index + 1))
                row["stages_ms"] = stage_medians(engine.log, lines)
                rounds.append(row)
                print(json.dumps(rounds[-1]), flush=True)
            report = {"rounds": rounds, "per_frame_ms": per_frame_costs()}
        finally:
            engine.stop()
            triton.stop()
    print(markdown(report))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "webrtc_load.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "webrtc_load.md").write_text(markdown(report))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", default="1,4,8")
    args = parser.parse_args()
    asyncio.run(main([int(u) for u in args.users.split(",")]))
