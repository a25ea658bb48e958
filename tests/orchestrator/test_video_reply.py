"""Lip-sync timing from our voices, and the `video` reply's clock."""

from __future__ import annotations

import numpy as np
import pytest

from media.avatar.visemes import INDEX, fit_frames
from media.speech import Speech
from orchestrator.lipsync import LipSync, alignment_weights, lead
from orchestrator.video_reply import frame_spans


def speech(seconds: float, rate: int = 22050) -> Speech:
    samples = int(seconds * rate)
    pcm = (0.3 * np.sin(np.arange(samples) * 2 * np.pi * 220 / rate)).astype(np.float32)
    third = samples // 3
    durations = np.array([third, third, samples - 2 * third], dtype=np.int32)
    return Speech("x", pcm, rate, ("^", "a", "$"), durations)


def test_alignment_weights_cover_each_frame_by_time() -> None:
    weights = alignment_weights(speech(1.25), fps=25, alphabet="ipa")  # "a" from 0.4167 s
    assert weights.shape == (31, 15)
    assert np.allclose(weights.sum(axis=1), 1.0)
    assert weights[15, INDEX["aa"]] == 1.0 and weights[2, INDEX["sil"]] == 1.0
    assert 0 < weights[10, INDEX["aa"]] < 1  # the frame the vowel starts in is shared


def test_a_reply_clock_never_drifts_from_its_audio() -> None:
    pieces = [speech(s) for s in (1.23, 0.97, 2.011, 0.55, 1.718)]
    total = sum(len(p.pcm) / p.sample_rate for p in pieces)
    spans = frame_spans(pieces, 25)
    assert sum(spans) == round(total * 25)
    assert fit_frames(np.ones((31, 15), np.float32), 30).shape == (30, 15)


class Unreachable:
    """A Triton client that must not be called."""

    async def infer(self, *args: object, **kwargs: object) -> dict[str, np.ndarray]:
        raise AssertionError("the lip-sync network was asked")


async def test_a_live_reply_s_first_sentence_waits_for_no_network() -> None:
    lipsync = LipSync(Unreachable(), 25, "model")  # type: ignore[arg-type]
    first = await lipsync.weights(speech(1.25), "en", first=True)
    assert np.array_equal(first, alignment_weights(speech(1.25), fps=25, alphabet="ipa"))
    heard_only = Speech("x", speech(1.25).pcm, 22050, (), np.zeros(0, dtype=np.int32))
    with pytest.raises(AssertionError, match="network was asked"):
        await lipsync.weights(heard_only, "en", first=True)  # no timings: the network hears it
    with pytest.raises(AssertionError, match="network was asked"):
        await lipsync.weights(speech(1.25), "en")  # the rest of a reply: the network


async def test_the_mouth_leads_the_sound_by_the_configured_time() -> None:
    heard = alignment_weights(speech(1.25), fps=25, alphabet="ipa")
    ahead = await LipSync(Unreachable(), 25, "alignment", lead_s=0.04).weights(speech(1.25), "en")  # type: ignore[arg-type]
    assert np.array_equal(ahead[:-1], heard[1:]) and np.array_equal(ahead[-1], heard[-1])
    half = lead(heard, 0.5)
    assert np.allclose(half[:-1], (heard[:-1] + heard[1:]) / 2)
    assert np.allclose(half.sum(axis=1), 1.0)
    assert lead(heard, 0) is heard
