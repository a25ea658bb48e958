"""The two tracks a peer sends: both pull from one `AvatarStream`, paced by its clock."""

from __future__ import annotations

import threading
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.video.reformatter import VideoReformatter

from media.audio import PLAYBACK_RATE
from media.avatar.animator import Frames
from webrtc.stream import AUDIO_FRAME, MAX_LATE_FRAMES, AvatarStream

VIDEO_CLOCK = 90_000


class AvatarVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, stream: AvatarStream) -> None:
        super().__init__()
        self._stream = stream
        self._index = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        stream = self._stream
        if stream.late_by(self._index) > MAX_LATE_FRAMES:  # the CPU fell behind: catch up
            self._index += stream.late_by(self._index)
        index = self._index
        self._index += 1
        await stream.wait_for(index * stream.frame_samples)
        frame = await stream.video(index)
        assert isinstance(frame, av.VideoFrame), "the stream must convert with to_yuv"
        frame.pts = index * (VIDEO_CLOCK // stream.fps)
        frame.time_base = Fraction(1, VIDEO_CLOCK)
        return frame


_converters = threading.local()


def to_yuv(pixels: Frames) -> av.VideoFrame:
    """A rendered frame as the encoders take it (YUV 4:2:0). One single-threaded converter per
    renderer thread: PyAV's default (threads=0) starts a new pool of spinning threads for every
    frame — a whole core per stream."""
    converter = getattr(_converters, "yuv", None)
    if converter is None:
        converter = _converters.yuv = VideoReformatter()
    rgb = av.VideoFrame.from_ndarray(pixels, format="rgb24")
    frame: av.VideoFrame = converter.reformat(rgb, format="yuv420p", threads=1)
    return frame


class SpeechAudioTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, stream: AvatarStream) -> None:
        super().__init__()
        self._stream = stream
        self._index = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = self._index
        self._index += 1
        await self._stream.wait_for(index * AUDIO_FRAME)
        samples = self._stream.audio(index)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = PLAYBACK_RATE
        frame.pts = index * AUDIO_FRAME
        frame.time_base = Fraction(1, PLAYBACK_RATE)
        return frame
