"""The lip-sync model over gRPC: viseme weights per video frame, for voices that are not ours."""

from __future__ import annotations

import asyncio
from collections import Counter

import numpy as np
import numpy.typing as npt
import pytest

from benchmarks.harness.speech import espeak_speech, piper_speech, silence
from benchmarks.harness.triton_stats import counts_after, settled_counts, together
from media.audio import resample
from media.avatar.visemes import INDEX, openness
from orchestrator.triton_client import TritonClient, TritonError
from triton_ops.contracts import LIPSYNC

pytestmark = pytest.mark.serving


async def visemes(client: TritonClient, pcm: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out = await client.infer(LIPSYNC, {"AUDIO": pcm.reshape(1, -1)})
    weights: npt.NDArray[np.float32] = out["VISEMES"][0]
    return weights


def loudness(pcm: npt.NDArray[np.float32], frames: int) -> npt.NDArray[np.float64]:
    span = 16000 // 25
    padded = np.pad(pcm, (0, max(0, frames * span - pcm.size)))[: frames * span]
    return np.sqrt((padded.reshape(frames, span).astype(np.float64) ** 2).mean(axis=1))


async def test_one_row_of_weights_per_video_frame(client: TritonClient) -> None:
    pcm = resample(*piper_speech("The sun is a star."), 16000)
    weights = await visemes(client, pcm)
    assert weights.shape == (round(pcm.size / 16000 * 25), 15)
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize("voice", ["en-us", "en-gb-scotland+f4"])
async def test_a_voice_we_did_not_synthesize_moves_the_mouth_with_the_sound(
    client: TritonClient, voice: str
) -> None:
    pcm = resample(
        *espeak_speech("Open the window, because it is very warm in here.", voice), 16000
    )
    pcm = np.concatenate([silence(0.5)[0], pcm, silence(0.5)[0]])
    weights = await visemes(client, pcm)
    opening = openness(weights)
    level = loudness(pcm, len(weights))
    assert np.corrcoef(opening, level)[0, 1] > 0.5
    assert weights[:10, INDEX["sil"]].mean() > 0.8  # the half second of silence before it
    assert opening[level > 0.3 * level.max()].mean() > 0.3


async def test_silence_keeps_the_mouth_shut(client: TritonClient) -> None:
    weights = await visemes(client, silence(2.0)[0])
    assert openness(weights).max() < 0.2


@pytest.mark.parametrize(
    ("pcm", "reason"),
    [
        (np.zeros(100, np.float32), "at least one video frame"),
        (np.full(3200, np.nan, np.float32), "NaN"),
    ],
)
async def test_bad_requests_fail_alone(
    client: TritonClient, pcm: npt.NDArray[np.float32], reason: str
) -> None:
    good = resample(*piper_speech("Fine."), 16000)
    long = np.tile(good, 55 * 16000 // len(good))
    results, ran = await together(
        client,
        "lipsync",
        lambda: visemes(client, long),
        lambda: [visemes(client, good), visemes(client, pcm)],
    )
    assert isinstance(results[1], TritonError) and reason in str(results[1])
    assert isinstance(results[0], np.ndarray)
    assert ran == Counter({1: 1, 2: 1})  # the busy one alone, then the pair in one execution


async def test_utterances_share_batches(client: TritonClient) -> None:
    clips = [
        resample(*piper_speech(s), 16000)
        for s in ("One.", "Two and three.", "Four, five and six.", "Seven.")
    ]
    before = await settled_counts(client, "lipsync")
    await asyncio.gather(*(visemes(client, c) for c in clips))
    requests, executions = await counts_after(client, "lipsync", before, len(clips))
    assert requests == len(clips) and executions < requests
