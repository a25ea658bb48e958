"""A portrait's rig: for every viseme, for a blink and for idle head motion, where each pixel
of the face takes its colour from — computed once per avatar, blended per frame.

Each shape moves the face-mesh points (in the face's own frame, so a tilted head opens its
mouth along its own axis). A thin-plate spline through the moved points, pinned to zero on the
border of the face's region, spreads the motion to every pixel; fixed-point iteration turns
that forward motion into the backward map `cv2.remap` reads. The lips part: the upper lip and
the lower lip with the jaw are two layers, each with its own spline, joined at the lips' seam
each frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from media.avatar.photo import mesh
from media.avatar.photo.mesh import FaceFrame
from media.avatar.visemes import VISEMES

Field = npt.NDArray[np.float32]  # [..., h, w, 2]: source offset (dx, dy) of each pixel
Moves = npt.NDArray[np.float32]  # [..., 468, 2]: forward displacement of each point, pixels


@dataclass(frozen=True)
class Shape:
    """A mouth, in eye distances: jaw drop, lip width change (fraction), upper lip lift, lower
    lip tuck (under the upper teeth), press (lips together) and rounding (pout)."""

    jaw: float = 0.0
    width: float = 0.0
    lift: float = 0.0
    tuck: float = 0.0
    press: float = 0.0
    rounding: float = 0.0


SHAPES = {
    "sil": Shape(),
    "PP": Shape(press=1.0, width=-0.03),
    "FF": Shape(jaw=0.04, lift=0.05, tuck=0.07),
    "TH": Shape(jaw=0.09, width=0.02),
    "DD": Shape(jaw=0.11, width=0.03),
    "kk": Shape(jaw=0.13, width=0.02),
    "CH": Shape(jaw=0.09, width=-0.14, rounding=0.5, lift=0.02),
    "SS": Shape(jaw=0.05, width=0.08, lift=0.02),
    "nn": Shape(jaw=0.09, width=0.02),
    "RR": Shape(jaw=0.10, width=-0.16, rounding=0.6),
    "aa": Shape(jaw=0.28, width=0.02, lift=0.02),
    "E": Shape(jaw=0.18, width=0.10, lift=0.02),
    "ih": Shape(jaw=0.12, width=0.12, lift=0.02),
    "oh": Shape(jaw=0.22, width=-0.22, rounding=1.0),
    "ou": Shape(jaw=0.10, width=-0.32, rounding=1.4),
}
VERSION = 1  # of the rig's making: a rig saved by another version is made again
SWAY_DEGREES = 1.0  # the unit of the sway field: a roll of the head about the neck
BREATH_UNITS = 0.006  # the unit of the breathing field: the head rises this many eye distances
_SCALE = 2  # fields are computed and blended at half the region's resolution
_ITERATIONS = 5


@dataclass(frozen=True)
class Rig:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1: the face's region in the portrait
    upper: Field  # [15, h, w, 2]: per viseme, the layer above the lips' seam
    lower: Field  # [15, h, w, 2]: per viseme, the lower lip and jaw
    idle: Field  # [3, h, w, 2]: sway (one unit), breathing (one unit), blink (closed)
    moves: Moves  # [15, 468, 2]: where each viseme takes each point
    idle_moves: Moves  # [3, 468, 2]

    def save(self, path: Path) -> None:
        """Fields as float16 (a hundredth of a pixel at worst): 4 MB for a 512² portrait."""
        np.savez(
            path,
            version=VERSION,
            box=np.array(self.box),
            upper=self.upper.astype(np.float16),
            lower=self.lower.astype(np.float16),
            idle=self.idle.astype(np.float16),
            moves=self.moves,
            idle_moves=self.idle_moves,
        )

    @classmethod
    def load(cls, path: Path) -> Rig | None:
        """The saved rig, or None when it is missing or was made by another version."""
        if not path.is_file():
            return None
        with np.load(path) as saved:
            if int(saved["version"]) != VERSION:
                return None
            x0, y0, x1, y1 = (int(v) for v in saved["box"])
            return cls(
                (x0, y0, x1, y1),
                saved["upper"].astype(np.float32),
                saved["lower"].astype(np.float32),
                saved["idle"].astype(np.float32),
                saved["moves"],
                saved["idle_moves"],
            )


def _lip_sets(
    points: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Which points belong to the upper lip and which to the lower (the corners to neither)."""
    xy = points[:, :2]
    upper_poly = xy[mesh.UPPER_LIP_OUTER + mesh.UPPER_LIP_INNER[::-1]].astype(np.float32)
    lower_poly = xy[mesh.LOWER_LIP_OUTER + mesh.LOWER_LIP_INNER[::-1]].astype(np.float32)
    upper = np.zeros(len(points), dtype=bool)
    lower = np.zeros(len(points), dtype=bool)
    for i, (x, y) in enumerate(xy):
        upper[i] = cv2.pointPolygonTest(upper_poly, (float(x), float(y)), True) >= -0.5
        lower[i] = cv2.pointPolygonTest(lower_poly, (float(x), float(y)), True) >= -0.5
    upper[mesh.UPPER_LIP_INNER + mesh.UPPER_LIP_OUTER] = True
    lower[mesh.LOWER_LIP_INNER + mesh.LOWER_LIP_OUTER] = True
    corners = [mesh.UPPER_LIP_INNER[0], mesh.UPPER_LIP_INNER[-1], *mesh.MOUTH_CORNERS]
    both = upper & lower
    both[corners] = True
    return upper & ~both, lower & ~both


def shape_moves(points: npt.NDArray[np.float32], shape: Shape) -> Moves:
    """Forward displacement (pixels) of every point for one mouth shape."""
    frame = FaceFrame.of(points)
    local = frame.local(points)
    upper, lower = _lip_sets(points)
    half = abs(local[mesh.MOUTH_CORNERS[1], 0] - local[mesh.MOUTH_CORNERS[0], 0]) / 2
    chin = max(local[mesh.CHIN, 1], 0.3)
    x, y = local[:, 0], local[:, 1]
    lips = upper | lower
    corner = np.clip((np.abs(x) / half) ** 2, 0, 1)  # 0 mid-lip … 1 at the corners
    centre = 1 - corner
    moves = np.zeros_like(local)
    # the jaw: the chin drops fully, the lower lip nearly, the cheeks by their height
    jaw = np.clip(y / chin, 0, 1) ** 0.7 * np.clip(1.3 - np.abs(x) / (1.6 * half + 0.4), 0, 1)
    jaw[lower] = 0.85 * centre[lower] + 0.45 * corner[lower]
    jaw[upper] = 0.4 * corner[upper] - 0.08 * centre[upper]
    near_mouth = ~lips & (np.abs(x) < half * 1.15) & (np.abs(y) < 0.08)
    jaw[near_mouth | ~(lips | (y > 0.02))] *= 0.0
    moves[:, 1] += shape.jaw * jaw
    corners = [mesh.UPPER_LIP_INNER[0], mesh.UPPER_LIP_INNER[-1], *mesh.MOUTH_CORNERS]
    moves[corners, 1] += shape.jaw * 0.4
    # width: the lips stretch or purse about the mouth's centre; the cheeks follow near it
    reach = np.exp(-(((np.abs(x) - half).clip(0) / 0.18) ** 2 + (y / 0.3) ** 2))
    spread = np.where(lips, 1.0, reach * (np.abs(x) > 0.5 * half))
    moves[:, 0] += shape.width * np.sign(x) * np.minimum(np.abs(x), half) * spread
    # lift: the upper lip rises (the upper teeth show); tuck: the lower lip rises under them
    moves[upper, 1] -= shape.lift * (1 - 0.5 * corner[upper])
    moves[lower, 1] -= shape.tuck * centre[lower]
    # rounding: a pout thickens the lips and rounds their opening
    outer_up = np.isin(np.arange(len(points)), mesh.UPPER_LIP_OUTER)
    outer_low = np.isin(np.arange(len(points)), mesh.LOWER_LIP_OUTER)
    moves[outer_up, 1] -= 0.035 * shape.rounding * centre[outer_up]
    moves[outer_low, 1] += 0.035 * shape.rounding * centre[outer_low]
    # press: the inner lips meet halfway whatever the photo's mouth does
    if shape.press:
        for top, bottom in zip(mesh.UPPER_LIP_INNER[1:-1], mesh.LOWER_LIP_INNER[1:-1], strict=True):
            gap = local[bottom, 1] - local[top, 1]
            moves[top, 1] += shape.press * gap / 2 + 0.01 * shape.press
            moves[bottom, 1] -= shape.press * gap / 2 + 0.01 * shape.press
    return frame.to_pixels(moves)


def blink_moves(points: npt.NDArray[np.float32]) -> Moves:
    """The upper lids down onto the lower ones; the creases above them half way."""
    moves = np.zeros((len(points), 2), dtype=np.float32)
    xy = points[:, :2]
    for _, upper, lower, crease in mesh.EYES:
        drop = (xy[lower] - xy[upper]) * 0.92
        moves[upper] = drop
        moves[crease] = drop * 0.45
    return moves


def sway_moves(points: npt.NDArray[np.float32]) -> Moves:
    """The head rolled by SWAY_DEGREES about the neck (below the chin)."""
    frame = FaceFrame.of(points)
    pivot = points[mesh.CHIN, :2] + frame.ey * frame.unit * 0.6
    angle = math.radians(SWAY_DEGREES)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centred = points[:, :2] - pivot
    moves: Moves = (centred @ rotation.T - centred).astype(np.float32)
    return moves


def breath_moves(points: npt.NDArray[np.float32]) -> Moves:
    frame = FaceFrame.of(points)
    return np.tile(-frame.ey * frame.unit * BREATH_UNITS, (len(points), 1)).astype(np.float32)


def region(points: npt.NDArray[np.float32], width: int, height: int) -> tuple[int, int, int, int]:
    """The face with room for the jaw to drop and the hair to follow the head."""
    unit = FaceFrame.of(points).unit
    x0, y0 = points[:, :2].min(axis=0)
    x1, y1 = points[:, :2].max(axis=0)
    box = (x0 - 0.5 * unit, y0 - 0.8 * unit, x1 + 0.5 * unit, y1 + 0.6 * unit)
    x0i, y0i = max(0, int(box[0]) // _SCALE * _SCALE), max(0, int(box[1]) // _SCALE * _SCALE)
    x1i = min(width, x0i + math.ceil((box[2] - x0i) / _SCALE) * _SCALE)
    y1i = min(height, y0i + math.ceil((box[3] - y0i) / _SCALE) * _SCALE)
    return x0i, y0i, x1i - (x1i - x0i) % _SCALE, y1i - (y1i - y0i) % _SCALE


class _Spline:
    """Thin-plate splines through fixed centres (some of the points, and zeros on the region's
    border), evaluated on the region's half-resolution grid. `kernel` holds every centre's
    kernel over the grid once; each layer takes its columns."""

    def __init__(
        self,
        centres: npt.NDArray[np.float64],
        grid: npt.NDArray[np.float64],
        kernel: npt.NDArray[np.float32],
    ) -> None:
        n = len(centres)
        system = np.zeros((n + 3, n + 3))
        system[:n, :n] = _tps(centres, centres) + np.eye(n) * 1e-6
        affine = np.concatenate([np.ones((n, 1)), centres], axis=1)
        system[:n, n:], system[n:, :n] = affine, affine.T
        self.inverse = np.linalg.inv(system)
        self.basis = np.concatenate([kernel, np.ones((len(grid), 1)), grid], axis=1).astype(
            np.float32
        )

    def fields(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        """values [k, n, 2] at the centres → [k, grid, 2]."""
        k, n = values.shape[:2]
        rhs = np.concatenate([values, np.zeros((k, 3, 2))], axis=1)  # [k, n+3, 2]
        weights = (self.inverse @ rhs).astype(np.float32)  # [k, n+3, 2]
        flat = weights.transpose(1, 0, 2).reshape(n + 3, k * 2)
        result: npt.NDArray[np.float32] = (self.basis @ flat).reshape(-1, k, 2).transpose(1, 0, 2)
        return result


def _tps(
    a: npt.NDArray[np.floating[Any]], b: npt.NDArray[np.floating[Any]]
) -> npt.NDArray[np.float64]:
    """The thin-plate kernel r² log r between every row of a and every row of b."""
    r2 = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2 * (a @ b.T)
    r2 = np.maximum(r2, 1e-12)
    result: npt.NDArray[np.float64] = 0.5 * r2 * np.log(r2)
    return result


def _backward(forward: npt.NDArray[np.float32], shape: tuple[int, int]) -> Field:
    """Forward motion F on the grid → offsets o with p + o + F(p + o) = p (source of p)."""
    h, w = shape
    fields = forward.reshape(-1, h, w, 2)
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), axis=-1).astype(np.float32)
    result = np.empty_like(fields)
    for index, field in enumerate(fields):
        offset = -field.copy()
        for _ in range(_ITERATIONS):
            at = grid + offset
            sampled = cv2.remap(
                field, at[..., 0], at[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )
            offset = -sampled
        result[index] = offset
    return result


def build(points: npt.NDArray[np.float32], width: int, height: int) -> Rig:
    """The rig of a portrait width × height whose face has these mesh points (its pixels)."""
    box = region(points, width, height)
    x0, y0, x1, y1 = box
    h, w = (y1 - y0) // _SCALE, (x1 - x0) // _SCALE
    unit = FaceFrame.of(points).unit
    to_grid = (points[:, :2] - np.array([x0, y0])) / _SCALE
    border = _border(w, h, step=max(4.0, unit / _SCALE / 4))
    gy, gx = np.mgrid[0:h, 0:w]
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64)
    upper_lip, lower_lip = _lip_sets(points)
    visemes = np.stack([shape_moves(points, SHAPES[v]) for v in VISEMES])
    idle = np.stack([sway_moves(points), breath_moves(points), blink_moves(points)])
    scale = unit / _SCALE  # splines work in eye distances: well conditioned at any size
    centres = np.concatenate([to_grid, border]) / scale
    kernel = _tps(grid.astype(np.float32) / scale, centres.astype(np.float32)).astype(np.float32)
    on_border = np.ones(len(border), dtype=bool)
    layers = {}
    for name, keep, moves in (
        ("upper", ~lower_lip, visemes),
        ("lower", ~upper_lip, visemes),
        ("idle", np.ones(len(points), dtype=bool), idle),
    ):
        columns = np.concatenate([keep, on_border])
        spline = _Spline(centres[columns], grid / scale, kernel[:, columns])
        values = np.concatenate(
            [moves[:, keep] / _SCALE, np.zeros((len(moves), len(border), 2))], axis=1
        )
        layers[name] = _backward(spline.fields(values), (h, w)) * _SCALE
    return Rig(box, layers["upper"], layers["lower"], layers["idle"], visemes, idle)


def _border(w: int, h: int, step: float) -> npt.NDArray[np.float64]:
    xs = np.linspace(0, w - 1, max(2, int(w / step)))
    ys = np.linspace(0, h - 1, max(2, int(h / step)))[1:-1]
    return np.concatenate(
        [
            np.stack([xs, np.zeros_like(xs)], 1),
            np.stack([xs, np.full_like(xs, h - 1)], 1),
            np.stack([np.zeros_like(ys), ys], 1),
            np.stack([np.full_like(ys, w - 1), ys], 1),
        ]
    )
