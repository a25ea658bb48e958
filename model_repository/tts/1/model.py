"""Triton Python-backend model: Piper text-to-speech with per-phoneme durations.

Each request is one utterance; its sentences become rows run through the voice with those of
every other request in the dynamic batch, `max_rows_per_run` rows to a padded ONNX run (one on
CPU). A request that cannot be spoken gets its own error. The voice runs in piper_runtime.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import triton_python_backend_utils as pb_utils

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # graph_runners
sys.path.insert(0, str(Path(__file__).resolve().parent))
from graph_runners import ModelIO, onnxruntime_from_config
from piper_runtime import PiperSpeaker


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        self.io = ModelIO(args)
        params = self.io.params
        voice_path = self.io.folder / params["voice_file"]
        graph = onnxruntime_from_config(params, voice_path)
        self.speaker = PiperSpeaker(
            graph,
            json.loads(Path(f"{voice_path}.json").read_text(encoding="utf-8")),
            max_chars=int(params["max_chars"]),
            max_rows=int(params["max_rows_per_run"]),
        )
        if self.speaker.sample_rate != int(params["sample_rate"]):
            raise pb_utils.TritonModelException(
                f"voice speaks at {self.speaker.sample_rate} Hz, config.pbtxt says "
                f"{params['sample_rate']}"
            )
        if len(graph.session.get_outputs()) < 2:
            raise pb_utils.TritonModelException(
                f"{voice_path} has no duration output: run `python -m triton_ops.build_models`"
            )

    def execute(self, requests: list[Any]) -> None:
        """Each request is answered as soon as its own sentences are spoken (through its
        response sender), not when the whole batch is: in a CPU batch run row by row, the
        request first in the queue is heard first."""
        utterances: dict[int, list[list[str]]] = {}
        for index, request in enumerate(requests):
            try:
                utterances[index] = self.speaker.sentences(self.io.text(request, "TEXT"))
            except ValueError as error:
                self.io.send(request, self.io.error(str(error)))
        for index, outputs in self.speaker.speak(utterances):
            self.io.send(requests[index], self.io.response(outputs))
