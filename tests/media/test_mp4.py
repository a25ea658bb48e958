"""MP4 for `video` replies."""

from __future__ import annotations

import io

import av
import numpy as np

from media.mp4 import encode_mp4


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
