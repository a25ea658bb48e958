"""A photo avatar's frames: per frame, one blend of the rig's fields, one `cv2.remap` of the
face's region, the mouth's inside painted where the lips part, the eyelids closed by a patch of
the photo's own lid skin during blinks. Everything outside the region is the photo itself.

Speech moves the face below the eyes only: the mouth's fields are nothing down to the lower lids
and to where they first move a pixel by STILL_UNDER (above it, the splines only rippled by a
fraction of a pixel), then fade in; so a speaking frame without a blink remaps and patches the
rows below that alone.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from media.avatar.animator import Animator, Frames, Part, Patch, at_rest, blend, even_box
from media.avatar.caches import avatar_cache
from media.avatar.photo import mesh
from media.avatar.photo.avatar import PhotoAvatar
from media.avatar.visemes import INDEX, Weights, silence

SWAY = 0.9  # rig units (degrees of head roll)
BREATH = 1.0  # rig units
# Idle motion moves in steps this small (under half a pixel): a stream at rest shows one of a
# few hundred poses, each rendered once per avatar (webrtc/stream.py).
SWAY_STEP = 0.1
BREATH_STEP = 0.25
_INNER = np.array(mesh.UPPER_LIP_INNER + mesh.LOWER_LIP_INNER[::-1][1:-1])
_FF = INDEX["FF"]
STILL_UNDER = 0.5  # pixels: rows whose mouth fields move no pixel this far are held still…
FADE_ROWS = 8  # …and the fields fade in over this many half-resolution rows


def _read_from(first: int) -> int:
    """The half-resolution row a region from row `first` reads its fields from: the row above
    too, so the resize sees the same neighbours as the whole box's."""
    return max(first - 1, 0)


@dataclass(frozen=True)
class _Rows:
    """The rows of the face's box a frame remaps: from half-resolution row `first` down."""

    first: int
    upper: npt.NDArray[np.float32]  # [15, (h - top) * w * 2]
    lower: npt.NDArray[np.float32]
    idle: npt.NDArray[np.float32]  # [3, (h - top) * w * 2]
    grid: npt.NDArray[np.float32]  # [2 * (h - first), 2 * w, 2]: the frame's pixel centres
    box: tuple[int, int, int, int]  # in the frame

    @property
    def top(self) -> int:
        return _read_from(self.first)


def _fade(upper: npt.NDArray[np.float32], lower: npt.NDArray[np.float32], eyes: int) -> int:
    """Zeroes the mouth fields ([15, h, w, 2], both layers, in place) down to half-resolution
    row `eyes` and above the rows where they move a pixel by STILL_UNDER, then fades them in
    over FADE_ROWS; returns the last row held still, from which a speaking frame's rows are
    remapped (0: none is held still)."""
    reach = np.maximum(np.abs(upper).max(axis=(0, 2, 3)), np.abs(lower).max(axis=(0, 2, 3)))
    moving = np.flatnonzero(reach >= STILL_UNDER)
    first = max(int(moving[0]) - FADE_ROWS, eyes + 1) if len(moving) else 0
    if first < 2 or first >= upper.shape[1]:
        return 0
    rows = np.arange(upper.shape[1], dtype=np.float32)
    ramp = np.clip((rows - first) / (FADE_ROWS + 1), 0, 1)
    window = (ramp * ramp * (3 - 2 * ramp))[None, :, None, None]
    upper *= window
    lower *= window
    return first


def _rows(
    box: tuple[int, int, int, int],
    first: int,
    upper: npt.NDArray[np.float32],
    lower: npt.NDArray[np.float32],
    idle: npt.NDArray[np.float32],
) -> _Rows:
    x0, y0, x1, y1 = box
    top = _read_from(first)
    gy, gx = np.mgrid[y0 + 2 * first : y1, x0:x1]
    return _Rows(
        first,
        upper[:, top:].reshape(len(upper), -1),
        lower[:, top:].reshape(len(lower), -1),
        idle[:, top:].reshape(len(idle), -1),
        np.stack([gx, gy], axis=-1).astype(np.float32),
        (x0, y0 + 2 * first, x1, y1),
    )


def _rows_of(avatar: PhotoAvatar) -> tuple[_Rows, _Rows]:
    """The whole face's rows and a speaking frame's, made once per avatar (8 MB of fields)."""
    shared = avatar_cache(avatar, "rows")
    if "rows" not in shared:
        rig = avatar.rig
        upper, lower = rig.upper.copy(), rig.lower.copy()
        lids = avatar.points[mesh.RIGHT_EYE_LOWER + mesh.LEFT_EYE_LOWER, 1].max()
        lowest = _fade(upper, lower, math.ceil((lids - rig.box[1]) / 2))
        shared.setdefault(
            "rows",
            (
                _rows(rig.box, 0, upper, lower, rig.idle),
                _rows(rig.box, lowest, upper, lower, rig.idle),
            ),
        )
    rows: tuple[_Rows, _Rows] = shared["rows"]
    return rows


class PhotoAnimator(Animator):
    def __init__(self, avatar: PhotoAvatar, fps: int = 25, smoothing: float = 0.5) -> None:
        super().__init__(avatar.width, avatar.height, fps, smoothing, avatar.seed, (2.5, 6.0))
        self.avatar = avatar
        rig = avatar.rig
        x0, y0, x1, y1 = rig.box
        self._box = (slice(y0, y1), slice(x0, x1))
        self._even = even_box(x0, y0, x1, y1, avatar.width, avatar.height)
        count = len(rig.upper)
        self._half = rig.upper.shape[1:3]
        self._whole, self._speaking = _rows_of(avatar)
        self._moves = rig.moves.reshape(count, -1)
        self._idle_moves = rig.idle_moves.reshape(len(rig.idle), -1)
        self._origin = np.array([x0, y0], dtype=np.float32)
        self._points = avatar.points[:, :2].astype(np.float32)

    def _compose(self, mouth: Weights, frames: npt.NDArray[np.int64]) -> Frames:
        out = np.empty((len(frames), self.height, self.width, 3), dtype=np.uint8)
        out[:] = self.avatar.portrait
        out[(slice(None), *self._box)] = self._faces(
            mouth, self._steps(frames), self._eyelids(frames), self._whole
        )
        return out

    def _parts(
        self, mouth: Weights, frames: npt.NDArray[np.int64], lids: npt.NDArray[np.float32]
    ) -> list[Part]:
        """A frame not at rest: one patch, the face's region (below the eyes while they are
        open)."""
        steps = self._steps(frames)
        poses = _keys(steps)
        parts = [Part(pose, ()) for pose in poses]
        moving = ~at_rest(mouth, lids)
        for rows, which in ((self._speaking, lids == 0), (self._whole, lids > 0)):
            chosen = np.flatnonzero(moving & which)
            faces = self._faces(mouth[chosen], steps[chosen], lids[chosen], rows)
            x0, y0 = self._even[0], rows.box[1]
            for i, face in zip(chosen, faces, strict=True):
                parts[i] = Part(poses[i], (Patch(x0, y0, self._patch(face, rows)),))
        return parts

    def _patch(self, face: Frames, rows: _Rows) -> Frames:
        """The face's rows widened to even columns with the photo (the box's rows are even)."""
        x0, y0, x1, y1 = rows.box
        ex0, ex1 = self._even[0], self._even[2]
        pixels = self.avatar.portrait[y0:y1, ex0:ex1].copy()
        pixels[:, x0 - ex0 : x1 - ex0] = face
        return pixels

    def rest_picture(self, pose: Hashable) -> Frames:
        picture = self.avatar.portrait.copy()
        steps = np.array([pose], dtype=np.int64)
        picture[self._box] = self._faces(silence(1), steps, np.zeros(1, np.float32), self._whole)[0]
        return picture

    def _faces(
        self,
        mouth: Weights,
        steps: npt.NDArray[np.int64],
        lids: npt.NDArray[np.float32],
        rows: _Rows,
    ) -> Frames:
        """The face's region in each frame, from `rows` down: [T, h, w, 3]."""
        look = self.avatar.look
        idle = np.concatenate(
            [steps * np.array([SWAY_STEP, BREATH_STEP]), lids[:, None]], axis=1
        ).astype(np.float32)
        count = len(mouth)
        if not count:
            return np.empty((0, *rows.grid.shape[:2], 3), dtype=np.uint8)
        h, w = self._half
        top = rows.top
        uppers = blend(mouth, rows.upper).reshape(count, h - top, w, 2)
        lowers = blend(mouth, rows.lower).reshape(count, h - top, w, 2)
        idles = (idle @ rows.idle).reshape(count, h - top, w, 2)
        origin = np.array(rows.box[:2], dtype=np.float32)
        points = (
            self._points
            + blend(mouth, self._moves).reshape(count, -1, 2)
            + (idle @ self._idle_moves).reshape(count, -1, 2)
        )
        faces = np.empty((count, *rows.grid.shape[:2], 3), dtype=np.uint8)
        for i in range(count):
            seam = self._below_seam(points[i])[top:]
            field = np.where(seam[..., None], lowers[i], uppers[i])
            field += idles[i]
            full = np.asarray(
                cv2.resize(field, (2 * w, 2 * (h - top)), interpolation=cv2.INTER_LINEAR),
                np.float32,
            )[2 * (rows.first - top) :]
            full += rows.grid
            face = np.asarray(
                cv2.remap(  # type: ignore[call-overload]  # one two-channel map, no map2
                    self.avatar.portrait,
                    full,
                    None,
                    cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REFLECT,
                ),
                np.uint8,
            )
            self._paint_mouth(face, points[i] - origin, float(mouth[i, _FF]))
            if lids[i] > 0.3:
                look.close_eyes(face, float(lids[i]))
            faces[i] = face
        return faces

    def _steps(self, frames: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Sway and breathing in frames `frames`, in steps: [T, 2]."""
        sway = np.round(SWAY * self._wave(frames, 6.3, 0) / SWAY_STEP)
        breath = np.round(BREATH * self._wave(frames, 3.9, 1) / BREATH_STEP)
        steps: npt.NDArray[np.int64] = np.stack([sway, breath], axis=1).astype(np.int64)
        return steps

    def _poses(self, frames: npt.NDArray[np.int64], mouth: Weights) -> list[Hashable]:
        return _keys(self._steps(frames))

    def _below_seam(self, points: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        """Half-resolution mask of the pixels the lower layer (lower lip, jaw) draws."""
        h, w = self._half
        seam = (points[mesh.UPPER_LIP_INNER] - self._origin) / 2
        first, last = seam[0], seam[-1]
        polygon = np.concatenate(
            [[[-1, first[1]]], seam, [[w + 1, last[1]], [w + 1, h + 1], [-1, h + 1]]]
        )
        mask = np.zeros((h, w), dtype=np.uint8)
        cv2.fillPoly(
            mask, [np.round(polygon * 4).astype(np.int32)], (1,), lineType=cv2.LINE_8, shift=2
        )
        return mask.astype(bool)

    def _paint_mouth(
        self, face: npt.NDArray[np.uint8], points: npt.NDArray[np.float32], ff: float
    ) -> None:
        """Teeth, tongue and a dark cavity where the lips part more than in the photo."""
        look = self.avatar.look
        top = points[mesh.UPPER_LIP_INNER]
        bottom = points[mesh.LOWER_LIP_INNER]
        gaps = bottom[:, 1] - top[:, 1]
        extra = float((gaps - look.rest_gaps)[3:-3].max())
        strength = min(1.0, extra / (0.03 * look.unit))
        if strength <= 0.05:
            return
        polygon = points[_INNER]
        x0, y0 = np.floor(polygon.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + 3
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, face.shape[1]), min(y1, face.shape[0])
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        origin = np.array([x0, y0], dtype=np.float32)
        gap = float(gaps[3:-3].max())
        canvas = look.cavity(y1 - y0, x1 - x0)

        def fixed(xy: npt.NDArray[np.float32]) -> npt.NDArray[np.int32]:
            result: npt.NDArray[np.int32] = np.round((xy - origin) * 4).astype(np.int32)
            return result

        if gap > 0.08 * look.unit:  # the tongue, low in the mouth
            middle = (top[5] + bottom[5]) / 2 - origin
            centre = (int(middle[0] * 4), int((bottom[5, 1] - origin[1] - 0.2 * gap) * 4))
            axes = (int(0.32 * (top[-1, 0] - top[0, 0]) * 4), int(0.3 * gap * 4))
            cv2.ellipse(canvas, centre, axes, 0, 180, 360, look.tongue, -1, cv2.LINE_AA, 2)
        upper = min(gap, 0.10 * look.unit) if ff < 0.3 else gap
        lower = min(0.35 * gap, 0.06 * look.unit)
        width = float(top[-1, 0] - top[0, 0])
        centre_x = float((top[0, 0] + top[-1, 0]) / 2 - origin[0])
        xs = np.arange(x1 - x0, dtype=np.float32) - centre_x
        # teeth turn away from the light towards the corners, and meet at darker lines
        shade = np.clip(1 - 0.55 * (2 * xs / max(width, 1.0)) ** 2, 0.35, 1)
        for x in centre_x + width * np.array([-0.27, -0.14, 0.0, 0.14, 0.27]):
            column = round(float(x))
            if 0 <= column < len(shade):
                shade[column] *= 0.78
        paint = canvas.astype(np.float32)
        for edge, depth, colour in (
            (bottom[3:-3], -lower, look.lower_teeth),
            (top[2:-2], upper, look.teeth),
        ):
            teeth = np.concatenate([edge, (edge + np.array([0.0, depth]))[::-1]])
            cover = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
            cv2.fillPoly(cover, [fixed(teeth)], (255,), cv2.LINE_AA, 2)
            share = (cover.astype(np.float32) / 255)[..., None]
            lit = np.asarray(colour, np.float32) * shade[None, :, None]
            paint += (lit - paint) * share
        # the upper lip's shadow over the top of the mouth
        below = (np.arange(y1 - y0) - (top[5, 1] - origin[1])) / (0.04 * look.unit)
        paint *= np.clip(below, 0.55, 1).astype(np.float32)[:, None, None]
        mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        cv2.fillPoly(mask, [fixed(polygon)], (255,), cv2.LINE_AA, 2)
        alpha = (mask.astype(np.float32) * (strength / 255))[..., None]
        region = face[y0:y1, x0:x1]
        region[...] = (region + (paint - region) * alpha + 0.5).astype(np.uint8)


def _keys(steps: npt.NDArray[np.int64]) -> list[Hashable]:
    """Idle steps ([T, 2]) as pose keys."""
    return [(int(sway), int(breath)) for sway, breath in steps]
