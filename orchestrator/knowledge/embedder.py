"""Embedding stage: texts → unit vectors, from a Triton model speaking the EMBED contract."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

import numpy as np
import numpy.typing as npt

from orchestrator.knowledge.index import Vectors
from orchestrator.metrics import timed
from orchestrator.triton_client import TritonClient
from triton_ops.contracts import embed_contract

log = logging.getLogger(__name__)

Mode = Literal["query", "passage"]


def embed_inputs(text: str, mode: Mode) -> dict[str, npt.NDArray[np.object_]]:
    """One text, as an embedding model takes it."""
    return {
        "TEXT": np.array([[text.encode("utf-8")]], dtype=np.object_),
        "MODE": np.array([[mode.encode()]], dtype=np.object_),
    }


class Embedder:
    def __init__(self, triton: TritonClient, concurrency: int = 32) -> None:
        self._triton = triton
        self._gate = asyncio.Semaphore(concurrency)  # requests in flight: Triton batches them

    async def embed(self, texts: list[str], mode: Mode, model: str) -> Vectors:
        with timed("embed", log, model=model, mode=mode, texts=len(texts)):
            rows = await asyncio.gather(*(self._one(text, mode, model) for text in texts))
        return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    async def _one(self, text: str, mode: Mode, model: str) -> Vectors:
        contract = embed_contract(model)
        async with self._gate:
            out = await self._triton.infer(contract, embed_inputs(text, mode))
        vector: Vectors = out["EMBEDDING"][0].astype(np.float32)
        return vector
