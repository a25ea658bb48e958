"""Whisper's log-mel features, for every model whose network starts with Whisper's front end:
speech recognition (`asr`, 30 s windows) and end of turn (`turn`, smart-turn: 8 s windows).

Needs only numpy, so it serves in any Triton image.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
N_FFT = 400
HOP = 160
N_MELS = 80


def _hz_to_mel(freq: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(freq, dtype=np.float64)
    mels = 3.0 * hz / 200.0
    log_region = hz >= 1000.0
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(log_region, logarithmic, mels)


def _mel_to_hz(mels: npt.ArrayLike) -> npt.NDArray[np.float64]:
    mel = np.asarray(mels, dtype=np.float64)
    freq = 200.0 * mel / 3.0
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), freq)


def mel_filters(
    n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE
) -> npt.NDArray[np.float32]:
    """Triangular, area-normalised (Slaney) mel filterbank [n_mels, n_fft/2 + 1]."""
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_points = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2 : n_mels + 2] - mel_points[:n_mels]))[:, None]
    filters: npt.NDArray[np.float32] = weights.astype(np.float32)
    return filters


_FILTERS = mel_filters()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(
    np.float32
)  # periodic Hann


def log_mel(audio: npt.NDArray[Any], seconds: int = 30) -> npt.NDArray[np.float32]:
    """16 kHz mono float audio (≤ `seconds`, zero-padded at the end) → Whisper's normalised
    log-mel window [80, seconds·100]."""
    samples = seconds * SAMPLE_RATE
    audio = np.asarray(audio, dtype=np.float32)[:samples]
    padded = np.pad(audio, (0, samples - len(audio)))
    padded = np.pad(
        padded, N_FFT // 2, mode="reflect"
    )  # centred frames, as torch.stft(center=True)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][: samples // HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2
    mel = _FILTERS @ power.T.astype(np.float32)
    logs = np.log10(np.maximum(mel, 1e-10))
    logs = np.maximum(logs, logs.max() - 8.0)
    normalised: npt.NDArray[np.float32] = ((logs + 4.0) / 4.0).astype(np.float32)
    return normalised
