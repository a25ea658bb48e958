"""Triton Python-backend model: Whisper speech recognition on exported graphs.

Each request is one 16 kHz mono utterance plus its language ("" = detect). The whole dynamic
batch shares one encoder run; a request that cannot be transcribed gets its own error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # graph_runners, whisper_features
sys.path.insert(0, str(Path(__file__).resolve().parent))
import whisper_runtime as whisper
from audio_input import audio_problem
from graph_runners import Array, ModelIO, runner_from_config
from whisper_features import SAMPLE_RATE


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        self.io = ModelIO(args)
        params, folder = self.io.params, self.io.folder
        dims = json.loads((folder / "whisper_config.json").read_text(encoding="utf-8"))
        self.vocab = whisper.Vocabulary(folder)
        self.runner = whisper.WhisperRunner(
            runner_from_config(params, folder / params["encoder_file"]),
            runner_from_config(params, folder / params["decoder_file"]),
            self.vocab,
            layers=dims["layers"],
            heads=dims["heads"],
            head_dim=dims["head_dim"],
            max_encoder_batch=int(params.get("max_encoder_batch", "8")),
            fit_languages=frozenset(
                x for x in params.get("fitted_window_languages", "").split(",") if x
            ),
        )
        self.max_samples = int(float(params["max_seconds"]) * SAMPLE_RATE)
        self.auto_languages = [x for x in params.get("auto_languages", "").split(",") if x] or None

    def execute(self, requests: list[Any]) -> list[Any]:
        accepted: list[tuple[int, npt.NDArray[np.float32], str | None]] = []
        errors: dict[int, str] = {}
        for index, request in enumerate(requests):
            try:
                accepted.append((index, *self._read(request)))
            except ValueError as error:
                errors[index] = str(error)
        outputs: dict[int, dict[str, Array]] = {}
        if accepted:
            results = self.runner.transcribe(
                [audio for _, audio, _ in accepted],
                [language for _, _, language in accepted],
                self.auto_languages,
            )
            outputs = {
                index: self._outputs(result)
                for (index, _, _), result in zip(accepted, results, strict=True)
            }
        return self.io.responses(len(requests), outputs, errors)

    def _read(self, request: Any) -> tuple[npt.NDArray[np.float32], str | None]:
        audio = self.io.array(request, "AUDIO")
        language = self.io.text(request, "LANGUAGE").lower() or None
        problem = audio_problem(audio, SAMPLE_RATE // 10, self.max_samples, "0.1 s (1600)")
        if problem is not None:
            raise ValueError(problem)
        if language is not None and language not in self.vocab.languages:
            raise ValueError(f"LANGUAGE {language!r} is not one Whisper knows")
        return audio.astype(np.float32), language

    @staticmethod
    def _outputs(transcript: whisper.Transcript) -> dict[str, Array]:
        return {
            "TEXT": np.array([[transcript.text.encode("utf-8")]]),
            "DETECTED_LANGUAGE": np.array([[transcript.language.encode()]]),
            "NO_SPEECH_PROB": np.array([[transcript.no_speech_prob]]),
            "AVG_LOGPROB": np.array([[transcript.avg_logprob]]),
        }
