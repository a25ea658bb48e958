"""Triton Python-backend model: English sentence embeddings (MiniLM, ONNX).

A dynamic batch is tokenized together, padded to its longest text and run once. MiniLM is
symmetric: MODE (query or passage) does not change the vector.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # graph_runners
from graph_runners import Array, ModelIO, runner_from_config


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        self.io = ModelIO(args)
        params = self.io.params
        self.tokenizer = Tokenizer.from_file(str(self.io.folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(params["max_tokens"]))
        self.tokenizer.enable_padding()
        self.graph = runner_from_config(params, self.io.folder / params["graph_file"])

    def execute(self, requests: list[Any]) -> list[Any]:
        texts: dict[int, str] = {}
        errors: dict[int, str] = {}
        for index, request in enumerate(requests):
            text = self.io.text(request, "TEXT")
            if text:
                texts[index] = text
            else:
                errors[index] = "TEXT is empty"
        outputs: dict[int, dict[str, Array]] = {}
        if texts:
            vectors = self._embed(list(texts.values()))
            outputs = {
                index: {"EMBEDDING": vector[np.newaxis]}
                for index, vector in zip(texts, vectors, strict=True)
            }
        return self.io.responses(len(requests), outputs, errors)

    def _embed(self, texts: list[str]) -> Array:
        encoded = self.tokenizer.encode_batch(texts)
        feed = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        return self.graph(feed)[0]
