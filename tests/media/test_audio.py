"""Decoding what browsers upload (PyAV/FFmpeg) into 16 kHz mono."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.harness.speech import CONTAINERS, encode, piper_speech, silence
from media.audio import AudioError, decode_audio, level_dbfs, to_int16

SPEECH = piper_speech("Plants turn sunlight into food.")
SECONDS = SPEECH[0].size / SPEECH[1]


@pytest.mark.parametrize("container", sorted(CONTAINERS))
def test_every_browser_format_decodes_to_16k_mono(container: str) -> None:
    pcm = decode_audio(encode(SPEECH, container), rate=16000, max_seconds=30)
    assert pcm.dtype == np.float32
    assert abs(pcm.size / 16000 - SECONDS) < 0.12  # codecs pad a frame or two
    assert level_dbfs(pcm) > -30


def test_raw_pcm_needs_its_rate_and_then_decodes() -> None:
    pcm16 = to_int16(SPEECH[0]).astype("<i2").tobytes()
    decoded = decode_audio(
        pcm16, rate=16000, max_seconds=30, raw_format="pcm_s16le", raw_rate=SPEECH[1]
    )
    assert abs(decoded.size / 16000 - SECONDS) < 0.02
    with pytest.raises(AudioError, match="sample_rate"):
        decode_audio(pcm16, rate=16000, max_seconds=30, raw_format="pcm_s16le")
    with pytest.raises(AudioError, match="whole number"):
        decode_audio(pcm16[:-1], rate=16000, max_seconds=30, raw_format="pcm_s16le", raw_rate=22050)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"this is not audio at all" * 20, "could not decode"),
        (encode(SPEECH, "wav")[:60], "could not decode"),
    ],
)
def test_undecodable_audio_says_so(data: bytes, words: str) -> None:
    with pytest.raises(AudioError, match=words):
        decode_audio(data, rate=16000, max_seconds=30)


def test_audio_over_the_limit_is_refused() -> None:
    long = encode(silence(6.0), "wav")
    with pytest.raises(AudioError, match="longer than the limit of 5 s"):
        decode_audio(long, rate=16000, max_seconds=5)


def test_silence_is_far_below_speech() -> None:
    assert level_dbfs(silence(1.0)[0]) < -200
    assert level_dbfs(np.full(16000, 0.5, dtype=np.float32)) == pytest.approx(-6.02, abs=0.01)
