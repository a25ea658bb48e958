"""The ASR model (Whisper-base, ONNX), called over gRPC on the real Triton server."""

from __future__ import annotations

import asyncio
from collections import Counter

import numpy as np
import numpy.typing as npt
import pytest

from benchmarks.harness.scoring import wer
from benchmarks.harness.speech import espeak_speech, piper_speech
from benchmarks.harness.triton_stats import counts_after, settled_counts, together
from media.audio import resample
from orchestrator.triton_client import TritonClient, TritonError
from triton_ops.contracts import ASR

pytestmark = pytest.mark.serving


def request(pcm: npt.NDArray[np.float32], language: str = "") -> dict[str, npt.NDArray[np.generic]]:
    return {
        "AUDIO": pcm.reshape(1, -1),
        "LANGUAGE": np.array([[language.encode()]], dtype=np.object_),
    }


async def transcribe(
    client: TritonClient, pcm: npt.NDArray[np.float32], language: str = ""
) -> dict[str, object]:
    out = await client.infer(ASR, request(pcm, language))
    return {
        "text": out["TEXT"][0][0].decode(),
        "language": out["DETECTED_LANGUAGE"][0][0].decode(),
        "no_speech": float(out["NO_SPEECH_PROB"][0][0]),
        "logprob": float(out["AVG_LOGPROB"][0][0]),
    }


SENTENCE = "Plants use sunlight to turn water and air into food."


async def test_our_voice_is_transcribed_and_its_language_detected(client: TritonClient) -> None:
    heard = await transcribe(client, resample(*piper_speech(SENTENCE, varied=False), 16000))
    assert heard["language"] == "en"
    assert wer(SENTENCE, str(heard["text"])) <= 0.1, heard
    assert float(heard["no_speech"]) < 0.3  # type: ignore[arg-type]


async def test_a_voice_we_did_not_synthesize_is_transcribed(client: TritonClient) -> None:
    sentence = "The moon goes around the earth once a month."
    heard = await transcribe(client, resample(*espeak_speech(sentence, "en-us"), 16000), "en")
    assert wer(sentence, str(heard["text"])) <= 0.3, heard


async def test_silence_reads_as_no_speech(client: TritonClient) -> None:
    heard = await transcribe(client, np.zeros(32000, dtype=np.float32))
    assert float(heard["no_speech"]) > 0.6  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pcm", "language", "reason"),
    [
        (np.zeros(800, dtype=np.float32), "", "at least 0.1 s"),
        (np.zeros(16000 * 31, dtype=np.float32), "", "the limit is 30 s"),
        (np.full(16000, np.nan, dtype=np.float32), "", "NaN"),
        (np.zeros(16000, dtype=np.float32), "klingon", "not one Whisper knows"),
    ],
)
async def test_bad_requests_fail_alone(
    client: TritonClient, pcm: npt.NDArray[np.float32], language: str, reason: str
) -> None:
    good = resample(*piper_speech("Good morning."), 16000)
    long = np.tile(good, 25 * 16000 // len(good))  # decoding it keeps the model busy
    results, ran = await together(
        client,
        "asr",
        lambda: client.infer(ASR, request(long, "en")),
        lambda: [client.infer(ASR, request(good, "en")), client.infer(ASR, request(pcm, language))],
    )
    assert (
        isinstance(results[1], TritonError)
        and reason in str(results[1])
        and not results[1].retryable
    )
    assert isinstance(results[0], dict) and "morning" in results[0]["TEXT"][0][0].decode().lower()
    assert ran == Counter({1: 1, 2: 1})  # the busy one alone, then the pair in one execution


async def test_utterances_of_different_lengths_share_a_batch(client: TritonClient) -> None:
    sentences = [
        "Yes.",
        "I think the answer is four.",
        "Can you explain that again more slowly?",
        "Thank you.",
    ]
    clips = [resample(*piper_speech(s), 16000) for s in sentences]
    before = await settled_counts(client, "asr")
    heard = await asyncio.gather(*(transcribe(client, clip, "en") for clip in clips))
    requests, executions = await counts_after(client, "asr", before, len(sentences))
    assert requests == len(sentences)
    assert executions < requests
    for sentence, result in zip(sentences, heard, strict=True):
        assert wer(sentence, str(result["text"])) <= 0.2, (sentence, result)
