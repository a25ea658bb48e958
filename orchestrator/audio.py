"""PCM helpers: float mono PCM ⇄ WAV bytes, base64 for JSON messages."""

from __future__ import annotations

import base64
import io
import wave

import numpy as np
import numpy.typing as npt


def to_int16(pcm: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    return (np.clip(pcm, -1.0, 1.0) * 32767.0).astype(np.int16)


def wav_bytes(pcm: npt.NDArray[np.float32], sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(to_int16(pcm).tobytes())
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
