"""Triton Python-backend model: speech (16 kHz) → viseme weights per video frame.

The utterances of a dynamic batch are padded into one network run; each request's rows are
cut back to its own length, turned into probabilities and pooled to the video frame rate.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # graph_runners
sys.path.insert(0, str(Path(__file__).resolve().parent))
from audio_input import audio_problem
from graph_runners import Array, ModelIO, runner_from_config
from lipsync_features import HOP, SAMPLE_RATE, features, to_video_frames

SILENCE_DBFS = -55.0  # quieter frames are silence whatever the network says


def quiet(audio: Array, frames: int) -> npt.NDArray[np.bool_]:
    """Frames (10 ms) too quiet to be speech: per-utterance normalised features cannot tell
    a silent recording from a loud one, so the absolute level decides there."""
    padded = np.pad(audio, (0, max(0, frames * HOP - audio.size)))[: frames * HOP]
    rms = np.sqrt((padded.reshape(frames, HOP).astype(np.float64) ** 2).mean(axis=1))
    silent: npt.NDArray[np.bool_] = 20 * np.log10(rms + 1e-12) < SILENCE_DBFS
    return silent


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        self.io = ModelIO(args)
        params = self.io.params
        self.network = runner_from_config(params, self.io.folder / params["network_file"])
        self.fps = int(params["fps"])
        self.max_samples = int(float(params["max_seconds"]) * SAMPLE_RATE)

    def execute(self, requests: list[Any]) -> list[Any]:
        audios: dict[int, npt.NDArray[np.float32]] = {}
        errors: dict[int, str] = {}
        for index, request in enumerate(requests):
            audio = self.io.array(request, "AUDIO")
            least = "one video frame (640)"
            problem = audio_problem(audio, SAMPLE_RATE // 25, self.max_samples, least)
            if problem is not None:
                errors[index] = problem
            else:
                audios[index] = audio.astype(np.float32)
        outputs = {i: {"VISEMES": v[np.newaxis]} for i, v in self._visemes(audios).items()}
        return self.io.responses(len(requests), outputs, errors)

    def _visemes(self, audios: dict[int, npt.NDArray[np.float32]]) -> dict[int, Array]:
        if not audios:
            return {}
        feats = {i: features(a) for i, a in audios.items()}
        longest = max(len(f) for f in feats.values())
        batch = np.zeros(
            (len(feats), longest, next(iter(feats.values())).shape[1]), dtype=np.float32
        )
        for row, f in enumerate(feats.values()):
            batch[row, : len(f)] = f
        logits = self.network({"FEATS": batch})[0]
        result = {}
        for row, (index, f) in enumerate(feats.items()):
            own = logits[row, : len(f)]
            probs = np.exp(own - own.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            silent = quiet(audios[index], len(probs))
            probs[silent] = 0.0
            probs[silent, 0] = 1.0  # "sil" is viseme 0
            result[index] = to_video_frames(probs, audios[index].size, self.fps)
        return result
