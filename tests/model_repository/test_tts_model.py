"""The TTS model, called over gRPC on the real Triton server."""

from __future__ import annotations

import asyncio
from collections import Counter

import numpy as np
import pytest

from benchmarks.harness.triton_stats import counts_after, settled_counts, together
from orchestrator.triton_client import TritonClient, TritonError
from triton_ops.contracts import TTS

pytestmark = pytest.mark.serving


def text(value: str) -> dict[str, np.ndarray]:
    return {"TEXT": np.array([[value.encode()]], dtype=np.object_)}


async def test_speech_comes_with_phonemes_and_durations_that_add_up(client: TritonClient) -> None:
    out = await client.infer(TTS, text("Hello there. Plants need light to grow!"))
    audio, phonemes, durations = out["AUDIO"][0], out["PHONEMES"][0], out["DURATIONS"][0]
    rate = int((await client.parameters("tts"))["sample_rate"])
    assert rate == 22050
    assert audio.dtype == np.float32 and 1.0 < len(audio) / rate < 6.0
    assert 0.3 < float(np.abs(audio).max()) <= 1.0
    assert len(phonemes) == len(durations) and durations.sum() == len(audio)
    symbols = [p.decode() for p in phonemes]
    assert symbols.count("^") == 2 and symbols.count("$") == 2  # two sentences
    assert symbols[0] == "^" and symbols[-1] == "$"
    # Speech is louder where phonemes are vowels than in the leading silence.
    assert float(np.abs(audio[: durations[0]]).mean()) < float(np.abs(audio).mean())


@pytest.mark.parametrize(
    ("bad", "reason"), [("   ", "empty"), ("x" * 2001, "limit"), ("...", "speakable")]
)
async def test_a_bad_request_gets_its_own_error_and_spares_its_batch(
    client: TritonClient, bad: str, reason: str
) -> None:
    long = " ".join(f"This is sentence number {n} of a long answer." for n in range(12))
    results, ran = await together(
        client,
        "tts",
        lambda: client.infer(TTS, text(long)),
        lambda: [
            client.infer(TTS, text("One good sentence.")),
            client.infer(TTS, text(bad)),
            client.infer(TTS, text("Another good sentence.")),
        ],
    )
    assert isinstance(results[1], TritonError) and reason in str(results[1])
    assert not results[1].retryable
    for good in (results[0], results[2]):
        assert isinstance(good, dict) and len(good["AUDIO"][0]) > 10_000
    assert ran == Counter({1: 1, 3: 1})  # the busy one alone, then the three in one execution


async def test_concurrent_requests_share_batches(client: TritonClient) -> None:
    before = await settled_counts(client, "tts")
    sentences = [f"This is sentence number {n}." for n in range(16)]
    results = await asyncio.gather(*(client.infer(TTS, text(s)) for s in sentences))
    requests, executions = await counts_after(client, "tts", before, 16)
    assert requests == 16
    assert executions < requests  # at least one batch held more than one request
    assert all(len(r["AUDIO"][0]) > 10_000 for r in results)


async def test_each_request_of_a_batch_is_answered_when_its_own_speech_is_ready(
    client: TritonClient,
) -> None:
    """One batch, run row by row on CPU: the first requests come back long before the last,
    instead of all waiting for the whole batch."""
    before = await settled_counts(client, "tts")
    started = asyncio.get_running_loop().time()
    finished: list[float] = []

    async def speak(n: int) -> None:
        await client.infer(TTS, text(f"Here is a sentence of some length, number {n}."))
        finished.append(asyncio.get_running_loop().time() - started)

    await asyncio.gather(*(speak(n) for n in range(8)))
    inferences, executions = await counts_after(client, "tts", before, 8)
    assert inferences == 8 and executions <= 2, (inferences, executions)  # batched
    assert min(finished) < 0.5 * max(finished), finished
