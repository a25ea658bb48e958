"""A few minutes of the soak (the hour-long run's numbers are in the README): nothing leaks,
drifts, freezes or goes unanswered, across reconnects, deleted sessions and a Triton kill."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import soak

pytestmark = pytest.mark.serving


def test_a_short_soak_holds(model_files: None, tmp_path: Path) -> None:
    result = soak.main(
        ["--users", "2", "--minutes", "2.5", "--reply-every", "10", "--out", str(tmp_path)]
    )
    replies = result["replies"]
    events = [e["event"] for e in result["events"]]
    assert "healthy again" in events and "reconnect" in events and "new session" in events
    killed = next(e["t_s"] for e in result["events"] if e["event"] == "tritonserver killed")
    healthy = next(e["t_s"] for e in result["events"] if e["event"] == "healthy again")
    outside = [r for r in replies if not killed - 5 <= r["t_s"] <= healthy + 5]
    assert outside and all(r["outcome"] in ("text", "interrupted") for r in outside), outside
    barge_ins = [r["barge_in_ms"] for r in outside if r["barge_in_ms"] is not None]
    assert barge_ins and max(barge_ins) < 300, barge_ins  # silent within 200 ms, plus jitter
    # the mouth opens before the sound: the lip-sync lead (40 ms) and the first shape's blend
    # into the frame before it; never late by more than two frames, never drifting
    offsets = [r["av_offset_ms"] for r in outside if r["av_offset_ms"] is not None]
    assert offsets and min(offsets) >= -160 and max(offsets) <= 80, offsets
    samples = result["samples"]
    assert min(s["fps_min"] for s in samples[1:] if s["fps_min"] is not None) > 15
    assert samples[-1]["engine_fds"] - samples[0]["engine_fds"] < 30
    assert (tmp_path / "soak.png").stat().st_size > 10_000
