"""Triton Python-backend model: voice activity. Silero VAD v6 (MIT, from the silero-vad
wheel): one 32 ms chunk of 16 kHz audio, after the previous chunk's last 64 samples, and the
stream's recurrent state in; the probability of speech and the next state out. The state
travels with each request, so the model is stateless to Triton and the chunks of many
streams batch into one network run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # graph_runners
from graph_runners import ModelIO, runner_from_config

SAMPLE_RATE = np.array(16_000, dtype=np.int64)


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        self.io = ModelIO(args)
        params = self.io.params
        self.network = runner_from_config(params, self.io.folder / params["network_file"])

    def execute(self, requests: list[Any]) -> list[Any]:
        windows = np.stack([self.io.array(r, "AUDIO") for r in requests]).astype(np.float32)
        states = np.stack([self.io.array(r, "STATE").reshape(2, 128) for r in requests])
        speech, following = self.network(
            {
                "input": windows,
                "state": states.transpose(1, 0, 2).astype(np.float32),
                "sr": SAMPLE_RATE,
            }
        )
        following = following.transpose(1, 0, 2)
        return [
            self.io.response({"SPEECH": speech[i : i + 1], "NEXT_STATE": following[i : i + 1]})
            for i in range(len(requests))
        ]
