"""Viseme weights → video frames, for one avatar, on a clock that never restarts.

An `Animator` is a streaming stage: each call renders the next frames (speaking or idle) and
keeps the blink schedule, head motion and mouth smoothing continuous across calls, so a live
stream can feed it sentence by sentence. What the frames look like is the subclass's:
`FaceAnimator` for drawn avatars (mouths blended from the viseme sprites in one matrix product
per chunk, everything else numpy slicing), `PhotoAnimator` (media/avatar/photo/) for photos.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from media.avatar.caches import avatar_cache
from media.avatar.registry import Avatar, Layer
from media.avatar.visemes import INDEX, Weights, openness, silence

if TYPE_CHECKING:
    from media.avatar.photo.avatar import PhotoAvatar

Frames = npt.NDArray[np.uint8]  # [T, H, W, 3]

cv2.setNumThreads(1)  # streams are the parallelism: OpenCV's own threads would fight them

_BLINK = np.array([0.5, 1.0, 1.0, 0.6, 0.2], dtype=np.float32)  # eyelid closure, frame by frame
SHARPNESS = 3.0
_CHUNK = 32  # frames whose sprites are blended at once
_SIL = INDEX["sil"]


@dataclass(frozen=True)
class Patch:
    """Pixels of a frame that differ from its picture at rest, at (x, y). Coordinates and size
    are even, so a YUV 4:2:0 picture takes the patch whole."""

    x: int
    y: int
    pixels: Frames  # [h, w, 3]


@dataclass(frozen=True)
class Part:
    """One frame as its pose's picture at rest (`Animator.rest_picture`) with patches over it:
    a frame at rest has none."""

    pose: Hashable
    patches: tuple[Patch, ...]

    def over(self, picture: Frames) -> Frames:
        """The frame, from a copy of its picture at rest."""
        frame = picture.copy()
        for patch in self.patches:
            h, w = patch.pixels.shape[:2]
            frame[patch.y : patch.y + h, patch.x : patch.x + w] = patch.pixels
        return frame


def even_box(
    x0: int, y0: int, x1: int, y1: int, width: int, height: int
) -> tuple[int, int, int, int]:
    """The box widened to even edges, inside a width × height frame (both even)."""
    return (
        max(x0 - x0 % 2, 0),
        max(y0 - y0 % 2, 0),
        min(x1 + x1 % 2, width),
        min(y1 + y1 % 2, height),
    )


def mouth_closed(mouth: Weights) -> npt.NDArray[np.bool_]:
    """Frames whose (smoothed) mouth is the closed one."""
    closed: npt.NDArray[np.bool_] = mouth[:, _SIL] > 1 - 1e-6
    return closed


def at_rest(mouth: Weights, lids: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Frames with open eyes and a closed mouth."""
    resting: npt.NDArray[np.bool_] = (lids == 0) & mouth_closed(mouth)
    return resting


BLEND_TOLERANCE = 1 / 512  # weight a blend may leave out per frame: half a level of 255


def blend(weights: Weights, stack: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """`weights @ stack` (one row of `stack` per viseme or sprite), reading only the rows these
    frames weigh: rows that together weigh at most BLEND_TOLERANCE in every frame are left out.
    A sharpened mouth weighs a handful of its 15 shapes, and the product is bound by reading
    the stack from memory, not by arithmetic."""
    peak = weights.max(axis=0) if len(weights) else np.zeros(len(stack), dtype=np.float32)
    order = np.argsort(peak)
    left_out = np.cumsum(peak[order]) <= BLEND_TOLERANCE
    if not left_out.any():
        result: npt.NDArray[np.float32] = weights @ stack
        return result
    used = np.sort(order[~left_out])
    result = weights[:, used] @ stack[used]
    return result


def _sharpen(weights: Weights) -> Weights:
    sharp: Weights = weights.astype(np.float32) ** SHARPNESS
    sharp /= np.maximum(sharp.sum(axis=1, keepdims=True), 1e-12)
    return sharp


class Animator(ABC):
    def __init__(
        self,
        width: int,
        height: int,
        fps: int,
        smoothing: float,
        seed: int,
        blink_interval_s: tuple[float, float],
    ) -> None:
        self.width, self.height = width, height
        self.fps = fps
        self.smoothing = smoothing  # share of each mouth taken from its neighbours (coarticulation)
        self.frame = 0  # index of the next frame on this animator's clock
        self._last = silence(1)[0]
        rng = np.random.default_rng(seed)
        self._phase = rng.uniform(0, 2 * np.pi, size=2)
        low, high = blink_interval_s
        gaps = rng.uniform(low, high, size=4096) * fps
        self._blinks = np.cumsum(gaps).astype(np.int64)  # blink start frames

    def idle(self, count: int) -> Frames:
        return self.speak(silence(count))

    def speak(self, weights: Weights, upcoming: Weights | None = None) -> Frames:
        """The next len(weights) frames, the mouth following `weights` (one row a frame).
        `upcoming`: the row of the frame after them, when known, so the last frame blends with
        its future too."""
        mouth = self._smooth(np.asarray(weights, dtype=np.float32), upcoming, None)
        if len(mouth):
            self._last = _sharpen(np.asarray(weights[-1:], dtype=np.float32))[0]
        frames = np.empty((len(mouth), self.height, self.width, 3), dtype=np.uint8)
        for start in range(0, len(mouth), _CHUNK):
            stop = min(start + _CHUNK, len(mouth))
            frames[start:stop] = self._compose(
                mouth[start:stop], self.frame + np.arange(start, stop)
            )
        self.frame += len(mouth)
        return frames

    @abstractmethod
    def _compose(self, mouth: Weights, frames: npt.NDArray[np.int64]) -> Frames:
        """Frames `frames` of the clock, each with its (smoothed) mouth."""

    def _smooth(
        self, weights: Weights, upcoming: Weights | None, previous: Weights | None
    ) -> Weights:
        """One mouth dominates each frame (a blend of many sprites would ghost), and each
        blends with its neighbours on both sides (no lag), so shapes flow instead of popping;
        the first frame blends with the last one of the previous call."""
        if not len(weights):
            return weights
        sharp = _sharpen(weights)
        side = self.smoothing / 2
        last = self._last[np.newaxis] if previous is None else _sharpen(np.asarray(previous[:1]))
        before = np.concatenate([last, sharp[:-1]])
        following = sharp[-1:] if upcoming is None else _sharpen(np.asarray(upcoming[:1]))
        after = np.concatenate([sharp[1:], following])
        smoothed: Weights = (1 - self.smoothing) * sharp + side * before + side * after
        return smoothed

    def rest_keys(
        self, first: int, weights: Weights, upcoming: Weights, previous: Weights
    ) -> list[Hashable | None]:
        """For the frames `speak` would render from these rows with its clock at `first`
        (nothing is rendered, nothing changes): each one's pose when it is a picture at rest
        (eyes open, mouth closed), else None. Frames at rest in one pose are one picture, in
        every animator of this avatar."""
        mouth = self._smooth(np.asarray(weights, dtype=np.float32), upcoming, previous)
        frames = first + np.arange(len(mouth), dtype=np.int64)
        resting = at_rest(mouth, self._eyelids(frames))
        poses = self._poses(frames, mouth)
        return [pose if rest else None for pose, rest in zip(poses, resting, strict=True)]

    def parts(
        self, first: int, weights: Weights, upcoming: Weights, previous: Weights
    ) -> list[Part]:
        """The frames `speak` would render from these rows with its clock at `first`, each as
        its picture at rest and the patches that differ (the mouth, the eyes in a blink);
        nothing changes. Much less to draw and convert than whole frames."""
        mouth = self._smooth(np.asarray(weights, dtype=np.float32), upcoming, previous)
        frames = first + np.arange(len(mouth), dtype=np.int64)
        return self._parts(mouth, frames, self._eyelids(frames))

    @abstractmethod
    def rest_picture(self, pose: Hashable) -> Frames:
        """The whole picture at rest in `pose` (one from `rest_keys` or `parts`)."""

    @abstractmethod
    def _parts(
        self, mouth: Weights, frames: npt.NDArray[np.int64], lids: npt.NDArray[np.float32]
    ) -> list[Part]:
        """Frames `frames` of the clock, each with its (smoothed) mouth, as parts."""

    @abstractmethod
    def _poses(self, frames: npt.NDArray[np.int64], mouth: Weights) -> list[Hashable]:
        """The head's pose in frames `frames` of the clock, as a key."""

    def _eyelids(self, frames: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        start = np.searchsorted(self._blinks, frames, side="right") - 1
        since = frames - np.where(start >= 0, self._blinks[np.maximum(start, 0)], -10_000)
        closed = np.zeros(len(frames), dtype=np.float32)
        inside = (since >= 0) & (since < len(_BLINK))
        closed[inside] = _BLINK[since[inside]]
        return closed

    def _wave(
        self, frames: npt.NDArray[np.int64], period_s: float, phase: int
    ) -> npt.NDArray[np.float64]:
        """A slow sine on this animator's clock: idle head motion."""
        result: npt.NDArray[np.float64] = np.sin(
            2 * np.pi * frames / self.fps / period_s + self._phase[phase]
        )
        return result


class FaceAnimator(Animator):
    """A drawn avatar (media/avatar/draw.py): sprites over layers."""

    def __init__(self, avatar: Avatar, fps: int = 25, smoothing: float = 0.5) -> None:
        motion = avatar.motion
        super().__init__(
            avatar.width, avatar.height, fps, smoothing, motion.seed, motion.blink_interval_s
        )
        self.avatar = avatar
        sprites = avatar_cache(avatar, "sprites")
        if "mouths" not in sprites:  # shared, like the stills: 2.6 MB for 15 mouths
            sprites.setdefault("mouths", Sprites.of(avatar.mouths))
            sprites.setdefault("eyes", Sprites.of(np.stack([avatar.eyes_open, avatar.eyes_closed])))
        self._mouths: Sprites = sprites["mouths"]
        self._eyes: Sprites = sprites["eyes"]
        self._mouth_at = self._mouths.place(avatar.mouth_at)
        self._eyes_at = self._eyes.place(avatar.eyes_at)
        self._stills: dict[Hashable, Frames] = avatar_cache(avatar, "stills")
        self._resting: dict[Hashable, Frames] = avatar_cache(avatar, "resting")

    def _offsets(
        self, frames: npt.NDArray[np.int64], open_: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.int64]:
        motion = self.avatar.motion
        dx = motion.sway_px * self._wave(frames, 6.3, 0)
        dy = motion.bob_px * self._wave(frames, 3.9, 1) + motion.nod_px * open_
        offsets: npt.NDArray[np.int64] = np.round(np.stack([dx, dy], axis=1)).astype(np.int64)
        return offsets

    def _compose(self, mouth: Weights, frames: npt.NDArray[np.int64]) -> Frames:
        """Each frame: the cached still for its head offset, then its eyes and mouth. A frame
        at rest (eyes open, mouth closed: most of an idle stream) is a cached picture."""
        avatar = self.avatar
        lids = self._eyelids(frames)
        resting = at_rest(mouth, lids)
        moving = np.flatnonzero(~resting)
        shut = lids[moving, None]
        eyes = self._eyes.blend(np.concatenate([1 - shut, shut], axis=1))
        mouths = self._mouths.blend(mouth[moving])
        out = np.empty((len(frames), avatar.height, avatar.width, 3), dtype=np.uint8)
        drawn = 0
        for i, (dx, dy) in enumerate(self._offsets(frames, openness(mouth))):
            if resting[i]:
                out[i] = self._rest(int(dx), int(dy))
                continue
            out[i] = self._still(int(dx), int(dy))
            for (colour, cover), (x, y) in (
                (eyes[drawn], self._eyes_at),
                (mouths[drawn], self._mouth_at),
            ):
                _paint(out[i], colour, cover, x + int(dx), y + int(dy))
            drawn += 1
        return out

    def _poses(self, frames: npt.NDArray[np.int64], mouth: Weights) -> list[Hashable]:
        return [(int(dx), int(dy)) for dx, dy in self._offsets(frames, openness(mouth))]

    def rest_picture(self, pose: Hashable) -> Frames:
        assert isinstance(pose, tuple)
        dx, dy = pose
        return self._rest(int(dx), int(dy))

    def _parts(
        self, mouth: Weights, frames: npt.NDArray[np.int64], lids: npt.NDArray[np.float32]
    ) -> list[Part]:
        """Each frame not at rest: a patch around the eyes when they blink and one around the
        mouth when it moves, cut from the still for its offset, with both sprites painted."""
        avatar = self.avatar
        resting = at_rest(mouth, lids)
        moving = np.flatnonzero(~resting)
        mouths = self._mouths.blend(mouth[moving])
        shut = lids[moving, None]
        eyes = self._eyes.blend(np.concatenate([1 - shut, shut], axis=1))
        speaking = ~mouth_closed(mouth)
        parts = []
        drawn = 0
        for i, (dx, dy) in enumerate(self._offsets(frames, openness(mouth))):
            pose = (int(dx), int(dy))
            if resting[i]:
                parts.append(Part(pose, ()))
                continue
            sprites = ((eyes[drawn], self._eyes_at), (mouths[drawn], self._mouth_at))
            drawn += 1
            patches = []
            for ((_, cover), (x, y)), changed in zip(
                sprites, (lids[i] > 0, speaking[i]), strict=True
            ):
                if not changed:
                    continue
                h, w = cover.shape
                x0, y0, x1, y1 = even_box(
                    x + pose[0],
                    y + pose[1],
                    x + pose[0] + w,
                    y + pose[1] + h,
                    avatar.width,
                    avatar.height,
                )
                pixels = self._still(*pose)[y0:y1, x0:x1].copy()
                for painting, (ox, oy) in sprites:
                    _paint(pixels, *painting, ox + pose[0] - x0, oy + pose[1] - y0)
                patches.append(Patch(x0, y0, pixels))
            parts.append(Part(pose, tuple(patches)))
        return parts

    def _rest(self, dx: int, dy: int) -> Frames:
        """The still for (dx, dy) with open eyes and a closed mouth."""
        key = (dx, dy)
        if key not in self._resting:
            frame = self._still(dx, dy).copy()
            for (colour, cover), (x, y) in (
                (self._eyes[0], self._eyes_at),
                (self._mouths[_SIL], self._mouth_at),
            ):
                _paint(frame, colour, cover, x + dx, y + dy)
            return self._resting.setdefault(key, frame)
        return self._resting[key]

    def _still(self, dx: int, dy: int) -> Frames:
        """Background, head shifted by (dx, dy), front: everything but eyes and mouth."""
        key = (dx, dy)
        if key not in self._stills:
            avatar = self.avatar
            canvas = avatar.background[..., :3].copy()
            _place(canvas, avatar.head, dx, dy)
            if avatar.front is not None:
                canvas = avatar.front[..., :3] + canvas * (1 - avatar.front[..., 3:4])
            still = np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8)
            return self._stills.setdefault(key, still)
        return self._stills[key]


Painting = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]  # colour ×255, cover


@dataclass(frozen=True)
class Sprites:
    """Premultiplied RGBA sprites of one size, cut to the box any of them covers (`left`, `top`
    inside the original) and kept as what painting takes: colour × 255 [h, w, 3] and cover
    (alpha) [h, w], each row one sprite's colour then cover, so blending sprites is one
    product over the pixels they can change and painting needs no per-frame rearranging."""

    rows: npt.NDArray[np.float32]  # [sprites, h·w·4]
    height: int
    width: int
    left: int = 0
    top: int = 0

    @classmethod
    def of(cls, rgba: npt.NDArray[np.float32]) -> Sprites:
        ys, xs = np.nonzero((rgba[..., 3] > 0).any(axis=0))
        if not len(ys):
            ys, xs = np.array([0]), np.array([0])
        top, left = int(ys.min()), int(xs.min())
        cut = rgba[:, top : int(ys.max()) + 1, left : int(xs.max()) + 1]
        count, height, width = cut.shape[:3]
        colour = (cut[..., :3] * 255).reshape(count, -1)
        cover = cut[..., 3].reshape(count, -1)
        rows = np.ascontiguousarray(np.concatenate([colour, cover], axis=1), dtype=np.float32)
        return cls(rows, height, width, left, top)

    def __getitem__(self, index: int) -> Painting:
        return self._split(self.rows[index])

    def blend(self, weights: Weights) -> list[Painting]:
        """One painting per row of `weights` (one weight per sprite)."""
        return [self._split(row) for row in blend(weights, self.rows)]

    def place(self, at: tuple[int, int]) -> tuple[int, int]:
        """Where the cut sprites go, for sprites drawn at `at`."""
        return at[0] + self.left, at[1] + self.top

    def _split(self, row: npt.NDArray[np.float32]) -> Painting:
        h, w = self.height, self.width
        return row[: h * w * 3].reshape(h, w, 3), row[h * w * 3 :].reshape(h, w)


def _paint(
    frame: Frames,
    colour: npt.NDArray[np.float32],
    cover: npt.NDArray[np.float32],
    x: int,
    y: int,
) -> None:
    """A premultiplied sprite (`colour` × 255, `cover`) over the uint8 RGB `frame` at (x, y),
    in place; what falls outside the frame is left out.

    Valid because the head is opaque under the eyes and mouth and the front layer does not
    reach them (the registry checks both), so painting them last equals painting them on
    the head before it is placed.
    """
    h, w = cover.shape
    top, left = max(0, -y), max(0, -x)
    bottom, right = min(h, frame.shape[0] - y), min(w, frame.shape[1] - x)
    if bottom <= top or right <= left:
        return
    behind = 1 - cover[top:bottom, left:right]
    region = frame[y + top : y + bottom, x + left : x + right]
    blended = cv2.multiply(region, cv2.merge([behind, behind, behind]), dtype=cv2.CV_32F)
    cv2.add(blended, colour[top:bottom, left:right], dst=blended)
    region[...] = cv2.convertScaleAbs(blended)  # rounded, and saturated at 255


def _place(canvas: npt.NDArray[np.float32], layer: Layer, dx: int, dy: int) -> None:
    """Premultiplied RGBA `layer` over RGB `canvas`, shifted by (dx, dy), in place."""
    height, width = canvas.shape[:2]
    src = layer[max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
    dst = canvas[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]]
    dst *= 1 - src[..., 3:4]
    dst += src[..., :3]


def animator_for(avatar: Avatar | PhotoAvatar, fps: int = 25) -> Animator:
    """The animator that draws this kind of avatar."""
    if isinstance(avatar, Avatar):
        return FaceAnimator(avatar, fps)
    from media.avatar.photo.animator import PhotoAnimator

    return PhotoAnimator(avatar, fps)
