"""The simulated users' WebRTC client reads the mouth from what it decodes without making the
whole frame RGB: the regions it reads are what the whole conversion gives."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from aiortc.codecs.vpx import Vp8Decoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame
from av.video.reformatter import VideoReformatter

from benchmarks.harness.webrtc_client import rgb_region
from media.avatar import draw
from media.avatar.animator import FaceAnimator
from media.avatar.registry import load_avatar
from media.avatar.visemes import INDEX, silence
from webrtc.encoders import AvatarVp8Encoder
from webrtc.pictures import to_yuv
from webrtc.tracks import VIDEO_CLOCK


def test_a_region_is_what_the_whole_frame_converted_shows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    draw.write_avatar(draw.STYLES[0], tmp_path)
    avatar = load_avatar(tmp_path / draw.STYLES[0].avatar_id)
    weights = silence(4)
    weights[2:, INDEX["sil"]], weights[2:, INDEX["aa"]] = 0.0, 1.0
    encoder, decoder = AvatarVp8Encoder(), Vp8Decoder()
    whole = VideoReformatter()
    for index, pixels in enumerate(FaceAnimator(avatar).speak(weights)):
        frame = to_yuv(pixels)
        frame.pts, frame.time_base = index * (VIDEO_CLOCK // 25), Fraction(1, VIDEO_CLOCK)
        payloads, timestamp = encoder.encode(frame, force_keyframe=index == 0)
        data = b"".join(vp8_depayload(p) for p in payloads)
        (decoded,) = decoder.decode(JitterFrame(data=data, timestamp=timestamp))
        rgb = whole.reformat(decoded, format="rgb24", threads=1).to_ndarray()
        for rows, cols in [
            (slice(278, 346), slice(196, 316)),  # even edges
            (slice(5, 25), slice(5, 25)),
            (slice(101, 170), slice(33, 98)),  # odd edges: chroma shared with the outside
        ]:
            region = rgb_region(decoded, rows, cols)
            assert region.shape == rgb[rows, cols].shape
            levels = np.abs(region.astype(int) - rgb[rows, cols])
            # the two upsample chroma differently: a sharp chroma edge can part them by 5
            assert (levels > 3).mean() < 1e-4 and levels.max() <= 6
