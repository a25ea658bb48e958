"""Vector search behind one interface: exact (numpy) for small corpora, FAISS HNSW for large.

Vectors are unit length, so the inner product is the cosine similarity.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class VectorIndex(Protocol):
    def add(self, keys: list[str], vectors: Vectors) -> None: ...

    def remove(self, keys: set[str]) -> None: ...

    def search(self, query: Vectors, k: int) -> list[tuple[str, float]]: ...

    def __len__(self) -> int: ...


class ExactIndex:
    """Every vector compared: exact, and fastest below some tens of thousands of chunks."""

    def __init__(self, dim: int) -> None:
        self._keys: list[str] = []
        self._vectors = np.zeros((0, dim), dtype=np.float32)

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, keys: list[str], vectors: Vectors) -> None:
        self._keys += keys
        self._vectors = np.concatenate([self._vectors, vectors.astype(np.float32)])

    def remove(self, keys: set[str]) -> None:
        keep = [i for i, key in enumerate(self._keys) if key not in keys]
        self._keys = [self._keys[i] for i in keep]
        self._vectors = self._vectors[keep]

    def search(self, query: Vectors, k: int) -> list[tuple[str, float]]:
        if not self._keys:
            return []
        scores = self._vectors @ query.astype(np.float32)
        top = np.argsort(-scores)[:k]
        return [(self._keys[i], float(scores[i])) for i in top]


class FaissIndex:
    """Approximate search (HNSW graph); removals are hidden, then rebuilt away in bulk."""

    def __init__(self, dim: int, neighbours: int = 32) -> None:
        self._dim = dim
        self._neighbours = neighbours
        self._keys: list[str] = []
        self._vectors: list[Vectors] = []
        self._removed: set[int] = set()
        self._index: Any = self._new()

    def _new(self) -> Any:
        import faiss

        index = faiss.IndexHNSWFlat(self._dim, self._neighbours, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 64
        return index

    def __len__(self) -> int:
        return len(self._keys) - len(self._removed)

    def add(self, keys: list[str], vectors: Vectors) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._keys += keys
        self._vectors.append(vectors)
        self._index.add(vectors)

    def remove(self, keys: set[str]) -> None:
        self._removed |= {i for i, key in enumerate(self._keys) if key in keys}
        if len(self._removed) > 0.2 * len(self._keys):
            self._rebuild()

    def _rebuild(self) -> None:
        everything = (
            np.concatenate(self._vectors) if self._vectors else np.zeros((0, self._dim), np.float32)
        )
        keep = [i for i in range(len(self._keys)) if i not in self._removed]
        self._keys = [self._keys[i] for i in keep]
        self._vectors = [everything[keep]]
        self._removed = set()
        self._index = self._new()
        if keep:
            self._index.add(self._vectors[0])

    def search(self, query: Vectors, k: int) -> list[tuple[str, float]]:
        if not len(self):
            return []
        wanted = min(len(self._keys), k + len(self._removed))
        scores, ids = self._index.search(query.reshape(1, -1).astype(np.float32), wanted)
        hits = [
            (self._keys[i], float(s))
            for s, i in zip(scores[0], ids[0], strict=True)
            if i >= 0 and i not in self._removed
        ]
        return hits[:k]


def make_index(dim: int, expected: int, exact_below: int) -> VectorIndex:
    return ExactIndex(dim) if expected < exact_below else FaissIndex(dim)
