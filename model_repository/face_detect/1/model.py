"""Triton Python-backend model: faces in a 128 × 128 picture (BlazeFace short-range, ONNX).

The pictures of a dynamic batch run through the network together; each request gets its own
faces back, decoded and merged (blazeface.py), best first.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # graph_runners
sys.path.insert(0, str(Path(__file__).resolve().parent))
from blazeface import SIZE, decode, weighted_nms
from graph_runners import Array, ModelIO, runner_from_config


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        self.io = ModelIO(args)
        params = self.io.params
        self.graph = runner_from_config(params, self.io.folder / params["graph_file"])
        self.min_score = float(params["min_score"])
        self.nms_iou = float(params["nms_iou"])

    def execute(self, requests: list[Any]) -> list[Any]:
        pictures = np.stack(
            [self.io.array(r, "IMAGE").reshape(SIZE, SIZE, 3) for r in requests]
        ).astype(np.float32)
        regressors, logits = self.graph({"input": pictures / 127.5 - 1.0})
        outputs: dict[int, dict[str, Array]] = {}
        for index in range(len(requests)):
            found = decode(regressors[index], logits[index], self.min_score)
            outputs[index] = {"FACES": weighted_nms(found, self.nms_iou)[np.newaxis]}
        return self.io.responses(len(requests), outputs, {})
