"""What a live stream's pictures are made of. A picture at rest is made once from a whole frame
and shared by every stream of its avatar; any other frame is a copy of one of those with the
patches that differ (a mouth, blinking eyes) converted on their own. `I420` makes what
AvatarVideoTrack sends (YUV 4:2:0 planes in one array); `RGB` keeps the rendered pixels."""

from __future__ import annotations

import threading
from typing import Protocol

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

from media.avatar.animator import Frames, Part

I420Planes = npt.NDArray[np.uint8]  # [H·3/2, W]: Y, then U, then V, each plane row-major


class Canvas(Protocol):
    def whole(self, pixels: Frames) -> object:
        """A whole frame; the result is shared between streams, so never changes."""

    def patched(self, base: object, part: Part) -> object:
        """A copy of `base` (from `whole`) with `part`'s patches over it."""


class RGB:
    def whole(self, pixels: Frames) -> Frames:
        picture = pixels.copy()
        picture.flags.writeable = False
        return picture

    def patched(self, base: object, part: Part) -> Frames:
        assert isinstance(base, np.ndarray)
        return part.over(base)


class I420:
    def whole(self, pixels: Frames) -> I420Planes:
        return to_i420(pixels)

    def patched(self, base: object, part: Part) -> I420Planes:
        assert isinstance(base, np.ndarray)
        frame = base.copy()
        luma, blue, red = planes(frame)
        for patch in part.patches:
            x, y = patch.x, patch.y
            h, w = patch.pixels.shape[:2]
            ys, us, vs = planes(to_i420(patch.pixels))
            luma[y : y + h, x : x + w] = ys
            blue[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = us
            red[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = vs
        return frame


def planes(frame: I420Planes) -> tuple[I420Planes, I420Planes, I420Planes]:
    """Views of the Y, U and V planes of one I420 array."""
    height, width = frame.shape[0] * 2 // 3, frame.shape[1]
    flat = frame.reshape(-1)
    luma, chroma = height * width, height * width // 4
    return (
        flat[:luma].reshape(height, width),
        flat[luma : luma + chroma].reshape(height // 2, width // 2),
        flat[luma + chroma :].reshape(height // 2, width // 2),
    )


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


def to_i420(pixels: Frames) -> I420Planes:
    """A rendered frame's YUV planes, read-only."""
    frame = np.asarray(to_yuv(pixels).to_ndarray(), dtype=np.uint8)
    frame.flags.writeable = False
    return frame
