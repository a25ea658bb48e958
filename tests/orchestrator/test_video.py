"""Lip-sync timing helpers and the MP4 encoder."""

from __future__ import annotations

import io

import av
import numpy as np

from orchestrator.animation import frame_spans
from orchestrator.avatar.visemes import INDEX
from orchestrator.lipsync import alignment_weights, fit_frames
from orchestrator.tts import Speech
from orchestrator.video import encode_mp4


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


def test_mp4_lasts_as_long_as_its_audio_and_holds_h264_and_aac() -> None:
    pcm = (0.2 * np.random.default_rng(0).standard_normal(int(2.34 * 22050))).astype(np.float32)
    frames = np.random.default_rng(1).integers(
        0, 255, size=(round(2.34 * 25), 128, 160, 3), dtype=np.uint8
    )
    data = encode_mp4(frames, pcm, 22050, fps=25, size=(96, 80))
    with av.open(io.BytesIO(data)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        assert (video.codec_context.width, video.codec_context.height) == (96, 80)
        video_s = float(video.duration * video.time_base)
        audio_s = float(audio.duration * audio.time_base)
    assert abs(video_s - 2.34) <= 0.04 and abs(audio_s - video_s) <= 0.04
    assert data[4:8] == b"ftyp" and data.find(b"moov") < data.find(
        b"mdat"
    )  # starts playing at once
