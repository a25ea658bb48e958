"""Live WebRTC streams under load: N users at once, each an aiortc client on loopback.

    .venv/bin/python -m benchmarks.webrtc_load [--users 1,4,8] [--photo]

Starts Triton and the engine (loopback-only ICE). For each N: offer → first video frame,
sustained frames per second per stream while idle, the engine's CPU per stream (from
/proc), then every user asks at once: text_webrtc sent → first speech heard at the client
(the headline latency), and the A/V offset (speech onset on the audio clock against the
mouth's first opening on the video clock). The first-speech latency is split per stage from
the engine's structured logs (AI engine, TTS, lip-sync) and per-frame render and VP8 encode
costs; the server's CPU (engine, and Triton with its model processes) idle and while every
user's reply plays. Results: benchmarks/results/webrtc_load.{json,md,png}; with --photo, every
user sees a photo avatar made from the astronaut portrait (POST /v1/avatars), results in
webrtc_load_photo.{json,md,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy as the engine runs it (its __main__)

import httpx
import numpy as np
from aiortc.codecs.base import Encoder
from aiortc.codecs.vpx import MAX_BITRATE, Vp8Encoder
from av import VideoFrame
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from benchmarks.common import RESULTS, ROOT, engine_on_triton, pyplot
from benchmarks.harness import portraits
from benchmarks.harness.client import receive, send
from benchmarks.harness.processes import EngineProcess, TritonProcess, descendants
from benchmarks.harness.webrtc_client import LiveClient, Received, mouth_inside
from media.audio import PLAYBACK_RATE
from media.avatar.animator import animator_for
from media.avatar.photo.avatar import PhotoAvatar
from media.avatar.registry import AnyAvatar, load_avatar
from media.avatar.visemes import Weights
from webrtc.encoders import AvatarVp8Encoder
from webrtc.pictures import I420, to_yuv
from webrtc.stream import AvatarStream

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_cpu_seconds(root: int) -> float:
    """CPU time of `root` and every process under it (Triton's model stubs included)."""
    total = 0.0
    for pid in [root, *descendants(root)]:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
    return total


def sample(page: str, name: str) -> float | None:
    """The value of the unlabelled sample `name` on a Prometheus page (None: not on it)."""
    return next(
        (
            sample.value
            for family in text_string_to_metric_families(page)
            for sample in family.samples
            if sample.name == name and not sample.labels
        ),
        None,
    )


def frames_skipped(engine: EngineProcess) -> float:
    """Live video frames the engine has left out so far to catch up with the clock (its
    metric): frames missing at a client beyond these were lost on the way."""
    page = httpx.get(f"{engine.base_url}/metrics", timeout=10).text
    skipped = sample(page, "tutor_engine_live_frames_skipped_total")
    return skipped if skipped is not None else 0.0


def longest_pause(audio: list[Received], level: float = 0.01) -> float:
    """The longest silence (seconds of media time) between the first and the last speech of a
    reply: the voice's own pauses between sentences, or a sentence synthesized too late."""
    loud = [r.media_s for r in audio if r.value > level]
    return max((b - a for a, b in itertools.pairwise(loud)), default=0.0)


def onset(times: list[float], values: list[float], level: float) -> float | None:
    return next((t for t, v in zip(times, values, strict=True) if v > level), None)


class ServerCpu:
    """Cores used by the engine and by Triton (with its model processes) over a window, and by
    this benchmark's own simulated users (they share the machine)."""

    def __init__(self, engine: EngineProcess, triton: TritonProcess) -> None:
        assert engine.process is not None and triton.process is not None
        self.pids = {"engine": engine.process.pid, "triton": triton.process.pid}
        self.start()

    def start(self) -> None:
        self.began = time.monotonic()
        self.before = {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}
        self.before["clients"] = time.process_time()

    def cores(self) -> dict[str, float]:
        wall = time.monotonic() - self.began
        used = {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}
        used["clients"] = time.process_time()
        return {name: (seconds - self.before[name]) / wall for name, seconds in used.items()}


async def connected_without_stream(
    engine: EngineProcess, triton: TritonProcess, student: int
) -> dict[str, float]:
    """Server cores with one student connected and no live stream: the engine's own idle and
    keep-warm's requests (ENGINE_KEEP_WARM_S), what every round's streams sit on."""
    session = engine.create_session(student_id=student)
    async with connect(engine.ws_url(f"user_{student}", session["engine_token"])):
        await asyncio.sleep(2.0)
        cpu = ServerCpu(engine, triton)
        await asyncio.sleep(10.0)
        cores = cpu.cores()
    return {name: round(cores[name], 3) for name in ("engine", "triton")}


async def show_once(engine: EngineProcess, avatar: AnyAvatar, student: int) -> None:
    """One idle stream of `avatar` for 10 s, unmeasured: an engine makes an avatar's pictures
    at rest once (a few dozen, on the first stream that shows each pose) and every later
    stream of that avatar shares them, so the rounds measure streams as an engine that has
    shown the avatar before runs them."""
    session = engine.create_session(student_id=student)
    async with connect(engine.ws_url(f"user_{student}", session["engine_token"])) as ws:
        client = LiveClient()
        await client.connect(ws, student, avatar_id=avatar.avatar_id)
        await asyncio.sleep(10.0)
        await client.close()


async def one_round(
    engine: EngineProcess,
    triton: TritonProcess,
    users: int,
    base: int,
    avatar: AnyAvatar,
) -> dict[str, Any]:
    sockets, clients, sessions = [], [], []
    first_frames = []
    for n in range(users):
        student = base + n
        session = engine.create_session(student_id=student)
        ws = await connect(engine.ws_url(f"user_{student}", session["engine_token"]), max_size=None)
        client = LiveClient()
        if isinstance(avatar, PhotoAvatar):
            x, y, w, h = avatar.mouth_box
            client.mouth_box = (slice(y, y + h), slice(x, x + w))
            client.mouth_measure = mouth_inside
        started = time.monotonic()
        await client.connect(ws, student, avatar_id=avatar.avatar_id)
        sockets.append(ws)
        clients.append(client)
        sessions.append((student, session["session_id"]))
        while not client.video:  # noqa: ASYNC110 - the client appends from its own task
            await asyncio.sleep(0.01)
        first_frames.append(client.video[0].arrived - started)

    await asyncio.sleep(2.0)
    cpu = ServerCpu(engine, triton)
    wall0, counts0 = time.monotonic(), [len(c.video) for c in clients]
    skipped0 = frames_skipped(engine)
    await asyncio.sleep(5.0)
    idle = cpu.cores()
    skipped1 = frames_skipped(engine)
    window = time.monotonic() - wall0
    fps = [(len(c.video) - k) / window for c, k in zip(clients, counts0, strict=True)]

    cpu.start()
    counts1 = [len(c.video) for c in clients]
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
    speaking = cpu.cores()
    skipped2 = frames_skipped(engine)
    window = time.monotonic() - sent
    talk_fps = [(len(c.video) - k) / window for c, k in zip(clients, counts1, strict=True)]
    first_audio, offsets, pauses = [], [], []
    for client in clients:
        heard = [r for r in client.audio if r.arrived >= sent]
        loud = next((r for r in heard if r.value > 0.01), None)
        if loud is None:
            continue
        first_audio.append(loud.arrived - sent)
        pauses.append(longest_pause(heard))
        video = [r for r in client.video if r.arrived >= sent]
        rest = float(np.median([r.value for r in video[:5]])) if video else 0.0
        rise = 40 if isinstance(avatar, PhotoAvatar) else 150  # dark pixels, or changed ones
        mouth = onset([r.media_s for r in video], [r.value for r in video], rest + rise)
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
        "speaking_fps_per_stream_min": round(min(talk_fps), 2),
        "frames_skipped_by_server_idle": round(skipped1 - skipped0),
        "frames_skipped_by_server_speaking": round(skipped2 - skipped1),
        "engine_cpu_per_stream_pct": round(100 * idle["engine"] / users, 1),
        "idle_server_cores": round(idle["engine"] + idle["triton"], 2),
        "idle_triton_cores": round(idle["triton"], 3),
        "speaking_engine_cores": round(speaking["engine"], 2),
        "speaking_triton_cores": round(speaking["triton"], 2),
        "speaking_client_cores": round(speaking["clients"], 2),
        "first_speech_ms_median": round(statistics.median(first_audio) * 1000, 1)
        if first_audio
        else None,
        "first_speech_ms_max": round(max(first_audio) * 1000, 1) if first_audio else None,
        "av_offset_ms_median": round(statistics.median(offsets) * 1000, 1) if offsets else None,
        "longest_pause_ms_median": round(statistics.median(pauses) * 1000) if pauses else None,
        "longest_pause_ms_max": round(max(pauses) * 1000) if pauses else None,
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
            if "first_sentence_s" in entry:
                firsts[("first sentence spoken", session)] = entry["first_sentence_s"] * 1000
        elif stage in ("ai_engine", "tts", "lipsync") and "ms" in entry:
            firsts.setdefault((f"{stage} (first sentence)", session), entry["ms"])
    names = sorted({name for name, _ in firsts})
    return {
        name: round(statistics.median(v for (n, _), v in firsts.items() if n == name), 1)
        for name in names
    }


async def per_frame_costs(avatar: AnyAvatar) -> dict[str, float]:
    """Milliseconds one frame costs in each step a live stream takes, on one core, at rest
    (idle) and talking: the stream's picture (rendered and converted to YUV, or the avatar's
    shared picture at rest), the track's frame made from it, VP8 (ours, and aiortc's
    settings), at the bit rate a live stream here runs at within seconds (aiortc's most, which
    the receiver's estimate grants on loopback)."""

    def per_frame(step: Callable[[], object], count: int) -> float:
        started = time.perf_counter()
        step()
        return round((time.perf_counter() - started) / count * 1000, 2)

    talking = np.random.default_rng(0).dirichlet(np.ones(15), 100).astype(np.float32)
    warm = animator_for(avatar)
    idle_frames = warm.idle(100)
    talking_frames = warm.speak(talking)
    costs = await stream_costs(avatar, talking)
    for name, make in (("vp8", AvatarVp8Encoder), ("aiortc_vp8", Vp8Encoder)):
        for state, frames in (("idle", idle_frames), ("speaking", talking_frames)):
            encoder = make()
            encoder.target_bitrate = MAX_BITRATE
            yuv = [to_yuv(f) for f in frames]
            for index, frame in enumerate(yuv):
                frame.pts, frame.time_base = index * 3600, Fraction(1, 90000)

            def encode(encoder: Encoder = encoder, yuv: list[VideoFrame] = yuv) -> None:
                for frame in yuv:
                    encoder.encode(frame)

            costs[f"{name}_{state}"] = per_frame(encode, len(yuv))
    return costs


async def stream_costs(avatar: AnyAvatar, talking: Weights) -> dict[str, float]:
    """CPU (the renderer threads' included) per frame of a live stream of `avatar` once its
    pictures at rest are warm (another stream showed it for 90 s): the stream's pictures, as
    AvatarStream.video makes them, and the track's frame for each picture that differs from
    the one before; idle, then speaking `talking` (one row a frame)."""
    shown = AvatarStream(avatar, canvas=I420())
    for index in range(25 * 90):
        await shown.video(index)
    stream = AvatarStream(avatar, canvas=I420())
    costs = {}
    # the second time speaking is measured: the first, the new stream's animator draws its
    # stills for the nodding head
    for state, first in (("idle", 25 * 100), ("speaking", 25 * 110), ("speaking", 25 * 120)):
        if state == "speaking":
            stream._started = time.monotonic() - first * stream.frame_samples / PLAYBACK_RATE
            pcm = np.zeros(len(talking) * stream.frame_samples, dtype=np.float32)
            stream.say(pcm, PLAYBACK_RATE, talking)
            first = stream._queue[0].start // stream.frame_samples
        count = len(talking)
        started = time.process_time()
        pictures = [await stream.video(first + i) for i in range(count)]
        costs[f"picture_{state}"] = (time.process_time() - started) / count * 1000
        new = [p for i, p in enumerate(pictures) if i == 0 or p is not pictures[i - 1]]
        started = time.process_time()
        for picture in new:
            assert isinstance(picture, np.ndarray)
            VideoFrame.from_ndarray(picture, format="yuv420p")
        costs[f"frame_{state}"] = (time.process_time() - started) / count * 1000
    return {name: round(value, 2) for name, value in costs.items()}


def cpu_split(row: dict[str, Any], costs: dict[str, float], fps: int = 25) -> dict[str, Any]:
    """One stream's cores, idle and speaking: the measured steps at `fps` frames a second,
    and the rest of the engine's measured share (aiortc's per-packet work, pacing, the
    event loop, the brain); Triton's share."""
    split = {}
    for state, engine in (
        ("idle", row["engine_cpu_per_stream_pct"] / 100),
        ("speaking", row["speaking_engine_cores"] / row["users"]),
    ):
        steps = {
            "picture": costs[f"picture_{state}"] * fps / 1000,
            "frame": costs[f"frame_{state}"] * fps / 1000,
            "vp8": costs[f"vp8_{state}"] * fps / 1000,
        }
        steps["rest_of_engine"] = engine - sum(steps.values())
        triton = row["speaking_triton_cores"] if state == "speaking" else row["idle_triton_cores"]
        steps["triton"] = triton / row["users"]  # idle: keep-warm's requests (ENGINE_KEEP_WARM_S)
        split[state] = {name: round(value, 3) for name, value in steps.items()}
    return split


def markdown(report: dict[str, Any]) -> str:
    rows = report["rounds"]
    lines = [
        "| users | offer→first frame | fps/stream, min (idle / speaking) "
        "| frames the server skipped (idle / speaking, all streams) "
        "| engine CPU/stream idle | server cores idle / speaking (engine + Triton) "
        "| simulated users' cores | text→first speech (median, max) | A/V offset "
        "| longest pause in a reply (median, max) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['users']} | {r['offer_to_first_frame_ms']} ms "
            f"| {r['idle_fps_per_stream_min']} / {r['speaking_fps_per_stream_min']} "
            f"| {r.get('frames_skipped_by_server_idle')} / "
            f"{r.get('frames_skipped_by_server_speaking')} "
            f"| {r['engine_cpu_per_stream_pct']} % "
            f"| {r['idle_server_cores']} / "
            f"{round(r['speaking_engine_cores'] + r['speaking_triton_cores'], 2)} "
            f"({r['speaking_engine_cores']} + {r['speaking_triton_cores']}) "
            f"| {r['speaking_client_cores']} "
            f"| {r['first_speech_ms_median']} ms, {r['first_speech_ms_max']} ms "
            f"| {r['av_offset_ms_median']} ms "
            f"| {r.get('longest_pause_ms_median')} ms, {r.get('longest_pause_ms_max')} ms |"
        )
    connected = report.get("connected_without_stream")
    if connected is not None:
        base = connected["engine"] + connected["triton"]
        above = ", ".join(
            f"{r['users']} users {(r['idle_server_cores'] - base) / r['users']:.3f}" for r in rows
        )
        lines += [
            "",
            f"One student connected and no stream: engine {connected['engine']} + Triton "
            f"{connected['triton']} cores (keep-warm's requests are Triton's). Idle cores per "
            f"stream above that: {above}.",
        ]
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
        f"Per video frame, one core (idle / speaking): the stream's picture (render + YUV; at "
        f"rest, the avatar's shared one) {costs['picture_idle']} / {costs['picture_speaking']} "
        f"ms, the track's frame {costs['frame_idle']} / {costs['frame_speaking']} "
        f"ms, VP8 at {MAX_BITRATE / 1e6:g} Mbit/s {costs['vp8_idle']} / "
        f"{costs['vp8_speaking']} ms (aiortc's own settings: {costs['aiortc_vp8_idle']} / "
        f"{costs['aiortc_vp8_speaking']} ms).",
        "",
        "One stream's cores (each step at 25 frames/s; the rest of the engine's measured share "
        "is aiortc's packet work, pacing, the event loop and the brain):",
        "",
        "| users | state | picture | track frame | VP8 | rest of the engine | Triton | total |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        for state, split in cpu_split(r, costs).items():
            cells = " | ".join(
                f"{split[k]:.3f}" for k in ("picture", "frame", "vp8", "rest_of_engine", "triton")
            )
            lines.append(f"| {r['users']} | {state} | {cells} | {sum(split.values()):.3f} |")
    lines.append("")
    return "\n".join(lines)


def photo_avatar(engine: EngineProcess) -> PhotoAvatar:
    """The astronaut portrait, uploaded as a user would (POST /v1/avatars)."""
    avatar_id = portraits.upload_astronaut(engine.base_url)
    return PhotoAvatar.load(engine.workdir / "data" / "avatars" / avatar_id)


async def main(users: list[int], photo: bool) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-webrtc-") as tmp,
        engine_on_triton(Path(tmp)) as (engine, triton),
    ):
        avatar: AnyAvatar = (
            photo_avatar(engine) if photo else load_avatar(ROOT / "avatars" / "avatar_tutor_13")
        )
        connected = await connected_without_stream(engine, triton, 9_999)
        await show_once(engine, avatar, 9_998)
        rounds = []
        for index, count in enumerate(users):
            await asyncio.sleep(3.0)  # the last round's peers are gone
            lines = len(engine.log.read_text().splitlines())
            row = await one_round(engine, triton, count, 10_000 * (index + 1), avatar)
            row["stages_ms"] = stage_medians(engine.log, lines)
            rounds.append(row)
            print(json.dumps(rounds[-1]), flush=True)
        report = {
            "avatar": "photo (astronaut portrait)" if photo else avatar.avatar_id,
            "connected_without_stream": connected,
            "rounds": rounds,
            "per_frame_ms": await per_frame_costs(avatar),
        }
    print(markdown(report))
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "webrtc_load_photo" if photo else "webrtc_load"
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{name}.md").write_text(markdown(report))
    plot(report, RESULTS / f"{name}.png")


def plot(report: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    rows = report["rounds"]
    users = [r["users"] for r in rows]
    fig, (latency, fps, cpu) = plt.subplots(1, 3, figsize=(12, 3.6))
    latency.plot(users, [r["first_speech_ms_median"] for r in rows], "-o", label="median")
    latency.plot(users, [r["first_speech_ms_max"] for r in rows], "--s", label="max")
    latency.plot(users, [r["offer_to_first_frame_ms"] for r in rows], ":^", label="first frame")
    latency.set_ylabel("ms")
    latency.set_title("text → first speech heard")
    latency.legend(fontsize=8)
    fps.plot(users, [r["idle_fps_per_stream_min"] for r in rows], "-o", label="idle")
    fps.plot(users, [r["speaking_fps_per_stream_min"] for r in rows], "--s", label="speaking")
    fps.set_ylim(0, 30)
    fps.set_title("video fps per stream (slowest)")
    fps.legend(fontsize=8)
    engine = [r["speaking_engine_cores"] for r in rows]
    triton = [r["speaking_triton_cores"] for r in rows]
    cpu.bar([str(u) for u in users], engine, label="engine")
    cpu.bar([str(u) for u in users], triton, bottom=engine, label="Triton")
    cpu.set_title("server CPU cores while speaking")
    cpu.legend(fontsize=8)
    for axis in (latency, fps, cpu):
        axis.set_xlabel("simulated users")
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", default="1,4,8")
    parser.add_argument("--photo", action="store_true", help="a photo avatar, not a drawn one")
    args = parser.parse_args()
    asyncio.run(main([int(u) for u in args.users.split(",")], args.photo))
