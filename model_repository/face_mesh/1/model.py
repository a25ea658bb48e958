"""Triton Python-backend model: 468 face landmarks in a 192 × 192 face crop (MediaPipe's
face mesh, ONNX).

A dynamic batch of crops runs through the network at once. Landmarks come back as fractions of
the crop (x, y; z on the x scale, negative towards the camera), with the network's confidence
that the crop holds a face.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # graph_runners
from graph_runners import Array, ModelIO, runner_from_config

SIZE = 192
POINTS = 468


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        self.io = ModelIO(args)
        self.graph = runner_from_config(
            self.io.params, self.io.folder / self.io.params["graph_file"]
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        crops = np.stack(
            [self.io.array(r, "IMAGE").reshape(SIZE, SIZE, 3) for r in requests]
        ).astype(np.float32)
        points, flags = self.graph({"input_1": crops / 255.0})
        landmarks = points.reshape(len(requests), POINTS, 3) / SIZE
        presence = 1.0 / (1.0 + np.exp(-np.clip(flags.reshape(len(requests)), -80.0, 80.0)))
        outputs: dict[int, dict[str, Array]] = {
            i: {"LANDMARKS": landmarks[i : i + 1], "PRESENCE": presence[i : i + 1, np.newaxis]}
            for i in range(len(requests))
        }
        return self.io.responses(len(requests), outputs, {})
