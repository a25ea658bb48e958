"""Audio in and out: decoding what browsers send, resampling, int16 and WAV for replies."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator

import av
import numpy as np
import numpy.typing as npt

PLAYBACK_RATE = 48_000  # what Opus (WebRTC) and AAC (MP4) carry; 20 ms = 960 samples


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


class AudioError(ValueError):
    """Audio the engine cannot use; the message says why, for the client."""


RAW_FORMATS = {"pcm_s16le": ("<i2", "s16"), "pcm_f32le": ("<f4", "flt")}


def decode_audio(
    data: bytes,
    *,
    rate: int,
    max_seconds: float,
    raw_format: str | None = None,
    raw_rate: int | None = None,
) -> npt.NDArray[np.float32]:
    """WAV, WebM/Opus, Ogg, MP3, M4A (any container FFmpeg reads) or raw PCM → mono float."""
    if not data:
        raise AudioError("the audio is empty")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    limit = int((max_seconds + 0.5) * rate)
    chunks: list[npt.NDArray[np.float32]] = []
    total = 0
    for frame in _raw_frames(data, raw_format, raw_rate) if raw_format else _container_frames(data):
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
            total += chunks[-1].size
        if total > limit:
            raise AudioError(f"the audio is longer than the limit of {max_seconds:g} s")
    chunks += [o.to_ndarray().reshape(-1).astype(np.float32) for o in resampler.resample(None)]
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if pcm.size == 0:
        raise AudioError("the audio holds no samples")
    if pcm.size > limit:
        raise AudioError(f"the audio is longer than the limit of {max_seconds:g} s")
    return pcm.astype(np.float32, copy=False)


def _container_frames(data: bytes) -> Iterator[av.AudioFrame]:
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise AudioError("the file has no audio stream")
            yield from container.decode(container.streams.audio[0])
    except av.FFmpegError as error:
        raise AudioError(f"could not decode the audio ({error.strerror or error})") from error


def _raw_frames(data: bytes, raw_format: str, raw_rate: int | None) -> Iterator[av.AudioFrame]:
    if raw_format not in RAW_FORMATS:
        raise AudioError(f"format {raw_format!r} is not one of {', '.join(RAW_FORMATS)}")
    if not raw_rate or not 8000 <= raw_rate <= 192_000:
        raise AudioError("raw PCM needs its sample_rate (8000–192000 Hz)")
    dtype, av_format = RAW_FORMATS[raw_format]
    width = np.dtype(dtype).itemsize
    if len(data) % width:
        raise AudioError(f"{raw_format} data must be a whole number of {width}-byte samples")
    samples = np.frombuffer(data, dtype=dtype)
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format=av_format, layout="mono")
    frame.sample_rate = raw_rate
    yield frame


def level_dbfs(pcm: npt.NDArray[np.float32]) -> float:
    """Loudness of the loudest 100 ms, in dB below full scale."""
    window = 1600 if pcm.size >= 1600 else max(pcm.size, 1)
    usable = (
        pcm[: pcm.size - pcm.size % window].reshape(-1, window)
        if pcm.size >= window
        else pcm.reshape(1, -1)
    )
    rms = float(np.sqrt((usable.astype(np.float64) ** 2).mean(axis=1).max()))
    return 20 * float(np.log10(rms + 1e-12))


def resample(pcm: npt.NDArray[np.float32], source: int, target: int) -> npt.NDArray[np.float32]:
    """Band-limited resampling of mono float PCM (FFmpeg's, through PyAV)."""
    if source == target:
        return pcm
    frame = av.AudioFrame.from_ndarray(
        pcm.reshape(1, -1).astype(np.float32), format="flt", layout="mono"
    )
    frame.sample_rate = source
    resampler = av.AudioResampler(format="flt", layout="mono", rate=target)
    parts = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    out: npt.NDArray[np.float32] = np.concatenate(parts).astype(np.float32, copy=False)
    return out
