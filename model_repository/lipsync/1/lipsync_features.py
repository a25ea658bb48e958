"""Audio features for the lip-sync network, and its frames → video frames.

The same code makes the training features (triton_ops/lipsync/train.py) and the served ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
HOP = 160  # 10 ms: the network's frame rate is 100 per second
WINDOW = 400
N_MELS = 40


def _htk_mel(freq: npt.NDArray[Any]) -> npt.NDArray[Any]:
    mel: npt.NDArray[Any] = 2595.0 * np.log10(1.0 + freq / 700.0)
    return mel


def _filterbank() -> npt.NDArray[np.float32]:
    bins = np.linspace(0, SAMPLE_RATE / 2, WINDOW // 2 + 1)
    edges_mel = np.linspace(_htk_mel(np.array(60.0)), _htk_mel(np.array(7600.0)), N_MELS + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    rising = (bins[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    falling = (edges[2:, None] - bins[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    filters: npt.NDArray[np.float32] = weights.astype(np.float32)
    return filters


_FILTERS = _filterbank()
_WINDOW = np.hanning(WINDOW).astype(np.float32)


def features(audio: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """16 kHz mono → [frames, 40] log-mel, normalised per utterance (loudness and voice
    colour vary between speakers; their shape over time is what the mouth follows)."""
    audio = np.asarray(audio, dtype=np.float32)
    frames = max(1, int(np.ceil(audio.size / HOP)))
    padded = np.pad(audio, (WINDOW // 2, frames * HOP + WINDOW - audio.size - WINDOW // 2))
    windows = np.lib.stride_tricks.sliding_window_view(padded, WINDOW)[::HOP][:frames]
    power = np.abs(np.fft.rfft(windows * _WINDOW, axis=-1)) ** 2
    logmel = np.log(power @ _FILTERS.T + 1e-6)
    mean = logmel.mean(axis=0, keepdims=True)
    std = logmel.std(axis=0, keepdims=True) + 1e-3
    normalised: npt.NDArray[np.float32] = ((logmel - mean) / std).astype(np.float32)
    return normalised


def to_video_frames(probs: npt.NDArray[Any], samples: int, fps: int) -> npt.NDArray[np.float32]:
    """[network frames, V] at 100 per second → [video frames, V] at `fps`: each video frame
    averages the network frames inside its span; there are round(seconds × fps) of them."""
    count = max(1, round(samples / SAMPLE_RATE * fps))
    edges = np.round(np.arange(count + 1) * (SAMPLE_RATE / HOP) / fps).astype(np.int64)
    edges = np.minimum(edges, len(probs))
    cumulative = np.concatenate([np.zeros((1, probs.shape[1])), np.cumsum(probs, axis=0)])
    spans = np.maximum(edges[1:] - edges[:-1], 1)[:, None]
    pooled = (cumulative[edges[1:]] - cumulative[edges[:-1]]) / spans
    empty = edges[1:] <= edges[:-1]
    pooled[empty] = probs[np.minimum(edges[:-1][empty], len(probs) - 1)]
    frames: npt.NDArray[np.float32] = pooled.astype(np.float32)
    return frames
