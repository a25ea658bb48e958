"""The knowledge store with a stand-in embedder (our own interface): chunking, persistence,
replacement, deletion."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from orchestrator.knowledge.store import KnowledgeError, KnowledgeStore


class WordEmbedder:
    """Bag of hashed words: texts sharing words are close. Counts what it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    async def embed(self, texts: list[str], mode: str, model: str) -> np.ndarray:
        self.calls += len(texts)
        rows = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace("?", " ").replace(".", " ").split():
                rows[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


def seeds(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds" / "demo"
    folder.mkdir(parents=True)
    (folder / "kb.toml").write_text('title = "Demo"\nlanguage = "en"\n')
    (folder / "magnets.md").write_text("# Magnets\nMagnets attract iron nails.\n")
    (folder / "sound.md").write_text("# Sound\nSound travels through air as vibrations.\n")
    return tmp_path / "seeds"


async def test_seeds_are_embedded_once_and_searched(tmp_path: Path) -> None:
    embedder, folder = WordEmbedder(), seeds(tmp_path)
    store = KnowledgeStore(tmp_path / "data", embedder)  # type: ignore[arg-type]
    await store.load(folder)
    assert embedder.calls == 2  # one chunk per document
    hits = await store.search("demo", "what do magnets attract", 1)
    assert hits[0].chunk.document == "magnets"

    again = WordEmbedder()
    restarted = KnowledgeStore(tmp_path / "data", again)  # type: ignore[arg-type]
    await restarted.load(folder)
    assert again.calls == 0  # loaded from disk: nothing embedded again
    found = await restarted.search("demo", "vibrations in air", 1)
    assert found[0].chunk.document == "sound"


async def test_documents_are_replaced_and_deleted(tmp_path: Path) -> None:
    store = KnowledgeStore(tmp_path, WordEmbedder())  # type: ignore[arg-type]
    first = await store.add_document("kb", "notes.md", "# A\nCats purr.", "en")
    second = await store.add_document("kb", "notes.md", "# A\nDogs bark loudly.", "en")
    assert first.doc_id == second.doc_id and first.sha256 != second.sha256
    base = store.get("kb")
    assert base is not None and len(base.chunks) == 1
    assert (await store.search("kb", "dogs bark", 1))[0].chunk.text == "Dogs bark loudly."
    assert await store.delete_document("kb", "notes")
    assert not await store.delete_document("kb", "notes")
    assert await store.search("kb", "dogs bark", 1) == []


@pytest.mark.parametrize(
    ("kb_id", "text", "language", "words"),
    [("bad id!", "x", "en", "kb_id"), ("kb", "   ", "en", "empty")],
)
async def test_bad_documents_are_refused(
    tmp_path: Path, kb_id: str, text: str, language: str, words: str
) -> None:
    with pytest.raises(KnowledgeError, match=words):
        await KnowledgeStore(tmp_path, WordEmbedder()).add_document(kb_id, "a.md", text, language)  # type: ignore[arg-type]


async def test_a_knowledge_base_keeps_its_language(tmp_path: Path) -> None:
    store = KnowledgeStore(tmp_path, WordEmbedder())  # type: ignore[arg-type]
    await store.add_document("kb", "a.md", "Plants grow.", "en")
    with pytest.raises(KnowledgeError, match="is en, not zh"):
        await store.add_document("kb", "b.md", "植物生长。", "zh")


async def test_scoring_reuses_the_searched_question_and_sentences_scored_before(
    tmp_path: Path,
) -> None:
    embedder = WordEmbedder()
    store = KnowledgeStore(tmp_path / "data", embedder)  # type: ignore[arg-type]
    await store.load(seeds(tmp_path))
    sentences = ["Magnets attract iron nails.", "Sound travels through air."]
    embedder.calls = 0
    await store.search("demo", "what do magnets attract", 1)
    first = await store.score("demo", "what do magnets attract ", sentences)
    assert embedder.calls == 1 + 2  # the question once, then only the sentences
    assert first[0] > first[1]
    again = await store.score("demo", "does sound travel through air", sentences)
    assert embedder.calls == 3 + 1  # a new question; its sentences were embedded before
    assert again[1] > again[0]
    assert await store.score("demo", "what do magnets attract", sentences) == first
    assert embedder.calls == 4
