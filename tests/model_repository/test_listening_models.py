"""The listening models in Triton: Silero VAD (its state travelling with each chunk) agrees
with the same network run in the engine, chunk by chunk, and streams batch; smart-turn hears a
finished question as finished and a sentence that trails off as not, and turns batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from benchmarks.harness.speech import piper_speech
from benchmarks.harness.triton_stats import batch_sizes, settled_counts
from media.audio import resample
from orchestrator.listening import EndOfTurn
from orchestrator.triton_client import TritonClient
from orchestrator.vad import CHUNK, EngineVad, TritonVad, VadState
from triton_ops.contracts import TURN, VAD
from triton_ops.repository import REPOSITORY

pytestmark = pytest.mark.serving


def speech(text: str) -> np.ndarray:
    pcm, rate = piper_speech(text, varied=False)
    return resample(pcm, rate, 16_000)


async def batched(client: TritonClient, model: str, work: Callable[[], Awaitable[Any]]) -> Any:
    """Runs `work` until Triton ran a batch of more than one request (five tries)."""
    for _ in range(5):
        await settled_counts(client, model)
        before = await batch_sizes(client, model)
        result = await work()
        await settled_counts(client, model, quiet_s=0.2)
        ran = await batch_sizes(client, model)
        ran.subtract(before)
        if any(size > 1 and count > 0 for size, count in ran.items()):
            return result
    raise AssertionError(f"{model}: no batch formed: {ran}")


async def test_vad_in_triton_hears_what_the_engine_hears_and_streams_batch(
    client: TritonClient,
) -> None:
    audio = np.concatenate([np.zeros(8000, np.float32), speech("What is a magnet?")])
    chunks = [audio[i : i + CHUNK] for i in range(0, len(audio) - CHUNK, CHUNK)]
    engine, served = EngineVad(REPOSITORY / "vad" / "1" / "silero_vad.onnx"), TritonVad(client)
    local_state, served_state = VadState(), VadState()
    local = [await engine.speech(local_state, c) for c in chunks]
    remote = [await served.speech(served_state, c) for c in chunks]
    assert np.abs(np.array(local) - np.array(remote)).max() < 1e-4
    assert max(local[:10]) < 0.2 and max(local) > 0.9  # silence, then speech

    async def four_streams() -> list[list[float]]:
        states = [VadState() for _ in range(4)]
        heard: list[list[float]] = [[] for _ in range(4)]
        for chunk in chunks[:20]:
            probabilities = await asyncio.gather(*(served.speech(s, chunk) for s in states))
            for row, p in zip(heard, probabilities, strict=True):
                row.append(p)
        return heard

    for row in await batched(client, VAD.name, four_streams):
        assert np.abs(np.array(row) - np.array(local[:20])).max() < 1e-4  # no stream's state leaks


async def test_end_of_turn_hears_finished_and_unfinished_and_turns_batch(
    client: TritonClient,
) -> None:
    model = EndOfTurn(client)
    finished = await model.finished(speech("Can you explain how photosynthesis works?"))
    unfinished = await model.finished(speech("So what I was wondering is"))
    assert finished > 0.8 and unfinished < 0.2, (finished, unfinished)
    turns = [speech("What is a magnet?"), speech("So what I was wondering is")] * 3
    answers = await batched(
        client, TURN.name, lambda: asyncio.gather(*(model.finished(t) for t in turns))
    )
    assert answers[0] > 0.5 > answers[1] and np.ptp(answers[::2]) < 1e-4
    with pytest.raises(Exception, match="at least 1600"):
        await model.finished(np.zeros(100, np.float32))
