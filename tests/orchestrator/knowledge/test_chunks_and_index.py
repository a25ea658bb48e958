import numpy as np
import pytest

from orchestrator.knowledge.chunks import chunk_document
from orchestrator.knowledge.index import ExactIndex, FaissIndex
from orchestrator.knowledge.store import document_id, guess_language

DOC = """# Magnets

## Poles
Every magnet has two poles. Opposite poles attract. Like poles repel.

## Materials
Magnets attract iron. They do not attract copper.
"""


def test_chunks_keep_their_heading_and_whole_sentences() -> None:
    chunks = chunk_document("magnets", DOC, max_chars=50)
    assert [c.title for c in chunks] == [
        "Magnets › Poles",
        "Magnets › Poles",
        "Magnets › Materials",
    ]
    assert chunks[0].text == "Every magnet has two poles."
    assert chunks[1].text == "Opposite poles attract. Like poles repel."
    assert all(c.document == "magnets" for c in chunks)
    assert len({c.chunk_id for c in chunks}) == 3


def test_chinese_sentences_join_without_spaces() -> None:
    chunks = chunk_document("zh", "# 磁铁\n磁铁有两个极。同极相斥。", max_chars=600)
    assert chunks[0].text == "磁铁有两个极。同极相斥。"


def test_document_ids_and_languages() -> None:
    assert document_id("Water Cycle.md") == "water-cycle"
    assert document_id("光合作用.md") == "光合作用"
    assert guess_language("植物通过光合作用制造养分。") == "zh"
    assert guess_language("Plants make food.") == "en"


@pytest.mark.parametrize("kind", [ExactIndex, FaissIndex])
def test_both_indexes_find_the_nearest_and_forget_what_is_removed(kind: type) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((500, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = kind(32)
    index.add([f"k{i}" for i in range(500)], vectors)
    query = vectors[42] + 0.01 * rng.standard_normal(32).astype(np.float32)
    assert index.search(query, 3)[0][0] == "k42"
    index.remove({"k42"})
    assert "k42" not in [key for key, _ in index.search(query, 5)]
    assert len(index) == 499
    exact = ExactIndex(32)
    exact.add([f"k{i}" for i in range(500)], vectors)
    exact.remove({"k42"})
    assert [k for k, _ in index.search(query, 5)] == [k for k, _ in exact.search(query, 5)]
