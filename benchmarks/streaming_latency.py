"""First sentence vs whole reply: why replies are spoken sentence by sentence.

    .venv/bin/python -m benchmarks.streaming_latency [--word-ms 40] [--questions 5]

A loopback LLM (the real OpenAI streaming format) writes a 4-sentence, 70-word reply at
`--word-ms` per word, as a served model does. Over one live WebRTC session the benchmark
measures, per question: `text_webrtc` sent → first speech heard at the client, and → the
whole reply's text arriving (the earliest a not-streaming pipeline could start speaking).
Results: benchmarks/results/streaming_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect

from benchmarks.common import RESULTS
from benchmarks.harness.client import receive, send
from benchmarks.harness.fake_llm import FakeLLM
from benchmarks.harness.processes import EngineProcess, TritonProcess
from benchmarks.harness.webrtc_client import LiveClient

REPLY = (
    "Photosynthesis is how a plant makes its own food from light. "
    "Inside each leaf, tiny chloroplasts catch the energy of the sun. "
    "The plant mixes water from its roots with carbon dioxide from the air, "
    "and turns them into sugar. "
    "Oxygen is left over, and that is the oxygen we breathe, "
    "so think about that next time you walk in a park."
)
TUTORS = """
[voices.joe]
model = "tts"
language = "en"

[[tutors]]
id = 1
name = "Ms. Rivera"
persona = "A science tutor."
language = "en"
voice = "joe"
[tutors.llm]
base_url = "{url}"
model = "scripted"
"""


async def run(word_ms: float, questions: int) -> dict[str, float]:
    llm = FakeLLM(reply=REPLY, word_delay_s=word_ms / 1000).start()
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        (Path(tmp) / "tutors.toml").write_text(TUTORS.format(url=llm.base_url))
        triton = TritonProcess(Path(tmp) / "triton").start()
        env = {
            "ENGINE_TRITON_URL": triton.grpc_url,
            "ENGINE_TUTORS_FILE": str(Path(tmp) / "tutors.toml"),
        }
        engine = EngineProcess(Path(tmp) / "engine", env=env).start()
        first, whole = [], []
        try:
            session = engine.create_session(tutor_id=1, student_id=77)
            async with connect(
                engine.ws_url("user_77", session["engine_token"]), max_size=None
            ) as ws:
                client = LiveClient()
                await client.connect(ws, 77)
                await asyncio.sleep(1.0)
                for _ in range(questions + 1):  # the first one warms up
                    sent = time.monotonic()
                    await send(
                        ws,
                        type="text_webrtc",
                        content="How do plants make food?",
                        user_id=77,
                        engine_session_id=session["session_id"],
                    )
                    reply = await receive(ws, timeout_s=60)
                    text_at = time.monotonic()
                    while (heard := client.first_speech_after(sent)) is None:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                    first.append(heard - sent)
                    whole.append(text_at - sent)
                    assert reply["content"].startswith("Photosynthesis")
                    await asyncio.sleep(22)  # let it finish speaking
                await client.close()
        finally:
            engine.stop()
            triton.stop()
            llm.stop()
    first, whole = first[1:], whole[1:]
    return {
        "word_ms": word_ms,
        "questions": questions,
        "first_speech_ms_median": round(statistics.median(first) * 1000, 1),
        "whole_reply_ms_median": round(statistics.median(whole) * 1000, 1),
        "speech_starts_before_reply_is_written_ms": round(
            (statistics.median(whole) - statistics.median(first)) * 1000, 1
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--word-ms", type=float, default=40.0)
    parser.add_argument("--questions", type=int, default=3)
    args = parser.parse_args()
    report = asyncio.run(run(args.word_ms, args.questions))
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "streaming_latency.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
