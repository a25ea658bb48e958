"""Time from a `text` message sent to the spoken reply received, through the whole engine.

    .venv/bin/python -m benchmarks.reply_latency [--questions 10] [--engine-url http://host:9000]
        [--avatar avatar_tutor_13 | --photo]

Without --engine-url it starts Triton and the engine itself (as `make run` does).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from benchmarks.common import RESULTS, summary_ms
from benchmarks.harness import portraits
from benchmarks.harness.client import ask, wav_info
from benchmarks.harness.processes import EngineProcess

QUESTIONS = [
    "What is photosynthesis?",
    "Why is the sky blue?",
    "How do magnets work?",
    "What is a fraction?",
    "Why do we have seasons?",
]


@contextlib.contextmanager
def engine_at(url: str | None) -> Iterator[str]:
    if url:
        yield url.rstrip("/")
        return
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as workdir:
        engine = EngineProcess(Path(workdir)).start()
        try:
            yield engine.base_url
        finally:
            engine.stop()


async def run(base_url: str, questions: int, avatar: str | None) -> dict[str, object]:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{base_url}/v1/sessions", json={"tutor_id": 1, "student_id": 1})
    session = response.json()
    ws_url = f"{session['engine_url']}?token={session['engine_token']}"
    latencies: list[float] = []
    speech: list[float] = []
    extra: dict[str, Any] = {"avatar_id": avatar} if avatar else {}
    async with connect(ws_url, max_size=None) as ws:
        await ask(ws, type="text", content="Hello!", **extra)  # warm-up
        for n in range(questions):
            started = time.perf_counter()
            reply = await ask(ws, type="text", content=QUESTIONS[n % len(QUESTIONS)], **extra)
            latencies.append(time.perf_counter() - started)
            speech.append(wav_info(reply["audio"])[1])
    return {
        "reply": "video" if avatar else "text",
        "questions": questions,
        "speech_s_mean": round(sum(speech) / len(speech), 2),
        **summary_ms(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--engine-url")
    parser.add_argument("--avatar", help="ask for video replies of this avatar")
    parser.add_argument(
        "--photo", action="store_true", help="video replies of a photo avatar made here first"
    )
    args = parser.parse_args()
    with engine_at(args.engine_url) as base_url:
        avatar = portraits.upload_astronaut(base_url) if args.photo else args.avatar
        report = asyncio.run(run(base_url, args.questions, avatar))
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "reply_latency_video.json" if args.avatar else "reply_latency.json"
    name = "reply_latency_photo.json" if args.photo else name
    (RESULTS / name).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
