"""Reading a live stream's lips against its sound (the aiortc client's records)."""

from __future__ import annotations

import numpy as np

from benchmarks.harness.webrtc_client import LiveClient, Received


def speaking(client: LiveClient, since: float) -> list[Received]:
    return [r for r in client.audio if r.arrived >= since and r.value > 0.01]


def assert_lips_in_sync(client: LiveClient, sent: float) -> None:
    """A/V sync on the media clock: mouth area per video frame against loudness per frame;
    the mouth moves with the sound within a frame (it leads by ENGINE_LIPSYNC_LEAD_MS on
    purpose), and rests after."""
    start = speaking(client, sent)[0].media_s - 0.5
    video = [r for r in client.video if r.media_s >= start]
    audio = [r for r in client.audio if r.media_s >= start]
    frames = len(video)
    loud = np.zeros(frames)
    for r in audio:
        index = round((r.media_s - video[0].media_s) * 50) // 2  # two 20 ms packets a frame
        if 0 <= index < frames:
            loud[index] = max(loud[index], r.value)
    mouth = np.array([r.value for r in video])

    def correlation(lag: int) -> float:
        a = mouth[max(lag, 0) : frames + min(lag, 0)]
        b = loud[max(-lag, 0) : frames + min(-lag, 0)]
        return float(np.corrcoef(a, b)[0, 1])

    best = max(range(-4, 5), key=correlation)
    assert abs(best) <= 1 and correlation(best) > 0.3, {
        lag: round(correlation(lag), 2) for lag in range(-4, 5)
    }
    quiet, talking = mouth[loud < 0.002], mouth[loud > 0.05]
    assert talking.mean() > 1.5 * quiet.mean()  # moves while speaking, rests after
