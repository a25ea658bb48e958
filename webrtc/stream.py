"""One user's live avatar: what its audio and video tracks play, on one clock.

Speech is scheduled on a single sample timeline (48 kHz): an utterance starts on a video
frame boundary, so frame n (samples n·1920 … (n+1)·1920 at 25 fps) always shows the mouth
for exactly the audio it plays with. Both tracks pull from here and pace themselves by that
timeline, so audio and video cannot drift apart. Between utterances the avatar idles.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from media.audio import PLAYBACK_RATE, resample, to_int16
from media.avatar.animator import animator_for
from media.avatar.caches import avatar_cache
from media.avatar.registry import AnyAvatar
from media.avatar.visemes import Weights, fit_frames, silence
from webrtc.pictures import RGB, Canvas

AUDIO_FRAME = PLAYBACK_RATE // 50  # 20 ms per audio packet
SILENT_PACKET = np.zeros(AUDIO_FRAME, dtype=np.int16)
SILENT_PACKET.flags.writeable = False
RENDER_AHEAD = 2  # frames rendered per batch
MAX_LATE_FRAMES = 3  # a video track this far behind the clock skips to catch up
SILENCE_RMS = 0.003  # full scale 1 (-50 dBFS): a frame this quiet is silence

RENDER_NICENESS = 5  # how much less the face's threads get of a busy CPU than the voice's


def _yield_to_speech() -> None:
    """Renderer threads run at a lower priority: when the CPU is short, speech is synthesized
    and sent first, and a late video frame is skipped (MAX_LATE_FRAMES) rather than the
    first words delayed. Raising one's own niceness needs no privilege."""
    thread = threading.get_native_id()
    os.setpriority(
        os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + RENDER_NICENESS
    )


# Rendering and pixel conversion for every live stream run here, off the event loop: numpy
# releases the GIL, so streams render on every core while the loop keeps audio on time.
RENDERERS = ThreadPoolExecutor(
    max_workers=os.cpu_count() or 1, thread_name_prefix="render", initializer=_yield_to_speech
)


@dataclass
class Utterance:
    start: int  # first sample, on a video frame boundary
    pcm: npt.NDArray[np.int16]
    weights: Weights  # one row per video frame it spans
    played: asyncio.Event = field(default_factory=asyncio.Event)  # played out, or cut off
    heard_at: float | None = None  # monotonic time its first packet left the audio track
    on_heard: Callable[[float], None] | None = None  # told heard_at, once

    @property
    def end(self) -> int:
        return self.start + len(self.pcm)


class AvatarStream:
    def __init__(
        self,
        avatar: AnyAvatar,
        fps: int = 25,
        on_render: Callable[[float], None] | None = None,
        canvas: Canvas | None = None,
        on_skip: Callable[[int], None] | None = None,
    ) -> None:
        """`on_render` hears the seconds each live frame took to render (the app's metrics),
        `on_skip` how many frames a video track left out when it fell behind the clock;
        `canvas` makes the pictures the video track sends (webrtc/pictures.py; default RGB),
        in the renderer job: one trip off the event loop per batch of frames, at the
        renderers' priority."""
        if PLAYBACK_RATE % fps:
            raise ValueError(f"{fps} fps does not divide {PLAYBACK_RATE} Hz audio")
        self.fps = fps
        self.frame_samples = PLAYBACK_RATE // fps
        self.avatar = avatar
        self._animator = animator_for(avatar, fps)
        self._canvas: Canvas = canvas or RGB()
        # pictures at rest (eyes open, mouth closed) by pose, made once for all this avatar's
        # streams: an idle stream shows a few dozen (drawn) to a few hundred (photo) of them
        self._resting = avatar_cache(avatar, type(self._canvas))
        self._started: float | None = None
        self._queue: deque[Utterance] = deque()
        self._rendered: deque[tuple[int, object]] = deque()
        self._changes = 0  # bumped when what is scheduled changes: renders in flight are stale
        self._on_render = on_render
        self._on_skip = on_skip
        self._played: deque[tuple[int, float]] = deque(maxlen=100)  # (packet, RMS) of speech

    # --- the clock --------------------------------------------------------------------

    def _clock_start(self) -> float:
        if self._started is None:
            self._started = time.monotonic()
        return self._started

    def playhead(self) -> int:
        """The sample playing now (0 before the tracks start)."""
        if self._started is None:
            return 0
        return int((time.monotonic() - self._started) * PLAYBACK_RATE)

    async def wait_for(self, sample: int) -> None:
        delay = self._clock_start() + sample / PLAYBACK_RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    # --- what to play -----------------------------------------------------------------

    @property
    def speaking(self) -> bool:
        return self.speech_left() > 0

    def speech_left(self) -> float:
        """Seconds of speech queued after the playhead (0: silent)."""
        end = max((u.end for u in self._queue), default=0)
        return max(end - self.playhead(), 0) / PLAYBACK_RATE

    def say(
        self,
        pcm: npt.NDArray[np.float32],
        sample_rate: int,
        weights: Weights,
        on_heard: Callable[[float], None] | None = None,
        trim_silence: bool = False,
    ) -> Utterance:
        """Queues speech (and its viseme weights per frame) after whatever is queued;
        `on_heard` learns the moment its first packet leaves the audio track. With
        `trim_silence` (a reply's first words), whole frames of silence it starts with are
        left out: nobody is waiting on a pause before the first word."""
        pcm16 = to_int16(resample(pcm, sample_rate, PLAYBACK_RATE))
        frames = max(1, -(-len(pcm16) // self.frame_samples))  # whole frames, rounded up
        pcm16 = np.pad(pcm16, (0, frames * self.frame_samples - len(pcm16)))
        weights = fit_frames(weights, frames)
        if trim_silence:
            quiet = self._silent_frames(pcm16)
            pcm16, weights = pcm16[quiet * self.frame_samples :], weights[quiet:]
        # the first frame boundary the audio track has not sent yet: it sends each packet when
        # the packet is due, and a video frame is rendered when due (or is re-rendered, below)
        unsent = (self.playhead() // AUDIO_FRAME + 1) * AUDIO_FRAME
        earliest = -(-unsent // self.frame_samples) * self.frame_samples
        start = max(earliest, self._queue[-1].end if self._queue else 0)
        utterance = Utterance(start, pcm16, weights, on_heard=on_heard)
        self._queue.append(utterance)
        first = start // self.frame_samples
        self._rendered = deque(item for item in self._rendered if item[0] < first)
        self._changes += 1
        return utterance

    def _silent_frames(self, pcm16: npt.NDArray[np.int16]) -> int:
        """How many whole frames of silence `pcm16` starts with (at least one frame is kept)."""
        frames = pcm16.reshape(-1, self.frame_samples).astype(np.float32) / 32768.0
        loud = np.sqrt(np.mean(frames**2, axis=1)) >= SILENCE_RMS
        return int(np.argmax(loud)) if loud.any() else len(frames) - 1

    def interrupt(self) -> int:
        """Drops all queued speech; the avatar goes quiet within one frame. Returns how many
        utterances were cut."""
        head = self.playhead()
        cut = [u for u in self._queue if u.end > head]
        for utterance in cut:
            utterance.played.set()
        self._queue = deque(u for u in self._queue if u.end <= head)
        self._rendered.clear()
        self._changes += 1
        return len(cut)

    def switch(self, avatar: AnyAvatar) -> None:
        if avatar is self.avatar:
            return
        self.avatar = avatar
        self._animator = animator_for(avatar, self.fps)
        self._resting = avatar_cache(avatar, type(self._canvas))
        self._rendered.clear()
        self._changes += 1

    def audio(self, index: int) -> npt.NDArray[np.int16]:
        """Audio packet `index` (20 ms); read-only."""
        start, end = index * AUDIO_FRAME, (index + 1) * AUDIO_FRAME
        if not self._queue:
            return SILENT_PACKET
        out = np.zeros(AUDIO_FRAME, dtype=np.int16)
        for utterance in self._queue:
            lo, hi = max(start, utterance.start), min(end, utterance.end)
            if lo < hi:
                out[lo - start : hi - start] = utterance.pcm[
                    lo - utterance.start : hi - utterance.start
                ]
                if utterance.heard_at is None:
                    utterance.heard_at = time.monotonic()
                    if utterance.on_heard is not None:
                        utterance.on_heard(utterance.heard_at)
        self._forget(end)
        if out.any():
            self._played.append((index, float(np.sqrt(np.mean((out / 32768.0) ** 2)))))
        return out

    def recent_level(self, seconds: float) -> float:
        """How loud the speech the audio track sent in the last `seconds` was (RMS over its
        packets, full scale 1; 0 when it sent none): what may come back as echo."""
        since = self.playhead() // AUDIO_FRAME - round(seconds * PLAYBACK_RATE / AUDIO_FRAME)
        levels = [level for packet, level in self._played if packet >= since]
        return float(np.sqrt(np.mean(np.square(levels)))) if levels else 0.0

    async def video(self, index: int) -> object:
        """Video frame `index`, from the canvas: a picture at rest that this avatar showed
        before is taken as it was; others are rendered a couple of frames at a time in
        RENDERERS."""
        while self._rendered and self._rendered[0][0] < index:
            self._rendered.popleft()
        while not self._rendered:
            changes = self._changes
            rows = range(-1, RENDER_AHEAD + 1)  # the frame before, the batch, the frame after
            weights = np.concatenate([self._weights(index + k) for k in rows])
            started = time.perf_counter()
            keys = self._animator.rest_keys(
                index, weights[1:-1], upcoming=weights[-1:], previous=weights[:1]
            )
            frames = [self._resting.get(key) if key is not None else None for key in keys]
            if any(frame is None for frame in frames):
                frames = await asyncio.get_running_loop().run_in_executor(
                    RENDERERS, self._render, index, weights
                )
            if self._on_render is not None:
                self._on_render((time.perf_counter() - started) / RENDER_AHEAD)
            if changes == self._changes:  # else speech came or went meanwhile: render again
                self._rendered.extend((index + k, frames[k]) for k in range(RENDER_AHEAD))
        return self._rendered.popleft()[1]

    def _render(self, index: int, weights: Weights) -> list[object]:
        """Frames `index`… for the rows between the first and the last, which are the frames
        before and after them: each mouth blends with both its neighbours, as in one whole
        render. Nothing carries over from the last batch, so a batch can be rendered again.
        Each is its pose's picture at rest, made once for every stream of this avatar, with
        what differs patched over a copy of it."""
        parts = self._animator.parts(
            index, weights[1:-1], upcoming=weights[-1:], previous=weights[:1]
        )
        frames = []
        for part in parts:
            base = self._resting.get(part.pose)
            if base is None:
                picture = self._canvas.whole(self._animator.rest_picture(part.pose))
                base = self._resting.setdefault(part.pose, picture)
            frames.append(self._canvas.patched(base, part) if part.patches else base)
        return frames

    def late_by(self, index: int) -> int:
        """How many frames frame `index` is behind the clock."""
        return self.playhead() // self.frame_samples - index

    def caught_up(self, index: int) -> int:
        """The frame a video track sends next instead of `index`: itself, or when the CPU fell
        more than MAX_LATE_FRAMES behind the clock, the one due now (those between are left
        out, and reported)."""
        late = self.late_by(index)
        if late <= MAX_LATE_FRAMES:
            return index
        if self._on_skip is not None:
            self._on_skip(late)
        return index + late

    def _weights(self, index: int) -> Weights:
        sample = index * self.frame_samples
        for utterance in self._queue:
            if utterance.start <= sample < utterance.end:
                row = (sample - utterance.start) // self.frame_samples
                return utterance.weights[row : row + 1]
        return silence(1)

    def _forget(self, sample: int) -> None:
        """Utterances fully played by now are done."""
        while self._queue and self._queue[0].end <= sample - self.frame_samples * MAX_LATE_FRAMES:
            self._queue.popleft().played.set()
