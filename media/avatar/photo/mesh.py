"""Names for MediaPipe face-mesh points, and the face's own frame of reference.

Index lists follow each contour from the picture's left to its right. "Right" and "left" are
the subject's: the subject's right eye is on the picture's left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

UPPER_LIP_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LOWER_LIP_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
UPPER_LIP_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LOWER_LIP_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
MOUTH_CORNERS = (61, 291)
CHIN = 152
FOREHEAD = 10
NOSE_TIP = 1
RIGHT_CHEEK, LEFT_CHEEK = 234, 454

RIGHT_EYE_UPPER = [246, 161, 160, 159, 158, 157, 173]
RIGHT_EYE_LOWER = [7, 163, 144, 145, 153, 154, 155]
RIGHT_EYE_CORNERS = (33, 133)
RIGHT_LID_CREASE = [247, 30, 29, 27, 28, 56, 190]
LEFT_EYE_UPPER = [398, 384, 385, 386, 387, 388, 466]
LEFT_EYE_LOWER = [382, 381, 380, 374, 373, 390, 249]
LEFT_EYE_CORNERS = (362, 263)
LEFT_LID_CREASE = [414, 286, 258, 257, 259, 260, 467]
EYES = (
    (RIGHT_EYE_CORNERS, RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_LID_CREASE),
    (LEFT_EYE_CORNERS, LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_LID_CREASE),
)

FACE_OVAL = [
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
]  # fmt: skip

XY = npt.NDArray[np.float32]  # [n, 2]


def eye_polygon(corners: tuple[int, int], upper: list[int], lower: list[int]) -> list[int]:
    """An eye's opening as one closed contour."""
    return [corners[0], *upper, corners[1], *reversed(lower)]


@dataclass(frozen=True)
class FaceFrame:
    """Coordinates in units of the eye distance, origin between the mouth corners, x along the
    mouth (to the picture's right), y down the face."""

    origin: npt.NDArray[np.float64]
    ex: npt.NDArray[np.float64]
    ey: npt.NDArray[np.float64]
    unit: float  # eye distance (outer corners) in pixels

    @classmethod
    def of(cls, points: XY) -> FaceFrame:
        xy = points[:, :2].astype(np.float64)
        right, left = xy[MOUTH_CORNERS[0]], xy[MOUTH_CORNERS[1]]
        eyes = xy[LEFT_EYE_CORNERS[1]] - xy[RIGHT_EYE_CORNERS[0]]
        ex = eyes / np.linalg.norm(eyes)
        ey = np.array([-ex[1], ex[0]])
        return cls((right + left) / 2, ex, ey, float(np.linalg.norm(eyes)))

    def local(self, xy: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
        centred = np.asarray(xy, dtype=np.float64)[..., :2] - self.origin
        result: npt.NDArray[np.float64] = np.stack([centred @ self.ex, centred @ self.ey], -1)
        return result / self.unit

    def to_pixels(self, moves: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        """Displacements in face units → picture pixels."""
        pixels = (moves[..., :1] * self.ex + moves[..., 1:2] * self.ey) * self.unit
        return pixels.astype(np.float32)
