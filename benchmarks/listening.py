"""Hands-free voice, measured: the end of a student's speech → the first avatar audio their
client hears, split by stage, with 1 and 4 students asking at once (median and max over every
question of every run); barge-in (the student starts talking over the tutor → the tutor's
audio silent at the client); and the CPU one listening microphone costs, silent and while
the student talks, with the voice-activity network in the engine and in Triton.

    .venv/bin/python -m benchmarks.listening [--users 1,4] [--runs 3]

Runs itself in a loopback-only network namespace when it can. Each student is a real aiortc
peer whose microphone plays our voice asking a question (made at run time) over a quiet
room's noise floor. Results: benchmarks/results/listening.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import av
import numpy as np

from benchmarks.common import RESULTS, engine_on_triton, rerun_in_loopback
from benchmarks.harness.client import until
from benchmarks.harness.hands_free import Student, hands_free
from benchmarks.harness.processes import EngineProcess, TritonProcess
from benchmarks.harness.speech import piper_speech
from benchmarks.webrtc_load import tree_cpu_seconds
from orchestrator.listening import Ending, Listener, TurnRules
from orchestrator.triton_client import TritonClient
from orchestrator.vad import Audio, EngineVad, TritonVad, VoiceActivity
from triton_ops.repository import REPOSITORY

QUESTIONS = ("What is a magnet?", "Why is the sky blue?", "What is a volcano?", "How do bees fly?")
STAGES = ("end_of_turn", "asr", "answer", "total")
LABELS = {
    "end_of_turn": "end of speech → `speech_ended` (VAD pause + end-of-turn model)",
    "asr": "`thinking` → `transcription` (Whisper in Triton)",
    "answer": "`transcription` → first avatar audio (brain, TTS, lip-sync, first frame)",
    "total": "**end of speech → first avatar audio**",
}


def spoken_span(pcm: Audio, rate: int) -> tuple[float, float]:
    """Where speech is in `pcm` (seconds): the first and last 20 ms louder than -40 dBFS."""
    step = rate // 50
    levels = [float(np.sqrt(np.mean(pcm[i : i + step] ** 2))) for i in range(0, len(pcm), step)]
    loud = [i for i, level in enumerate(levels) if level > 0.01]
    return loud[0] / 50, (loud[-1] + 1) / 50


def log_stages(engine: EngineProcess, session_id: str, stage: str) -> list[float]:
    """Milliseconds of every `stage` the engine logged for a session, in order."""
    found = []
    for line in engine.log.read_text().splitlines():
        if f'"stage": "{stage}"' in line and session_id in line:
            found.append(float(json.loads(line)["ms"]))
    return found


async def ask_round(engine: EngineProcess, count: int, base: int) -> list[dict[str, float]]:
    """`count` students each speak one question at once; each one's stages, in seconds."""
    async with AsyncExitStack() as stack:
        students = [
            await stack.enter_async_context(hands_free(engine, base + n)) for n in range(count)
        ]
        await until(lambda: all(len(s.client.video) > 25 for s in students), 20, "streaming")
        ends = []
        for n, student in enumerate(students):
            pcm, rate = piper_speech(QUESTIONS[n % len(QUESTIONS)], varied=False)
            sent_until = student.microphone.say(pcm, rate)
            ends.append(sent_until - len(pcm) / rate + spoken_span(pcm, rate)[1])
        await until(lambda: all(s.of("text") for s in students), 90, "every question answered")
        await until(
            lambda: all(
                s.client.first_speech_after(end) for s, end in zip(students, ends, strict=True)
            ),
            30,
            "every answer heard",
        )
        rows = []
        for student, end in zip(students, ends, strict=True):
            heard = student.client.first_speech_after(end)
            ended, thinking = student.when("speech_ended"), student.when("thinking")
            transcribed = student.when("transcription")
            assert heard and ended and thinking and transcribed, student.messages
            tts = log_stages(engine, student.session_id, "tts")
            lipsync = log_stages(engine, student.session_id, "lipsync")
            rows.append(
                {
                    "end_of_turn": ended - end,
                    "asr": transcribed - thinking,
                    "answer": heard - transcribed,
                    "total": heard - end,
                    "tts_first_ms": tts[0] if tts else float("nan"),
                    "lipsync_first_ms": lipsync[0] if lipsync else float("nan"),
                    "transcription": student.of("transcription")[0]["content"],
                }
            )
        return rows


async def barge_in_round(engine: EngineProcess, student_id: int) -> float:
    """Seconds from the student's first word over the tutor to the tutor's silence."""
    async with hands_free(engine, student_id) as student:
        await student.ask_by_text("Tell me everything about magnets.")
        asked = time.monotonic()
        await until(lambda: talking_for(student, asked) > 1.0, 30, "the tutor talking")
        pcm, rate = piper_speech("What is a magnetic pole?", varied=False)
        onset = student.microphone.say(pcm, rate) - len(pcm) / rate + spoken_span(pcm, rate)[0]
        await until(lambda: student.of("interrupted"), 10, "interrupted")
        await until(lambda: silent_since(student, onset) is not None, 5, "silence")
        silence = silent_since(student, onset)
        assert silence is not None
        return silence - onset


def talking_for(student: Student, since: float) -> float:
    loud = [r.arrived for r in student.client.audio if r.arrived >= since and r.value > 0.01]
    return loud[-1] - loud[0] if loud else 0.0


def silent_since(student: Student, moment: float) -> float | None:
    """When the client's audio went quiet (five packets in a row) after `moment`."""
    audio = [r for r in student.client.audio if r.arrived >= moment]
    for i in range(len(audio) - 5):
        if all(r.value < 0.005 for r in audio[i : i + 5]):
            return audio[i].arrived
    return None


class Ignore:
    """Turns go nowhere: the CPU measured is listening alone, no replies."""

    turns = 0

    def speech_started(self) -> None:
        pass

    def turn_ended(self, audio: Audio, ending: Ending, spoken_until: float) -> None:
        self.turns += 1

    def turn_dropped(self, reason: str) -> None:
        pass

    def tutor_interrupted(self) -> None:
        pass


class Quiet:
    """A tutor who never talks."""

    speaking = False

    def recent_level(self, seconds: float) -> float:
        return 0.0

    def interrupt(self, reason: str) -> bool:
        return False


async def listening_cpu(
    make_vad: Callable[[], VoiceActivity], triton: TritonProcess, streams: int, talking: bool
) -> dict[str, float]:
    """Cores per microphone for `streams` microphones fed in real time for 10 s through the
    engine's own listening path (48 kHz → libswresample → VAD → turn-taking, end-of-turn
    model at each pause), in this process and in Triton. `talking`: our voice reading,
    else a quiet room (-60 dBFS)."""
    from orchestrator.listening import EndOfTurn

    client = TritonClient(triton.grpc_url, 30)
    vad = make_vad()
    text = " ".join(QUESTIONS * 2)
    pcm, rate = piper_speech(text, varied=False)
    mic = np.random.default_rng(0).standard_normal(10 * 48_000).astype(np.float32) * 0.001
    if talking:
        voice = av.AudioResampler(format="flt", layout="mono", rate=48_000)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = rate
        said = np.concatenate([f.to_ndarray().reshape(-1) for f in voice.resample(frame)])
        mic[: min(len(said), len(mic))] += said[: len(mic)]
    handlers = [Ignore() for _ in range(streams)]
    listeners = []
    for handler in handlers:
        listener = Listener(vad, EndOfTurn(client), TurnRules(max_s=30.0), Quiet())
        listener.handler = handler
        listeners.append(listener)
    resamplers = [av.AudioResampler(format="flt", layout="mono", rate=16_000) for _ in listeners]
    assert triton.process is not None
    began, cpu, served = time.monotonic(), time.process_time(), tree_cpu_seconds(triton.process.pid)
    for index in range(0, len(mic), 960):  # 20 ms packets, as the microphone track delivers
        piece = av.AudioFrame.from_ndarray(
            mic[index : index + 960].reshape(1, -1), format="flt", layout="mono"
        )
        piece.sample_rate = 48_000
        for listener, resampler in zip(listeners, resamplers, strict=True):
            for out in resampler.resample(piece):
                await listener.hear(out.to_ndarray().reshape(-1).astype(np.float32))
        await asyncio.sleep(max(0.0, began + (index + 960) / 48_000 - time.monotonic()))
    wall = time.monotonic() - began
    await asyncio.sleep(0.5)
    engine_cores = (time.process_time() - cpu) / wall / streams
    triton_cores = (tree_cpu_seconds(triton.process.pid) - served) / wall / streams
    await client.close()
    return {
        "engine_cores": round(engine_cores, 4),
        "triton_cores": round(triton_cores, 4),
        "turns": sum(h.turns for h in handlers) / streams,
    }


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values) * 1000),
        "max_ms": round(max(values) * 1000),
    }


async def measure(users: list[int], runs: int) -> dict[str, Any]:
    report: dict[str, Any] = {"users": {}, "cpu": {}, "runs": runs}
    with (
        tempfile.TemporaryDirectory(prefix="bench-listening-") as tmp,
        engine_on_triton(Path(tmp)) as (engine, triton),
    ):
        await ask_round(engine, 1, 90_000)  # warm-up
        for count in users:
            rows: list[dict[str, Any]] = []
            for run in range(runs):
                rows += await ask_round(engine, count, 100_000 * (run + 1) + 1000 * count)
            report["users"][count] = {
                "stages": {stage: summary([r[stage] for r in rows]) for stage in STAGES},
                "tts_first_ms": statistics.median(r["tts_first_ms"] for r in rows),
                "lipsync_first_ms": statistics.median(r["lipsync_first_ms"] for r in rows),
                "heard": sorted({r["transcription"] for r in rows}),
            }
            print(json.dumps({count: report["users"][count]}), flush=True)
        barge_ins = [await barge_in_round(engine, 200_000 + n) for n in range(runs)]
        report["barge_in"] = summary(barge_ins)
        print(json.dumps({"barge_in": report["barge_in"]}), flush=True)
        vads: dict[str, Callable[[], VoiceActivity]] = {
            "engine": lambda: EngineVad(REPOSITORY / "vad" / "1" / "silero_vad.onnx"),
            "triton": lambda: TritonVad(TritonClient(triton.grpc_url, 30)),
        }
        for where, make in vads.items():
            for talking in (False, True):
                key = f"{where}, {'talking' if talking else 'silent'}"
                report["cpu"][key] = await listening_cpu(make, triton, 4, talking)
                print(json.dumps({key: report["cpu"][key]}), flush=True)
    return report


def markdown(report: dict[str, Any]) -> str:
    counts = list(report["users"])
    lines = [
        f"{report['runs']} runs; median / max over every question of every run.",
        "",
        "| stage | " + " | ".join(f"{c} user(s)" for c in counts) + " |",
        "| --- |" + " --- |" * len(counts),
    ]
    for stage in STAGES:
        cells = [
            f"{report['users'][c]['stages'][stage]['median_ms']} / "
            f"{report['users'][c]['stages'][stage]['max_ms']} ms"
            for c in counts
        ]
        lines.append(f"| {LABELS[stage]} | " + " | ".join(cells) + " |")
    for key, label in (
        ("tts_first_ms", "TTS, first sentence"),
        ("lipsync_first_ms", "lip-sync, first sentence"),
    ):
        cells = [f"{report['users'][c][key]:.0f} ms" for c in counts]
        lines.append(f"| (inside the answer) {label}, median | " + " | ".join(cells) + " |")
    barge = report["barge_in"]
    lines += [
        "",
        f"Barge-in, the student's first word over the tutor → the tutor silent at the client: "
        f"{barge['median_ms']} ms median, {barge['max_ms']} ms max.",
        "",
        "| one listening microphone (4 at once, 10 s) | engine cores | Triton cores | turns |",
        "| --- | --- | --- | --- |",
    ]
    for key, cpu in report["cpu"].items():
        lines.append(
            f"| VAD in the {key} | {cpu['engine_cores']:.4f} | {cpu['triton_cores']:.4f} "
            f"| {cpu['turns']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", default="1,4")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if rerun_in_loopback("benchmarks.listening"):
        return
    report = asyncio.run(measure([int(u) for u in args.users.split(",")], args.runs))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "listening.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "listening.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
