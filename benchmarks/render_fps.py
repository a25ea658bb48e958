"""Avatar rendering and H.264 encoding speed, one thread (frames per second per core).

.venv/bin/python -m benchmarks.render_fps [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from benchmarks.common import RESULTS, ROOT
from media.avatar.animator import FaceAnimator
from media.avatar.registry import load_avatar
from media.mp4 import encode_mp4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--avatar", default="avatar_tutor_13")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    avatar = load_avatar(ROOT / "avatars" / args.avatar)
    frames = int(args.seconds * 25)
    weights = np.random.default_rng(0).dirichlet(np.ones(15), size=frames).astype(np.float32)
    animator = FaceAnimator(avatar)
    animator.speak(weights[:50])  # warm the still cache, as a running stream has
    started = time.perf_counter()
    rendered = animator.speak(weights)
    render_s = time.perf_counter() - started
    pcm = np.zeros(int(args.seconds * 22050), dtype=np.float32)
    started = time.perf_counter()
    encode_mp4(rendered, pcm, 22050, 25)
    encode_s = time.perf_counter() - started
    report = {
        "frames": frames,
        "size": [avatar.width, avatar.height],
        "render_fps": round(frames / render_s, 1),
        "encode_mp4_fps": round(frames / encode_s, 1),
        "render_streams_per_core_at_25fps": round(frames / render_s / 25, 1),
    }
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "render_fps.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
