"""The tracks: audio encodes its own Opus (packets on the stream's clock that decode back to its
speech, silence encoded only until its packet can be sent again); video sends the stream's
pictures, a picture at rest again as the same frame."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from media.audio import PLAYBACK_RATE
from media.avatar import draw
from media.avatar.animator import FaceAnimator
from media.avatar.registry import Avatar, load_avatar
from webrtc.pictures import I420, to_i420
from webrtc.stream import AUDIO_FRAME, AvatarStream
from webrtc.tracks import (
    SILENCE_PRIMED,
    VIDEO_CLOCK,
    AvatarVideoTrack,
    SpeechAudioTrack,
)


@pytest.fixture(scope="module")
def avatar(tmp_path_factory: pytest.TempPathFactory) -> Avatar:
    folder: Path = tmp_path_factory.mktemp("avatars")
    draw.write_avatar(draw.STYLES[1], folder)
    return load_avatar(folder / draw.STYLES[1].avatar_id)


class Counting:
    def __init__(self, codec: Any) -> None:
        self.codec, self.calls = codec, 0

    def encode(self, frame: av.AudioFrame) -> Any:
        self.calls += 1
        return self.codec.encode(frame)


async def test_the_audio_track_sends_opus_that_decodes_to_its_speech(avatar: Avatar) -> None:
    stream = AvatarStream(avatar)
    stream._started = time.monotonic() - 20  # 20 s in: every packet below is already due
    track = SpeechAudioTrack(stream)
    counting = track._opus = Counting(track._opus)  # type: ignore[assignment]
    seconds = np.arange(PLAYBACK_RATE) / PLAYBACK_RATE
    utterance = stream.say(
        (0.4 * np.sin(2 * np.pi * 220 * seconds)).astype(np.float32),
        PLAYBACK_RATE,
        np.eye(15, dtype=np.float32)[[1] * 25],
    )
    first, last = utterance.start // AUDIO_FRAME, utterance.end // AUDIO_FRAME
    packets = [await track.recv() for _ in range(last + 100)]
    assert [p.pts for p in packets] == [n * AUDIO_FRAME for n in range(len(packets))]

    silent = [bytes(p) for p in packets[SILENCE_PRIMED:first]]
    assert len(set(silent)) == 1  # one silent packet, sent again and again
    assert counting.calls == SILENCE_PRIMED + (last - first) + SILENCE_PRIMED

    decoder = av.CodecContext.create("libopus", "r")
    decoder.format, decoder.layout, decoder.sample_rate = "s16", "stereo", PLAYBACK_RATE
    level = []
    for packet in packets:
        (frame,) = decoder.decode(packet)
        pcm = frame.to_ndarray().astype(np.float64) / 32768
        level.append(float(np.sqrt(np.mean(pcm**2))))
    assert max(level[:first]) < 1e-3 and max(level[last + 2 :]) < 1e-3
    assert min(level[first + 2 : last - 2]) > 0.2  # the tone, all through


async def test_the_video_track_resends_a_picture_at_rest_without_copying_it(
    avatar: Avatar,
) -> None:
    stream = AvatarStream(replace(avatar), canvas=I420())
    stream._started = time.monotonic() - 20  # 20 s in: frame 500 is due
    track = AvatarVideoTrack(stream)
    track._index = 500
    sent = []
    for _ in range(40):
        frame = await track.recv()
        sent.append((frame, frame.pts, frame.to_ndarray()))
    stamps = [pts for _, pts, _ in sent]
    assert np.all(np.diff(stamps) == VIDEO_CLOCK // stream.fps)  # every frame its own time
    repeated = [i for i in range(1, len(sent)) if sent[i][0] is sent[i - 1][0]]
    assert repeated  # the head stays in one pose for a few frames: one frame object
    for i in repeated:
        assert np.array_equal(sent[i][2], sent[i - 1][2])
    drawn = FaceAnimator(stream.avatar).idle(500 + 40)[-40:]  # frames 500… of the clock
    first = stamps[0] // (VIDEO_CLOCK // stream.fps)
    assert first == 500
    expected = [to_i420(pixels) for pixels in drawn]
    assert all(np.array_equal(p, e) for (_, _, p), e in zip(sent, expected, strict=True))
