"""Triton Python-backend model: Whisper speech recognition on exported graphs.

Each request is one 16 kHz mono utterance plus its language ("" = detect). The whole dynamic
batch shares one encoder run; a request that cannot be transcribed gets its own error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # graph_runners
sys.path.insert(0, str(Path(__file__).resolve().parent))
import whisper_runtime as whisper
from graph_runners import runner_from_config


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config["parameters"].items()}
        folder = Path(args["model_repository"]) / args["model_version"]
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
        )
        self.max_samples = int(float(params["max_seconds"]) * whisper.SAMPLE_RATE)
        self.auto_languages = [x for x in params.get("auto_languages", "").split(",") if x] or None

    def execute(self, requests: list) -> list:
        accepted: list[tuple[int, np.ndarray, str | None]] = []
        errors: dict[int, str] = {}
        for index, request in enumerate(requests):
            try:
                accepted.append((index, *self._read(request)))
            except ValueError as error:
                errors[index] = str(error)
        transcripts = {}
        if accepted:
            results = self.runner.transcribe(
                [audio for _, audio, _ in accepted],
                [language for _, _, language in accepted],
                self.auto_languages,
            )
            transcripts = {
                index: result for (index, _, _), result in zip(accepted, results, strict=True)
            }
        return [
            self._response(transcripts[i])
            if i in transcripts
            else pb_utils.InferenceResponse(error=pb_utils.TritonError(errors[i]))
            for i in range(len(requests))
        ]

    def _read(self, request) -> tuple[np.ndarray, str | None]:
        audio = pb_utils.get_input_tensor_by_name(request, "AUDIO").as_numpy().reshape(-1)
        raw = pb_utils.get_input_tensor_by_name(request, "LANGUAGE").as_numpy().reshape(-1)[0]
        language = (raw.decode() if isinstance(raw, bytes) else str(raw)).strip().lower() or None
        if audio.size < whisper.SAMPLE_RATE // 10:
            raise ValueError(f"AUDIO has {audio.size} samples; at least 0.1 s (1600) is needed")
        if audio.size > self.max_samples:
            raise ValueError(
                f"AUDIO is {audio.size / whisper.SAMPLE_RATE:.1f} s; the limit is "
                f"{self.max_samples / whisper.SAMPLE_RATE:.0f} s"
            )
        if not np.isfinite(audio).all():
            raise ValueError("AUDIO holds NaN or infinite samples")
        if language is not None and language not in self.vocab.languages:
            raise ValueError(f"LANGUAGE {language!r} is not one Whisper knows")
        return audio.astype(np.float32), language

    def _response(self, transcript: whisper.Transcript):
        values = {
            "TEXT": np.array([[transcript.text.encode("utf-8")]], dtype=np.object_),
            "DETECTED_LANGUAGE": np.array([[transcript.language.encode()]], dtype=np.object_),
            "NO_SPEECH_PROB": np.array([[transcript.no_speech_prob]], dtype=np.float32),
            "AVG_LOGPROB": np.array([[transcript.avg_logprob]], dtype=np.float32),
        }
        return pb_utils.InferenceResponse(
            [pb_utils.Tensor(name, value) for name, value in values.items()]
        )
