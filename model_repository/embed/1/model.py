"""Triton Python-backend model: English sentence embeddings (MiniLM, ONNX).

A dynamic batch is tokenized together, padded to its longest text and run once. MiniLM is
symmetric: MODE (query or passage) does not change the vector.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils
from tokenizers import Tokenizer

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # graph_runners
from graph_runners import runner_from_config


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config["parameters"].items()}
        folder = Path(args["model_repository"]) / args["model_version"]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(params["max_tokens"]))
        self.tokenizer.enable_padding()
        self.graph = runner_from_config(params, folder / params["graph_file"])

    def execute(self, requests: list) -> list:
        texts: dict[int, str] = {}
        errors: dict[int, str] = {}
        for index, request in enumerate(requests):
            raw = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)[0]
            text = (raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)).strip()
            if text:
                texts[index] = text
            else:
                errors[index] = "TEXT is empty"
        vectors: dict[int, np.ndarray] = {}
        if texts:
            vectors = dict(zip(texts, self._embed(list(texts.values())), strict=True))
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor("EMBEDDING", vectors[i][np.newaxis])])
            if i in vectors
            else pb_utils.InferenceResponse(error=pb_utils.TritonError(errors[i]))
            for i in range(len(requests))
        ]

    def _embed(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(texts)
        feed = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        return self.graph(feed)[0].astype(np.float32)
