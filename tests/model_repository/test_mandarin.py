"""Mandarin through Triton: the zh voice speaks, and Whisper hears it back in Simplified."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.harness.scoring import char_errors, traditional_characters
from media.audio import resample
from orchestrator.triton_client import TritonClient, TritonError
from triton_ops.contracts import ASR, TTS_ZH

pytestmark = pytest.mark.serving


async def speak(client: TritonClient, text: str) -> dict[str, np.ndarray]:
    return await client.infer(TTS_ZH, {"TEXT": np.array([[text.encode()]], dtype=np.object_)})


async def test_the_mandarin_voice_speaks_with_exact_durations(client: TritonClient) -> None:
    out = await speak(client, "你好，同学们。今天我们学习光合作用。")
    audio, phonemes, durations = out["AUDIO"][0], out["PHONEMES"][0], out["DURATIONS"][0]
    assert int((await client.parameters("tts_zh"))["sample_rate"]) == 24000
    assert 2.0 < audio.size / 24000 < 6.0 and float(np.abs(audio).max()) > 0.1
    assert durations.sum() == audio.size and len(durations) == len(phonemes)
    symbols = [p.decode() for p in phonemes]
    assert "n" in symbols and "i3" in symbols  # 你 = n i3 in the pinyin front end


async def test_nothing_to_say_is_an_error(client: TritonClient) -> None:
    with pytest.raises(TritonError, match="nothing speakable"):
        await speak(client, "……")


@pytest.mark.parametrize(
    "sentence",
    ["我们一起来学习分数。", "太阳从东边升起，从西边落下。", "请你再说一遍，好吗？"],
)
async def test_mandarin_round_trip_is_understood_in_simplified(
    client: TritonClient, sentence: str
) -> None:
    speech = await speak(client, sentence)
    pcm = resample(speech["AUDIO"][0], 24000, 16000)
    out = await client.infer(
        ASR, {"AUDIO": pcm.reshape(1, -1), "LANGUAGE": np.array([[b""]], dtype=np.object_)}
    )
    heard = out["TEXT"][0][0].decode()
    assert out["DETECTED_LANGUAGE"][0][0].decode() == "zh"
    errors, chars = char_errors(sentence, heard)
    assert errors / chars <= 0.3, heard
    assert not traditional_characters(heard), heard
