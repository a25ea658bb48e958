"""Triton Python-backend model: Mandarin text-to-speech with per-phoneme durations.

FastSpeech2 converted from TFLite takes one sequence at a time, so the requests of a dynamic
batch are spoken one after another, in queue order, and each is answered through its
response sender as soon as it is spoken; each request gets its own error.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # graph_runners
sys.path.insert(0, str(Path(__file__).resolve().parent))
from graph_runners import ModelIO, onnxruntime_from_config
from zh_voice import SAMPLE_RATE, ZhVoice


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        self.io = ModelIO(args)
        params = self.io.params
        if int(params["sample_rate"]) != SAMPLE_RATE:
            raise pb_utils.TritonModelException(f"the voice speaks at {SAMPLE_RATE} Hz")
        self.voice = ZhVoice(self.io.folder, partial(onnxruntime_from_config, params))
        self.max_chars = int(params["max_chars"])

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            self.io.send(request, self._speak(request))

    def _speak(self, request: Any) -> Any:
        text = self.io.text(request, "TEXT")
        try:
            if not text:
                raise ValueError("TEXT is empty")
            if len(text) > self.max_chars:
                raise ValueError(f"TEXT has {len(text)} characters; the limit is {self.max_chars}")
            spoken = self.voice.speak(text)
        except ValueError as error:
            return self.io.error(str(error))
        return self.io.response(
            {
                "AUDIO": spoken.pcm[np.newaxis],
                "PHONEMES": np.array([[p.encode() for p in spoken.phonemes]]),
                "DURATIONS": spoken.durations[np.newaxis],
            }
        )
