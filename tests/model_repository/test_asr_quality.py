"""ASR quality regression on part of the held-out set (benchmarks/asr_eval.py has all of it).

Measured on the full set (README): English WER 4.2 % on our voice, 25–29 % on espeak-ng's
robotic voices; Mandarin CER 8.5 %. The bounds below sit well above that, so they flag a
broken model or pipeline, not a noisy clip.
"""

from __future__ import annotations

import pytest

from benchmarks.asr_eval import ENGLISH, MANDARIN, build_clips, evaluate, pooled
from orchestrator.triton_client import TritonClient

pytestmark = pytest.mark.serving


async def test_error_rates_stay_within_bounds(client: TritonClient) -> None:
    clips = await build_clips(client, ENGLISH[:8], MANDARIN[:5])
    keep = {"piper", "espeak-ng en-us", "piper + noise 10 dB", "zh voice"}
    report = await evaluate(client, [clip for clip in clips if clip.variant in keep])
    assert report["piper"]["error_rate"] <= 0.15, report
    assert report["piper + noise 10 dB"]["error_rate"] <= 0.2, report
    assert report["espeak-ng en-us"]["error_rate"] <= 0.5, report
    assert report["zh voice"]["error_rate"] <= 0.25, report
    assert pooled(report, "") <= 0.2, report
    assert all(row["language_id"] >= 0.9 for row in report.values()), report
    assert report["zh voice"]["traditional_outputs"] == 0, report
