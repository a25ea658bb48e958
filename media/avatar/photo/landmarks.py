"""Where the face is in a picture: the geometry around the two face networks (face_detect,
face_mesh), as MediaPipe's face-mesh graph does it.

The picture is letterboxed to the detector's square; each detected face becomes a square,
rotated region (eyes level) 1.5 times its box; that region is cut out at the mesh's size; the
mesh's points are mapped back. A second pass re-cuts the region from the first pass's points,
which centres the face the way the mesh was trained on. The network calls themselves are the
caller's (the engine sends them to Triton).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

DETECTOR_SIZE = 128
MESH_SIZE = 192
ROI_SCALE = 1.5

Image = npt.NDArray[np.uint8]  # [H, W, 3] RGB
Points = npt.NDArray[np.float32]  # [468, 3]: x, y in picture pixels; z on the x scale

# MediaPipe face-mesh indices
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # the subject's right eye is on the picture's left


@dataclass(frozen=True)
class Letterbox:
    scale: float  # detector pixels per picture pixel
    pad_x: float
    pad_y: float

    def to_picture(self, xy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Fractions of the detector's square → picture pixels."""
        pixels = xy * DETECTOR_SIZE - np.array([self.pad_x, self.pad_y], dtype=np.float32)
        result: npt.NDArray[np.float32] = pixels / self.scale
        return result


@dataclass(frozen=True)
class Detection:
    score: float
    box: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax in picture pixels
    keypoints: npt.NDArray[np.float32]  # [6, 2] picture pixels

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


@dataclass(frozen=True)
class Region:
    """A square, rotated region of the picture: centre, side and rotation (radians)."""

    cx: float
    cy: float
    side: float
    angle: float

    def crop(self, picture: Image, size: int = MESH_SIZE) -> tuple[Image, npt.NDArray[np.float64]]:
        """The region cut out at size × size (upright), and the affine crop → picture."""
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        unit = self.side / size
        # crop pixel (u, v) → picture: centre + R(angle) · ((u, v) − size/2) · unit
        linear = np.array([[cos, -sin], [sin, cos]]) * unit
        shift = np.array([self.cx, self.cy]) - linear @ np.array([size / 2, size / 2])
        to_picture = np.concatenate([linear, shift[:, np.newaxis]], axis=1)
        crop = cv2.warpAffine(
            picture,
            to_picture,
            (size, size),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
        )
        return np.asarray(crop, dtype=np.uint8), to_picture


def letterbox(picture: Image) -> tuple[Image, Letterbox]:
    """The picture fitted into the detector's square, centred, with black bars."""
    height, width = picture.shape[:2]
    scale = DETECTOR_SIZE / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(picture, (new_w, new_h), interpolation=cv2.INTER_AREA)
    square = np.zeros((DETECTOR_SIZE, DETECTOR_SIZE, 3), dtype=np.uint8)
    pad_x, pad_y = (DETECTOR_SIZE - new_w) // 2, (DETECTOR_SIZE - new_h) // 2
    square[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return square, Letterbox(scale, pad_x, pad_y)


def detections(faces: npt.NDArray[np.float32], box: Letterbox) -> list[Detection]:
    """The detector's rows (contracts.FACE_DETECT) in picture pixels, largest first."""
    found = []
    for row in faces:
        corners = box.to_picture(row[1:5].reshape(2, 2)).reshape(-1)
        keypoints = box.to_picture(row[5:].reshape(-1, 2))
        found.append(Detection(float(row[0]), tuple(float(v) for v in corners), keypoints))  # type: ignore[arg-type]
    return sorted(found, key=lambda d: -d.size)


def _level(right: npt.NDArray[np.float32], left: npt.NDArray[np.float32]) -> float:
    """The rotation that brings the line between the eyes level."""
    return math.atan2(float(left[1] - right[1]), float(left[0] - right[0]))


def region_of(detection: Detection) -> Region:
    x0, y0, x1, y1 = detection.box
    return Region(
        cx=(x0 + x1) / 2,
        cy=(y0 + y1) / 2,
        side=max(x1 - x0, y1 - y0) * ROI_SCALE,
        angle=_level(detection.keypoints[0], detection.keypoints[1]),
    )


def region_around(points: Points) -> Region:
    """The region the mesh expects around a face it has already found once."""
    angle = _level(points[RIGHT_EYE_OUTER], points[LEFT_EYE_OUTER])
    cos, sin = math.cos(-angle), math.sin(-angle)
    xy = points[:, :2].astype(np.float64)
    upright = xy @ np.array([[cos, sin], [-sin, cos]])
    low, high = upright.min(axis=0), upright.max(axis=0)
    centre = (low + high) / 2 @ np.array([[cos, -sin], [sin, cos]])
    side = float(max(high - low)) * ROI_SCALE
    return Region(cx=float(centre[0]), cy=float(centre[1]), side=side, angle=angle)


def to_picture(landmarks: npt.NDArray[np.float32], to_picture: npt.NDArray[np.float64]) -> Points:
    """The mesh's points (fractions of its crop) → picture pixels; z keeps the x scale."""
    crop_xy = landmarks[:, :2].astype(np.float64) * MESH_SIZE
    xy = crop_xy @ to_picture[:, :2].T + to_picture[:, 2]
    unit = math.hypot(to_picture[0, 0], to_picture[1, 0])
    z = landmarks[:, 2:3].astype(np.float64) * MESH_SIZE * unit
    result: Points = np.concatenate([xy, z], axis=1).astype(np.float32)
    return result
