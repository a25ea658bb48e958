"""A photo avatar of the public-domain astronaut portrait: its contact sheet (every viseme and a
blink), how long it takes to make, and how well the face keeps its identity.

    .venv/bin/python -m benchmarks.photo_avatar [--triton-url host:port]

Writes docs/images/photo_avatar_visemes.png and benchmarks/results/photo_avatar.md.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import cv2
import numpy as np
import numpy.typing as npt

from benchmarks.common import RESULTS, ROOT, triton_server
from benchmarks.harness import portraits
from benchmarks.harness.portraits import Identity
from media.avatar.photo.animator import PhotoAnimator
from media.avatar.photo.avatar import PhotoAvatar
from media.avatar.visemes import INDEX, VISEMES

SHEET = ROOT / "docs" / "images" / "photo_avatar_visemes.png"


def pose(avatar: PhotoAvatar, viseme: str | None) -> npt.NDArray[np.uint8]:
    """One viseme held (or, for None, the middle of a blink), the head at rest."""
    animator = PhotoAnimator(avatar, smoothing=0.0)
    animator._phase[:] = 0.0
    animator._blinks[:] = 10**9
    if viseme is None:
        animator._blinks[0] = 0
        shut: npt.NDArray[np.uint8] = animator.idle(2)[1]
        return shut
    weights = np.zeros((1, len(VISEMES)), dtype=np.float32)
    weights[0, INDEX[viseme]] = 1.0
    held: npt.NDArray[np.uint8] = animator.speak(weights)[0]
    return held


def sheet(avatar: PhotoAvatar) -> npt.NDArray[np.uint8]:
    x0, y0, x1, y1 = avatar.rig.box
    tiles = []
    for viseme in (*VISEMES, None):
        tile = np.ascontiguousarray(pose(avatar, viseme)[y0:y1, x0:x1])
        label = viseme or "blink"
        cv2.putText(tile, label, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4)
        cv2.putText(tile, label, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
        tiles.append(tile)
    rows = [np.concatenate(tiles[i : i + 8], axis=1) for i in range(0, len(tiles), 8)]
    return np.concatenate(rows, axis=0)


async def made(url: str | None) -> tuple[PhotoAvatar, float]:
    async with triton_server(url) as grpc_url:
        await portraits.photo_avatar(grpc_url, portraits.astronaut())  # warm the models
        started = time.perf_counter()
        avatar = await portraits.photo_avatar(grpc_url, portraits.astronaut())
        return avatar, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triton-url", default=None, help="default: start one")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    avatar, build_s = asyncio.run(made(args.triton_url))
    picture = sheet(avatar)
    SHEET.parent.mkdir(parents=True, exist_ok=True)
    small = cv2.resize(
        picture,
        (picture.shape[1] // 2, picture.shape[0] // 2),
        interpolation=cv2.INTER_AREA,
    )
    cv2.imwrite(str(SHEET), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    animator = PhotoAnimator(avatar)
    speaking = np.random.default_rng(0).dirichlet(np.ones(15) * 0.3, 250).astype(np.float32)
    idle = Identity.of(avatar, animator.idle(250))
    talking = Identity.of(avatar, animator.speak(speaking))
    report = "\n".join(
        [
            "# Photo avatar (astronaut portrait, 512 × 512)",
            "",
            f"- made in {build_s:.2f} s (face found in Triton, checked, framed, rigged; warm)",
            f"- identity outside the mouth, jaw and eyes, 10 s idle: blurred PSNR ≥ "
            f"{idle.min_psnr_db} dB, mean absolute difference ≤ {idle.max_mean_abs}",
            f"- identity, 10 s speaking: blurred PSNR ≥ {talking.min_psnr_db} dB, mean absolute "
            f"difference ≤ {talking.max_mean_abs}",
            f"- contact sheet: {SHEET.relative_to(ROOT)}",
            "",
        ]
    )
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "photo_avatar.md").write_text(report)


if __name__ == "__main__":
    main()
