"""BlazeFace short-range (MediaPipe's face detector): its SSD anchors, box decoding and
weighted non-maximum suppression, as MediaPipe's face_detection_short_range graph sets them.

Coordinates are fractions of the detector's 128 × 128 input. Keypoints, in order: the
subject's right eye, left eye, nose tip, mouth centre, right ear, left ear.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SIZE = 128
KEYPOINTS = 6
COLUMNS = 5 + 2 * KEYPOINTS  # score, xmin, ymin, xmax, ymax, then (x, y) per keypoint
_STRIDES = (8, 16, 16, 16)

Floats = npt.NDArray[np.float32]


def anchors() -> Floats:
    """[896, 2] anchor centres: two per cell of the 16 × 16 grid, six per cell of the 8 × 8."""
    centres: list[tuple[float, float]] = []
    layer = 0
    while layer < len(_STRIDES):
        stride = _STRIDES[layer]
        per_cell = 0
        while layer < len(_STRIDES) and _STRIDES[layer] == stride:
            per_cell += 2  # aspect ratio 1 and the interpolated scale, fixed size
            layer += 1
        cells = SIZE // stride
        for y in range(cells):
            for x in range(cells):
                centres.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell)
    return np.array(centres, dtype=np.float32)


ANCHORS = anchors()


def decode(regressors: Floats, logits: Floats, min_score: float) -> Floats:
    """One image's raw outputs ([896, 16], [896, 1]) → [n, COLUMNS] boxes above min_score."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits[:, 0], -80.0, 80.0)))
    keep = scores >= min_score
    raw = regressors[keep] / SIZE
    centre = ANCHORS[keep]
    cx, cy = raw[:, 0] + centre[:, 0], raw[:, 1] + centre[:, 1]
    half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
    points = raw[:, 4:].reshape(-1, KEYPOINTS, 2) + centre[:, np.newaxis, :]
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    found: Floats = np.concatenate(
        [scores[keep, np.newaxis], boxes, points.reshape(len(raw), 2 * KEYPOINTS)], axis=1
    ).astype(np.float32)
    return found


def _iou(box: Floats, others: Floats) -> Floats:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    result: Floats = inter / np.maximum(area + areas - inter, 1e-9)
    return result


def weighted_nms(detections: Floats, iou: float) -> Floats:
    """Overlapping boxes of one face merged into their score-weighted mean, best first."""
    order = np.argsort(-detections[:, 0])
    remaining = detections[order]
    merged = []
    while len(remaining):
        overlap = _iou(remaining[0, 1:5], remaining[:, 1:5]) >= iou
        group = remaining[overlap]
        weights = group[:, :1] / group[:, 0].sum()
        face = (group[:, 1:] * weights).sum(axis=0)
        merged.append(np.concatenate([remaining[:1, 0], face]))
        remaining = remaining[~overlap]
    if not merged:
        return np.zeros((0, COLUMNS), dtype=np.float32)
    faces: Floats = np.stack(merged).astype(np.float32)
    return faces
