"""`/metrics`: what a reply went through shows up in Prometheus, beside Triton's own metrics."""

from __future__ import annotations

import base64

import pytest
from websockets.asyncio.client import connect

from benchmarks.harness.client import ask, receive
from benchmarks.harness.processes import EngineProcess, TritonProcess
from benchmarks.harness.speech import encode, piper_speech
from tests.support.metrics import Samples, scrape

pytestmark = pytest.mark.serving

STAGES = ("asr", "ai_first_token", "tts", "tts_first_audio", "lipsync", "render", "encode")


def stage_count(metrics: Samples, stage: str) -> float:
    return metrics.get(("tutor_engine_stage_seconds_count", (("stage", stage),)), 0.0)


def inferences(triton: TritonProcess) -> dict[str, float]:
    """Triton's own count of inferences per model, from its metrics port."""
    metrics = scrape(f"http://127.0.0.1:{triton.metrics_port}/metrics")
    return {
        dict(labels)["model"]: value
        for (name, labels), value in metrics.items()
        if name.startswith("nv_inference_count")
    }


async def test_a_spoken_video_reply_is_timed_stage_by_stage(
    engine: EngineProcess, triton: TritonProcess
) -> None:
    before, triton_before = scrape(f"{engine.base_url}/metrics"), inferences(triton)
    session = engine.create_session(student_id=717)
    speech = base64.b64encode(encode(piper_speech("What is gravity?"), "wav")).decode()
    async with connect(
        engine.ws_url(session["session_id"], session["engine_token"]), max_size=None
    ) as ws:
        heard = await ask(ws, type="audio", data=speech, avatar_id="avatar_tutor_13")
        assert heard["type"] == "transcription", heard
        assert (await receive(ws))["type"] == "video"
        assert (await ask(ws, type="no_such_type"))["type"] == "error"
        during = scrape(f"{engine.base_url}/metrics")
    after, triton_after = scrape(f"{engine.base_url}/metrics"), inferences(triton)

    for stage in STAGES:
        assert stage_count(after, stage) > stage_count(before, stage), stage
    assert during[("tutor_engine_active_connections", ())] >= 1
    assert after[("tutor_engine_active_sessions", ())] >= 1
    replies = ("tutor_engine_replies_total", (("kind", "video"),))
    assert after[replies] == before.get(replies, 0.0) + 1
    errors = {k: v for k, v in after.items() if k[0] == "tutor_engine_errors_total"}
    assert sum(errors.values()) == 1 + sum(
        v for k, v in before.items() if k[0] == "tutor_engine_errors_total"
    )
    for model in ("asr", "tts", "lipsync"):  # engine: ENGINE_TRITON_URL = this Triton
        assert triton_after[model] > triton_before[model], model
