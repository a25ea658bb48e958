"""Lip-sync timing from our voices, and the `video` reply's clock."""

from __future__ import annotations

import numpy as np

from media.avatar.visemes import INDEX, fit_frames
from media.speech import Speech
from orchestrator.lipsync import alignment_weights
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
