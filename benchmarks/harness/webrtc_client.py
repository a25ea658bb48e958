"""A WebRTC client in Python (aiortc), as a browser would be: it offers to receive the avatar's
audio and video, and records what arrives (when, which media time, how loud, the mouth)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import httpx
import numpy as np
import numpy.typing as npt
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame
from av.video.reformatter import VideoReformatter
from websockets.asyncio.client import ClientConnection

from benchmarks.harness.client import receive, send
from benchmarks.harness.microphone import Microphone
from webrtc.ice import restrict_host_addresses


@dataclass
class Received:
    arrived: float  # monotonic
    media_s: float  # pts in seconds
    value: float  # audio: RMS; video: how much mouth shows
    corner: tuple[float, float, float] | None = None  # video: the background's colour


@dataclass
class LiveClient:
    mouth_box: tuple[slice, slice] = (slice(278, 346), slice(196, 316))
    mouth_measure: Callable[[npt.NDArray[np.uint8], tuple[slice, slice]], float] = field(
        default=lambda rgb, box: mouth_area(rgb, box)
    )
    audio: list[Received] = field(default_factory=list)
    video: list[Received] = field(default_factory=list)
    video_frames: int = 0  # every frame received, also those forgotten
    microphone: Microphone | None = None  # sent on the audio m-line (sendrecv), hears the tutor
    pc: RTCPeerConnection | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def connect(
        self, ws: ClientConnection, user_id: int | str, video: str = "recvonly", **extra: object
    ) -> float:
        """Offers over the socket; returns when the answer is applied (seconds it took).
        `video` is the video m-line's direction ("inactive": audio only)."""
        started = time.monotonic()
        sdp = await self.offer(video)
        await send(ws, type="webrtc_offer", sdp=sdp, user_id=user_id, **extra)
        await self.answered(await receive(ws, timeout_s=30))
        return time.monotonic() - started

    async def answered(self, answer: dict[str, object]) -> None:
        """Applies the engine's `webrtc_answer`."""
        assert answer["type"] == "webrtc_answer", answer
        assert self.pc is not None and isinstance(answer["sdp"], str)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def connect_http(self, url: str, video: str | None = None) -> str:
        """Offers by HTTP POST (Pipecat's SmallWebRTC signalling); returns the peer's pc_id."""
        sdp = await self.offer(video)
        async with httpx.AsyncClient() as http:
            response = await http.post(url, json={"sdp": sdp, "type": "offer"}, timeout=30)
        response.raise_for_status()
        answer = response.json()
        assert self.pc is not None
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        pc_id: str = answer["pc_id"]
        return pc_id

    async def offer(self, video: str | None = "recvonly") -> str:
        """A fresh peer's offer (`video`: the video m-line's direction, None for none)."""
        restrict_host_addresses(["127.0.0.1"])
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if self.microphone is not None:
            self.pc.addTrack(self.microphone)
        else:
            self.pc.addTransceiver("audio", direction="recvonly")
        if video is not None:
            self.pc.addTransceiver("video", direction=video)
        self.pc.on("track", self._on_track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._rgb = VideoReformatter()  # threads=1; PyAV's default spawns threads per frame
        self._tasks.append(asyncio.create_task(self._consume(track)))

    def _look(self, frame: VideoFrame) -> tuple[float, tuple[float, float, float]]:
        """The mouth and the background's colour. Only those regions are made RGB: the whole
        frame cost 8 simulated users a fifth of the machine the engine is measured on."""
        rows, cols = self.mouth_box
        if frame.format.name == "yuv420p":
            mouth = rgb_region(frame, rows, cols)
            background = rgb_region(frame, CORNER[0], CORNER[1])
        else:
            rgb24 = self._rgb.reformat(frame, format="rgb24", threads=1)
            rgb = np.asarray(rgb24.to_ndarray(), dtype=np.uint8)
            mouth, background = rgb[rows, cols], rgb[CORNER]
        inside = (slice(0, mouth.shape[0]), slice(0, mouth.shape[1]))
        return self.mouth_measure(mouth, inside), corner(background)

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                assert isinstance(frame, AudioFrame | VideoFrame), frame
                assert frame.pts is not None and frame.time_base is not None
                media_s = float(frame.pts * frame.time_base)
                if isinstance(frame, AudioFrame):
                    samples = frame.to_ndarray().astype(np.float64) / 32768.0
                    self.audio.append(Received(now, media_s, float(np.sqrt((samples**2).mean()))))
                    if self.microphone is not None:
                        channels = len(frame.layout.channels)
                        mono = samples.reshape(-1, channels).mean(axis=1).astype(np.float32)
                        self.microphone.speakers(mono)
                else:
                    self.video_frames += 1
                    self.video.append(Received(now, media_s, *self._look(frame)))

    def forget_before(self, moment: float) -> None:
        """Drops what arrived before `moment` (a long run keeps only what it still reads)."""
        self.audio = [r for r in self.audio if r.arrived >= moment]
        self.video = [r for r in self.video if r.arrived >= moment]

    def first_video_after(self, moment: float) -> float | None:
        return next((r.arrived for r in self.video if r.arrived >= moment), None)

    def first_speech_after(self, moment: float, level: float = 0.01) -> float | None:
        return next(
            (r.arrived for r in self.audio if r.arrived >= moment and r.value > level), None
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.pc is not None:
            await self.pc.close()


def mouth_inside(rgb: npt.NDArray[np.uint8], box: tuple[slice, slice]) -> float:
    """Dark pixels in the box: the open mouth's inside. For photo avatars, whose lips, skin
    and (in a smiling photo) teeth all differ from each other at rest."""
    return float((rgb[box].max(axis=2) < 70).sum())


def mouth_area(rgb: npt.NDArray[np.uint8], box: tuple[slice, slice]) -> float:
    """Pixels around the mouth that differ from the skin at the box's edges."""
    region = rgb[box].astype(int)
    edges = np.concatenate([region[:3].reshape(-1, 3), region[-3:].reshape(-1, 3)])
    skin = np.median(edges, axis=0)
    return float((np.abs(region - skin).sum(axis=2) > 60).sum())


CORNER = (slice(5, 25), slice(5, 25))


def corner(background: npt.NDArray[np.uint8]) -> tuple[float, float, float]:
    """The mean colour of a patch of background (CORNER of a frame)."""
    mean = background.reshape(-1, 3).mean(axis=0)
    return (float(mean[0]), float(mean[1]), float(mean[2]))


def _plane(frame: VideoFrame, index: int) -> npt.NDArray[np.uint8]:
    plane = frame.planes[index]
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def rgb_region(frame: VideoFrame, rows: slice, cols: slice) -> npt.NDArray[np.uint8]:
    """`frame[rows, cols]` (yuv420p) as RGB, BT.601 limited range as swscale converts it
    (within 3 levels but at sharp chroma edges), without converting the rest of the frame."""
    y0, y1 = rows.start - rows.start % 2, rows.stop + rows.stop % 2
    x0, x1 = cols.start - cols.start % 2, cols.stop + cols.stop % 2
    luma, blue, red = (_plane(frame, index) for index in range(3))
    chroma = (slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2))
    i420 = np.concatenate(
        [luma[y0:y1, x0:x1].ravel(), blue[chroma].ravel(), red[chroma].ravel()]
    ).reshape(-1, x1 - x0)
    rgb = cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)
    return np.asarray(rgb[rows.start - y0 : rows.stop - y0, cols.start - x0 : cols.stop - x0])
