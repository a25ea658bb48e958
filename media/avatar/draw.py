"""Draws the default tutor avatars (no downloads): `python -m media.avatar.draw`.

Each avatar is written in the folder format the registry reads (avatars/README.md):
background, a head layer that moves, a static front layer (shoulders), open and closed
eyes, and one mouth sprite per viseme. Everything is drawn at 4× and downsampled, so edges
are smooth.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from media.avatar.visemes import VISEMES

ROOT_AVATARS = Path(__file__).resolve().parents[2] / "avatars"
SCALE = 4
SIZE = 512
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Style:
    avatar_id: str
    name: str
    skin: RGB
    hair: RGB
    hair_style: str  # "long", "short", "bun"
    shirt: RGB
    backdrop: tuple[RGB, RGB]
    iris: RGB
    lips: RGB
    glasses: bool = False


STYLES = [
    Style("avatar_tutor_1", "Ms. Rivera", (233, 190, 160), (62, 40, 30), "long", (32, 140, 140),
          ((226, 240, 238), (178, 214, 210)), (92, 60, 38), (196, 96, 100)),
    Style("avatar_tutor_13", "Mr. Okafor", (141, 92, 64), (28, 22, 20), "short", (40, 62, 112),
          ((236, 232, 222), (200, 192, 176)), (52, 34, 24), (128, 62, 60), glasses=True),
    Style("avatar_tutor_2", "Li Laoshi", (242, 208, 182), (24, 22, 28), "bun", (176, 48, 56),
          ((244, 236, 226), (222, 204, 188)), (40, 30, 26), (204, 100, 104)),
]  # fmt: skip

# Where the features sit on the 512×512 head layer.
FACE_BOX = (136, 92, 376, 372)
EYES_BOX = (176, 186, 336, 236)  # x0, y0, x1, y1
MOUTH_CENTER = (256, 312)
MOUTH_SIZE = (128, 84)

# Mouth pose per viseme: opening, width, lip rounding, what shows inside.
MOUTHS: dict[str, dict[str, float]] = {
    "sil": {"open": 0.0, "width": 1.0, "round": 0.0},
    "PP": {"open": 0.0, "width": 0.92, "round": 0.1, "press": 1.0},
    "FF": {"open": 0.12, "width": 1.0, "round": 0.0, "upper_teeth": 1.0, "bite": 1.0},
    "TH": {"open": 0.22, "width": 1.0, "round": 0.0, "upper_teeth": 1.0, "tongue": 1.0},
    "DD": {"open": 0.3, "width": 1.02, "round": 0.0, "upper_teeth": 1.0, "tongue": 0.5},
    "kk": {"open": 0.36, "width": 1.0, "round": 0.1, "upper_teeth": 0.6},
    "CH": {"open": 0.3, "width": 0.84, "round": 0.55, "upper_teeth": 1.0, "lower_teeth": 1.0},
    "SS": {"open": 0.16, "width": 1.1, "round": 0.0, "upper_teeth": 1.0, "lower_teeth": 1.0},
    "nn": {"open": 0.26, "width": 1.0, "round": 0.0, "upper_teeth": 0.8, "tongue": 0.7},
    "RR": {"open": 0.34, "width": 0.88, "round": 0.45, "upper_teeth": 0.5},
    "aa": {"open": 1.0, "width": 1.04, "round": 0.05, "upper_teeth": 0.8, "tongue": 0.5},
    "E": {"open": 0.56, "width": 1.14, "round": 0.0, "upper_teeth": 1.0, "tongue": 0.3},
    "ih": {"open": 0.42, "width": 1.2, "round": 0.0, "upper_teeth": 1.0, "lower_teeth": 0.6},
    "oh": {"open": 0.74, "width": 0.76, "round": 0.85, "tongue": 0.4},
    "ou": {"open": 0.44, "width": 0.6, "round": 1.0},
}


def _s(values: tuple[float, ...]) -> tuple[int, ...]:
    return tuple(round(v * SCALE) for v in values)


def _canvas(width: int, height: int, mode: str = "RGBA") -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new(mode, (width * SCALE, height * SCALE), (0, 0, 0, 0) if mode == "RGBA" else 0)
    return image, ImageDraw.Draw(image)


def _finish(image: Image.Image) -> Image.Image:
    return image.resize((image.width // SCALE, image.height // SCALE), Image.Resampling.LANCZOS)


def _shade(color: RGB, factor: float) -> RGB:
    return tuple(max(0, min(255, int(c * factor))) for c in color)  # type: ignore[return-value]


def background(style: Style) -> Image.Image:
    top, bottom = style.backdrop
    image = Image.new("RGB", (SIZE, SIZE))
    pixels = image.load()
    assert pixels is not None
    for y in range(SIZE):
        t = y / (SIZE - 1)
        row = tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        for x in range(SIZE):
            vignette = 1 - 0.12 * ((x - SIZE / 2) / (SIZE / 2)) ** 2
            pixels[x, y] = tuple(int(c * vignette) for c in row)
    return image


def front(style: Style) -> Image.Image:
    """Shoulders and collar: drawn over the neck, they stay still while the head moves."""
    image, draw = _canvas(SIZE, SIZE)
    draw.rounded_rectangle(_s((70, 430, 442, 600)), radius=90 * SCALE, fill=style.shirt)
    draw.polygon(_s((206, 430, 256, 478, 306, 430)), fill=_shade(style.skin, 0.92))
    collar = _shade(style.shirt, 0.78)
    draw.line(_s((200, 428, 256, 482, 312, 428)), fill=collar, width=8 * SCALE, joint="curve")
    return _finish(image)


def head(style: Style) -> Image.Image:
    image, draw = _canvas(SIZE, SIZE)
    skin, shadow = style.skin, _shade(style.skin, 0.86)
    if style.hair_style == "long":  # hair behind the head
        draw.rounded_rectangle(_s((112, 90, 400, 470)), radius=120 * SCALE, fill=style.hair)
    draw.rectangle(_s((220, 330, 292, 470)), fill=shadow)  # neck
    for x in (126, 386):  # ears
        draw.ellipse(_s((x - 22, 210, x + 22, 276)), fill=skin, outline=shadow, width=2 * SCALE)
    draw.ellipse(_s(FACE_BOX), fill=skin)
    for x in (196, 316):  # cheeks
        draw.ellipse(_s((x - 24, 268, x + 24, 292)), fill=_blend(skin, (240, 130, 130), 0.25))
    draw.arc(_s((244, 244, 268, 282)), 20, 140, fill=shadow, width=3 * SCALE)  # nose
    brow = _shade(style.hair, 1.1)
    for x0, tilt in ((186, -4), (282, 4)):
        draw.line(
            _s((x0, 176 + max(tilt, 0), x0 + 44, 176 - min(tilt, 0))), fill=brow, width=6 * SCALE
        )
    _hair(draw, style)
    if style.glasses:
        frame = (30, 30, 34)
        for x in (216, 296):
            draw.rounded_rectangle(
                _s((x - 36, 188, x + 36, 238)), radius=12 * SCALE, outline=frame, width=4 * SCALE
            )
        draw.line(_s((252, 206, 260, 206)), fill=frame, width=4 * SCALE)
    return _finish(image)


def _hair(draw: ImageDraw.ImageDraw, style: Style) -> None:
    hair = style.hair
    if style.hair_style == "short":
        draw.chord(_s((132, 72, 380, 250)), 180, 360, fill=hair)
        draw.ellipse(_s((128, 110, 168, 200)), fill=hair)
        draw.ellipse(_s((344, 110, 384, 200)), fill=hair)
    elif style.hair_style == "bun":
        draw.ellipse(_s((210, 28, 302, 108)), fill=hair)
        draw.chord(_s((128, 74, 384, 262)), 180, 360, fill=hair)
        draw.pieslice(_s((128, 74, 300, 262)), 180, 250, fill=hair)
    else:  # long, with a side parting
        draw.chord(_s((124, 70, 388, 270)), 180, 360, fill=hair)
        draw.pieslice(_s((124, 70, 330, 300)), 175, 260, fill=hair)
        draw.pieslice(_s((250, 70, 392, 330)), 270, 5, fill=hair)


def _blend(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def eyes(style: Style, closed: bool) -> Image.Image:
    x0, y0, x1, y1 = EYES_BOX
    image, draw = _canvas(x1 - x0, y1 - y0)
    lash = (40, 30, 28)
    for cx in (40, 120):  # eye centres, relative to the box
        if closed:
            draw.arc(_s((cx - 24, 6, cx + 24, 34)), 20, 160, fill=lash, width=4 * SCALE)
            continue
        draw.ellipse(
            _s((cx - 24, 10, cx + 24, 42)), fill=(252, 252, 250), outline=lash, width=3 * SCALE
        )
        draw.ellipse(_s((cx - 12, 14, cx + 12, 38)), fill=style.iris)
        draw.ellipse(_s((cx - 6, 20, cx + 6, 32)), fill=(16, 12, 12))
        draw.ellipse(_s((cx + 1, 18, cx + 6, 23)), fill=(255, 255, 255))
        draw.arc(_s((cx - 25, 8, cx + 25, 40)), 200, 340, fill=lash, width=4 * SCALE)
    return _finish(image)


def mouth(style: Style, viseme: str) -> Image.Image:
    """The lips, and what shows between them, for one viseme; centred in MOUTH_SIZE."""
    pose = MOUTHS[viseme]
    width, height = MOUTH_SIZE
    image, draw = _canvas(width, height)
    cx, cy = width / 2, height / 2
    half_w = 44 * pose["width"] * (1 - 0.25 * pose["round"])
    opening = 4 + 30 * pose["open"]
    lip = style.lips
    if pose["open"] < 0.05:  # closed: a lip line, pressed lips a little fuller
        thick = 7 + 4 * pose.get("press", 0.0)
        draw.ellipse(_s((cx - half_w, cy - thick / 2, cx + half_w, cy + thick / 2)), fill=lip)
        draw.line(
            _s((cx - half_w + 3, cy, cx + half_w - 3, cy)), fill=_shade(lip, 0.55), width=2 * SCALE
        )
        return _finish(image)
    outer = (cx - half_w, cy - opening / 2 - 7, cx + half_w, cy + opening / 2 + 8)
    inner = (cx - half_w + 7, cy - opening / 2, cx + half_w - 7, cy + opening / 2)
    draw.ellipse(_s(outer), fill=lip)
    draw.ellipse(_s(inner), fill=(74, 26, 34))
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse(_s(inner), fill=255)
    inside, inside_draw = _canvas(width, height)
    teeth = (248, 246, 240)
    if pose.get("upper_teeth", 0) > 0:
        band = 5 + 4 * pose["upper_teeth"]
        inside_draw.rectangle(_s((inner[0], inner[1], inner[2], inner[1] + band)), fill=teeth)
    if pose.get("lower_teeth", 0) > 0:
        band = 3 + 3 * pose["lower_teeth"]
        inside_draw.rectangle(_s((inner[0], inner[3] - band, inner[2], inner[3])), fill=teeth)
    if pose.get("tongue", 0) > 0:
        rise = opening * (0.25 + 0.35 * pose["tongue"])
        inside_draw.ellipse(
            _s((cx - half_w * 0.55, inner[3] - rise, cx + half_w * 0.55, inner[3] + rise)),
            fill=(210, 92, 104),
        )
    image.paste(inside, (0, 0), Image.composite(inside, Image.new("RGBA", image.size), mask))
    if pose.get("bite", 0) > 0:  # FF: lower lip tucked under the upper teeth
        draw.rectangle(_s((cx - half_w + 8, cy - 2, cx + half_w - 8, cy + 3)), fill=teeth)
    return _finish(image.filter(ImageFilter.SMOOTH))


def drawing_version() -> str:
    """Changes whenever the drawing code does: stale drawings are redrawn."""
    source = Path(__file__).read_bytes() + Path(__file__).with_name("visemes.py").read_bytes()
    return hashlib.sha256(source).hexdigest()[:16]


def is_current(style: Style, folder: Path) -> bool:
    stamp = folder / style.avatar_id / ".drawn"
    return stamp.is_file() and stamp.read_text() == drawing_version()


def write_avatar(style: Style, folder: Path) -> None:
    target = folder / style.avatar_id
    (target / "mouth").mkdir(parents=True, exist_ok=True)
    background(style).save(target / "background.png")
    head(style).save(target / "head.png")
    front(style).save(target / "front.png")
    eyes(style, closed=False).save(target / "eyes_open.png")
    eyes(style, closed=True).save(target / "eyes_closed.png")
    for viseme in VISEMES:
        mouth(style, viseme).save(target / "mouth" / f"{viseme}.png")
    x0, y0 = EYES_BOX[:2]
    (target / "avatar.toml").write_text(
        f'name = "{style.name}"\n'
        f"size = [{SIZE}, {SIZE}]\n"
        f"eyes_at = [{x0}, {y0}]\n"
        f"mouth_center = [{MOUTH_CENTER[0]}, {MOUTH_CENTER[1]}]\n"
        "\n[motion]\n"
        "sway_px = 3.0\n"
        "bob_px = 2.0\n"
        "blink_interval_s = [2.5, 6.0]\n"
        f"seed = {sum(map(ord, style.avatar_id))}\n",
        encoding="utf-8",
    )
    (target / ".drawn").write_text(drawing_version())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT_AVATARS)
    parser.add_argument("--if-stale", action="store_true", help="keep avatars drawn by this code")
    args = parser.parse_args()
    for style in STYLES:
        if args.if_stale and is_current(style, args.out):
            continue
        write_avatar(style, args.out)
        print(f"drew {style.avatar_id} into {args.out / style.avatar_id}")


if __name__ == "__main__":
    main()
