"""From an uploaded picture to a portrait that can talk: decoding within limits, whether the face
found can be animated, and framing it (head and shoulders, the video's size).

Every refusal is a `PortraitError` with a stable code and a message a person can act on.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from media.avatar.photo import mesh
from media.avatar.photo.mesh import FaceFrame

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
FACE_SHARE = 0.40  # of the frame's height, forehead to chin
MIN_LIP_REDNESS = 2.0  # CIELAB a*, lips over cheeks
MIN_LIP_EDGES = 1.3  # vertical gradient over the mouth, relative to the cheeks'
_SKIN = [205, 425, 50, 280, 199, 175]  # cheeks and chin


class PortraitError(ValueError):
    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_pixels: int = 40_000_000
    min_eye_distance_px: float = 28.0
    max_yaw_degrees: float = 30.0
    max_pitch_degrees: float = 25.0
    min_eye_opening: float = 0.12
    min_presence: float = 0.5


def decode(data: bytes, limits: Limits) -> npt.NDArray[np.uint8]:
    """JPEG, PNG or WebP bytes → RGB pixels, upright as the camera meant (EXIF)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format or "unknown"
                if kind not in FORMATS:
                    raise PortraitError(
                        "unsupported_format",
                        f"the file is {kind}; send a JPEG, PNG or WebP picture",
                        status=415,
                    )
                if image.width * image.height > limits.max_pixels:
                    raise PortraitError(
                        "too_many_pixels",
                        f"the picture is {image.width}×{image.height}; at most "
                        f"{limits.max_pixels:,} pixels",
                        status=413,
                    )
                image.load()
                upright = ImageOps.exif_transpose(image)
                if upright.mode in ("RGBA", "LA", "P"):
                    rgba = upright.convert("RGBA")
                    flat = Image.new("RGB", rgba.size, (255, 255, 255))
                    flat.paste(rgba, mask=rgba.getchannel("A"))
                    return np.asarray(flat)
                return np.asarray(upright.convert("RGB"))
    except PortraitError:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as error:
        if isinstance(error, UnidentifiedImageError):
            raise PortraitError(
                "not_an_image", "the file is not a picture (JPEG, PNG or WebP)", 415
            ) from error
        raise PortraitError("too_many_pixels", f"the picture is too large: {error}", 413) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise PortraitError(
            "corrupt_image", f"the picture cannot be read (truncated or corrupt): {error}"
        ) from error


@dataclass(frozen=True)
class Pose:
    yaw: float  # degrees, + turned to the picture's right
    pitch: float
    roll: float
    eye_opening: tuple[float, float]  # lid gap / eye width, right and left eye


def pose(points: npt.NDArray[np.float32]) -> Pose:
    xyz = points.astype(np.float64)
    across = xyz[mesh.LEFT_CHEEK] - xyz[mesh.RIGHT_CHEEK]
    down = xyz[mesh.CHIN] - xyz[mesh.FOREHEAD]
    yaw = math.degrees(math.atan2(across[2], math.hypot(across[0], across[1])))
    pitch = math.degrees(math.atan2(-down[2], math.hypot(down[0], down[1])))
    roll = math.degrees(math.atan2(across[1], across[0]))
    openings = []
    for corners, upper, lower, _ in mesh.EYES:
        width = np.linalg.norm(xyz[corners[0], :2] - xyz[corners[1], :2])
        gap = np.linalg.norm(xyz[upper[2:5], :2] - xyz[lower[2:5], :2], axis=1).mean()
        openings.append(float(gap / max(width, 1e-6)))
    return Pose(yaw, pitch, roll, (openings[0], openings[1]))


def mouth_cover(picture: npt.NDArray[np.uint8], points: npt.NDArray[np.float32]) -> str | None:
    """What says the mouth is hidden (a hand, a mask), or None. The face mesh places lips
    even on a hand; the picture tells: lips are redder than the cheeks (CIELAB a*), and the
    line between the lips is the sharpest horizontal edge on a face."""
    xy = points[:, :2]
    unit = FaceFrame.of(points).unit
    lab = cv2.cvtColor(picture, cv2.COLOR_RGB2LAB).astype(np.float32)
    lips = np.zeros(picture.shape[:2], np.uint8)
    for outer, inner in (
        (mesh.UPPER_LIP_OUTER, mesh.UPPER_LIP_INNER),
        (mesh.LOWER_LIP_OUTER, mesh.LOWER_LIP_INNER),
    ):
        cv2.fillPoly(lips, [np.round(xy[outer + inner[::-1]]).astype(np.int32)], (1,))
    skin = np.zeros(picture.shape[:2], np.uint8)
    for index in _SKIN:
        centre = (int(xy[index, 0]), int(xy[index, 1]))
        cv2.circle(skin, centre, max(2, int(unit * 0.06)), (1,), -1)
    mouth = np.zeros(picture.shape[:2], np.uint8)
    whole = xy[mesh.UPPER_LIP_OUTER + mesh.LOWER_LIP_OUTER[::-1]]
    cv2.fillPoly(mouth, [np.round(whole).astype(np.int32)], (1,))
    if not lips.any() or not skin.any():
        return None
    redness = float(lab[lips > 0, 1].mean() - lab[skin > 0, 1].mean())
    gray = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY).astype(np.float32)
    edges = np.abs(np.asarray(cv2.Sobel(gray, cv2.CV_32F, 0, 1), np.float32))
    sharpness = float(edges[mouth > 0].mean()) / max(float(edges[skin > 0].mean()), 1.0)
    if redness < MIN_LIP_REDNESS:
        return f"the lips are no redder than the cheeks (a* {redness:+.1f})"
    if sharpness < MIN_LIP_EDGES:
        return f"no line between the lips ({sharpness:.1f}× the cheeks' texture)"
    return None


def check(
    picture: npt.NDArray[np.uint8],
    points: npt.NDArray[np.float32],
    presence: float,
    limits: Limits,
) -> Pose:
    """Refuses a face that cannot be animated well; returns its pose."""
    if presence < limits.min_presence:
        raise PortraitError(
            "face_hidden",
            f"the face is partly hidden or unclear (confidence {presence:.2f}): show the whole "
            "face, nothing over the mouth or eyes",
        )
    unit = FaceFrame.of(points).unit
    if unit < limits.min_eye_distance_px:
        raise PortraitError(
            "face_too_small",
            f"the face is too small to animate ({unit:.0f} px between the eyes; at least "
            f"{limits.min_eye_distance_px:.0f}): send a closer or larger picture",
        )
    found = pose(points)
    if abs(found.yaw) > limits.max_yaw_degrees:
        raise PortraitError(
            "face_turned",
            f"the face is turned {abs(found.yaw):.0f}° to the side (at most "
            f"{limits.max_yaw_degrees:.0f}°): use a picture facing the camera",
        )
    if abs(found.pitch) > limits.max_pitch_degrees:
        raise PortraitError(
            "face_tilted",
            f"the face is tilted {abs(found.pitch):.0f}° up or down (at most "
            f"{limits.max_pitch_degrees:.0f}°): use a picture facing the camera",
        )
    if max(found.eye_opening) < limits.min_eye_opening:
        raise PortraitError("eyes_closed", "the eyes are closed: use a picture with open eyes")
    cover = mouth_cover(picture, points)
    if cover is not None:
        raise PortraitError(
            "mouth_hidden",
            f"something seems to cover the mouth ({cover}): use a picture with the mouth in view",
        )
    return found


def frame(
    picture: npt.NDArray[np.uint8], points: npt.NDArray[np.float32], width: int, height: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """Head and shoulders at width × height, the face centred and FACE_SHARE of the height;
    the picture's edge repeats where the frame reaches past it. Returns the framed portrait
    and the points in its pixels."""
    xy = points[:, :2]
    top, bottom = float(xy[:, 1].min()), float(xy[:, 1].max())
    centre_x = float((xy[:, 0].min() + xy[:, 0].max()) / 2)
    scale = FACE_SHARE * height / max(bottom - top, 1.0)  # output pixels per picture pixel
    left = centre_x - width / 2 / scale
    upper = (top + bottom) / 2 - 0.45 * height / scale
    affine = np.array([[scale, 0, -left * scale], [0, scale, -upper * scale]])
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    framed = cv2.warpAffine(
        picture, affine, (width, height), flags=interpolation, borderMode=cv2.BORDER_REPLICATE
    )
    moved = points.copy()
    moved[:, 0] = (points[:, 0] - left) * scale
    moved[:, 1] = (points[:, 1] - upper) * scale
    moved[:, 2] = points[:, 2] * scale
    return np.asarray(framed, dtype=np.uint8), moved
