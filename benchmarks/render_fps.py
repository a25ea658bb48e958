"""Avatar rendering and H.264 encoding speed, one thread (frames per second per core): a drawn
avatar and a photo avatar (the public-domain astronaut portrait, its face found by the face
models in Triton), the same viseme weights for both.

.venv/bin/python -m benchmarks.render_fps [--seconds 20] [--triton-url host:port]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

import cv2
import numpy as np

from benchmarks.common import RESULTS, ROOT, triton_server
from benchmarks.harness import portraits
from media.avatar.animator import Animator, FaceAnimator
from media.avatar.photo.animator import PhotoAnimator
from media.avatar.photo.avatar import PhotoAvatar
from media.avatar.registry import load_avatar
from media.avatar.visemes import Weights
from media.mp4 import encode_mp4


def measure(animator: Animator, weights: Weights, seconds: float) -> dict[str, Any]:
    animator.speak(weights[:50])  # warm caches, as a running stream has
    frames = len(weights)
    started = time.perf_counter()
    rendered = animator.speak(weights)
    render_s = time.perf_counter() - started
    started = time.perf_counter()
    animator.idle(frames)
    idle_s = time.perf_counter() - started
    pcm = np.zeros(int(seconds * 22050), dtype=np.float32)
    started = time.perf_counter()
    encode_mp4(rendered, pcm, 22050, 25)
    encode_s = time.perf_counter() - started
    return {
        "size": [animator.width, animator.height],
        "render_ms_per_frame": round(render_s / frames * 1000, 2),
        "idle_ms_per_frame": round(idle_s / frames * 1000, 2),
        "render_fps": round(frames / render_s, 1),
        "encode_mp4_fps": round(frames / encode_s, 1),
        "render_streams_per_core_at_25fps": round(frames / render_s / 25, 1),
    }


async def photo(triton_url: str | None) -> PhotoAvatar:
    async with triton_server(triton_url) as url:
        return await portraits.photo_avatar(url, portraits.astronaut())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--avatar", default="avatar_tutor_13")
    parser.add_argument("--triton-url", default=None, help="default: start one")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cv2.setNumThreads(1)
    frames = int(args.seconds * 25)
    weights = np.random.default_rng(0).dirichlet(np.ones(15), size=frames).astype(np.float32)
    drawn = measure(
        FaceAnimator(load_avatar(ROOT / "avatars" / args.avatar)), weights, args.seconds
    )
    pictured = measure(PhotoAnimator(asyncio.run(photo(args.triton_url))), weights, args.seconds)
    report = {
        "frames": frames,
        "drawn": {"avatar": args.avatar, **drawn},
        "photo": {"avatar": "astronaut portrait", **pictured},
        "photo_over_drawn_render_time": round(
            pictured["render_ms_per_frame"] / drawn["render_ms_per_frame"], 2
        ),
    }
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "render_fps.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
