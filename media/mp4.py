"""MP4 for `video` replies: H.264 frames and AAC speech that play in any browser's <video>."""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

from media.audio import PLAYBACK_RATE, resample
from media.avatar.animator import Frames


def encode_mp4(
    frames: Frames,
    pcm: npt.NDArray[np.float32],
    sample_rate: int,
    fps: int,
    size: tuple[int, int] | None = None,
    crf: int = 23,
) -> bytes:
    """`frames` [T, H, W, 3] at `fps` and mono `pcm`; `size` (width, height) rescales."""
    width, height = size or (frames.shape[2], frames.shape[1])
    # A real file: +faststart moves the index to the front (playback can start at once), which
    # FFmpeg does by reading the file back.
    with tempfile.NamedTemporaryFile(suffix=".mp4") as file:
        _write(file.name, frames, pcm, sample_rate, fps, (width, height), crf)
        return Path(file.name).read_bytes()


def _write(
    path: str,
    frames: Frames,
    pcm: npt.NDArray[np.float32],
    sample_rate: int,
    fps: int,
    size: tuple[int, int],
    crf: int,
) -> None:
    width, height = size
    with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": str(crf), "tune": "animation"}
        # AAC frames of 1024 samples are 21 ms at 48 kHz: the audio ends within a video frame
        audio = container.add_stream("aac", rate=PLAYBACK_RATE, layout="mono")
        yuv = VideoReformatter()  # threads=1: PyAV's default spins up a thread pool per frame
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame = yuv.reformat(frame, width=width, height=height, format="yuv420p", threads=1)
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = resample(pcm, sample_rate, PLAYBACK_RATE)
        for start in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(
                samples[None, start : start + 1024], format="flt", layout="mono"
            )
            chunk.sample_rate, chunk.pts, chunk.time_base = (
                PLAYBACK_RATE,
                start,
                Fraction(1, PLAYBACK_RATE),
            )
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))
