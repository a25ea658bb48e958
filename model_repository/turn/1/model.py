"""Triton Python-backend model: has the student finished their turn? The last seconds of the
turn (16 kHz) in, the probability that it is complete out. Pipecat's smart-turn v3.2, a
Whisper-tiny encoder with a classifier head (BSD-2-Clause, from the pipecat-ai wheel); the turns
of a dynamic batch run through the network together.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # graph_runners, whisper_features
sys.path.insert(0, str(Path(__file__).resolve().parent))
from audio_input import audio_problem
from graph_runners import ModelIO, runner_from_config
from turn_features import features
from whisper_features import SAMPLE_RATE

MIN_SAMPLES = SAMPLE_RATE // 10


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        self.io = ModelIO(args)
        params = self.io.params
        self.network = runner_from_config(params, self.io.folder / params["network_file"])
        self.max_samples = int(float(params["max_seconds"]) * SAMPLE_RATE)

    def execute(self, requests: list[Any]) -> list[Any]:
        windows: dict[int, npt.NDArray[np.float32]] = {}
        errors: dict[int, str] = {}
        for index, request in enumerate(requests):
            audio = self.io.array(request, "AUDIO")
            problem = audio_problem(audio, MIN_SAMPLES, self.max_samples, f"{MIN_SAMPLES} (0.1 s)")
            if problem is not None:
                errors[index] = problem
            else:
                windows[index] = features(audio)
        outputs = {}
        if windows:
            batch = np.stack(list(windows.values()))
            complete = self.network({"input_features": batch})[0].reshape(-1)
            outputs = {
                i: {"COMPLETE": complete[row : row + 1][np.newaxis]}
                for row, i in enumerate(windows)
            }
        return self.io.responses(len(requests), outputs, errors)
