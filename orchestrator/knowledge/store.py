"""Knowledge bases: documents in, chunked and embedded once, persisted, searched by meaning.

On disk (ENGINE_DATA_DIR/knowledge/<kb_id>/): `kb.json` (documents and chunks) and
`vectors.npy` (one row per chunk, in kb.json's order), written atomically after each change,
so a restart loads them without embedding anything again. Several engines share one folder
(ENGINE_KNOWLEDGE_DIR on shared storage): a change is made under a lock they share (`writers`),
on what the folder holds then, and the others read the base again when told. Seed folders
(config/knowledge/<kb_id>/ with a kb.toml) are ingested at start: only documents that are new
or changed are embedded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import tomllib
import unicodedata
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from orchestrator.knowledge.chunks import Chunk, chunk_document
from orchestrator.knowledge.embedder import Embedder
from orchestrator.knowledge.index import VectorIndex, Vectors, make_index
from triton_ops.contracts import EMBED, EMBED_ZH

log = logging.getLogger(__name__)

Language = Literal["en", "zh"]
MODELS: dict[str, str] = {"en": EMBED.name, "zh": EMBED_ZH.name}
_KB_ID = re.compile(r"^(?!\.+$)[A-Za-z0-9_.-]{1,128}$")  # a folder's name: never . or ..


class KnowledgeError(ValueError):
    """A request about knowledge bases that cannot be done; the message says why."""


@dataclass(frozen=True)
class Document:
    doc_id: str
    name: str
    sha256: str
    chunks: int
    added_at: str


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float


@dataclass
class KnowledgeBase:
    kb_id: str
    language: Language
    title: str
    documents: dict[str, Document] = field(default_factory=dict)
    chunks: dict[str, Chunk] = field(default_factory=dict)
    vectors: dict[str, Vectors] = field(default_factory=dict)
    index: VectorIndex | None = None

    @property
    def model(self) -> str:
        return MODELS[self.language]


def document_id(name: str) -> str:
    stem = Path(name).stem
    slug = re.sub(r"[^\w-]+", "-", unicodedata.normalize("NFKC", stem).lower()).strip("-")
    return slug or hashlib.sha256(name.encode()).hexdigest()[:12]


QUESTIONS_KEPT = 64  # the questions searched last: scoring a passage for one reuses its vector
SENTENCES_KEPT = 8192  # sentence vectors kept for scoring (1.5 KB each with MiniLM)


def _keep(
    kept: OrderedDict[tuple[str, str], Vectors], key: tuple[str, str], vector: Vectors, most: int
) -> None:
    kept[key] = vector
    kept.move_to_end(key)
    while len(kept) > most:
        kept.popitem(last=False)


class KnowledgeStore:
    def __init__(
        self,
        root: Path,
        embedder: Embedder,
        exact_below: int = 20_000,
        max_chunk_chars: int = 600,
        writers: Callable[[str], AbstractAsyncContextManager[Any]] | None = None,
    ) -> None:
        """`writers(kb_id)`: a lock every engine sharing `root` takes to change a base."""
        self.root = root
        self._writers = writers
        self.embedder = embedder
        self.exact_below = exact_below
        self.max_chunk_chars = max_chunk_chars
        self._bases: dict[str, KnowledgeBase] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._questions: OrderedDict[tuple[str, str], Vectors] = OrderedDict()
        self._sentences: OrderedDict[tuple[str, str], Vectors] = OrderedDict()
        self.ready = asyncio.Event()

    # --- reading ----------------------------------------------------------------------

    def get(self, kb_id: str) -> KnowledgeBase | None:
        return self._bases.get(kb_id)

    @property
    def ids(self) -> list[str]:
        return sorted(self._bases)

    async def search(self, kb_id: str, query: str, k: int = 3) -> list[Hit]:
        base = self._bases.get(kb_id)
        if base is None or base.index is None or not len(base.index):
            return []
        vector = (await self.embedder.embed([query], "query", base.model))[0]
        _keep(self._questions, (base.model, query.strip()), vector, QUESTIONS_KEPT)
        return [Hit(base.chunks[key], score) for key, score in base.index.search(vector, k)]

    async def score(self, kb_id: str, query: str, texts: list[str]) -> list[float]:
        """How close each text is to the query, with the knowledge base's model. A question
        just searched is not embedded again, nor a sentence scored before: a passage's
        sentences are what the next student asks about too."""
        model = self._bases[kb_id].model
        asked = (model, query.strip())
        question = self._questions.get(asked)
        if question is None:
            question = (await self.embedder.embed([query], "query", model))[0]
            _keep(self._questions, asked, question, QUESTIONS_KEPT)
        known = {t: v for t in texts if (v := self._sentences.get((model, t))) is not None}
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            vectors = await self.embedder.embed(missing, "query", model)
            for text, vector in zip(missing, vectors, strict=True):
                known[text] = vector
                _keep(self._sentences, (model, text), vector, SENTENCES_KEPT)
        return [float(known[t] @ question) for t in texts]

    # --- changing ---------------------------------------------------------------------

    async def add_document(
        self,
        kb_id: str,
        name: str,
        text: str,
        language: Language | None = None,
        title: str | None = None,
    ) -> Document:
        if not _KB_ID.match(kb_id):
            raise KnowledgeError(
                "kb_id may hold letters, digits, '_', '.' and '-' (1-128 characters)"
            )
        text = text.strip()
        if not text:
            raise KnowledgeError(f"document {name!r} is empty")
        async with self._changing(kb_id):
            base = self._bases.get(kb_id)
            if base is None:
                base = KnowledgeBase(kb_id, language or guess_language(text), title or kb_id)
                self._bases[kb_id] = base
            elif language is not None and language != base.language:
                raise KnowledgeError(f"knowledge base {kb_id} is {base.language}, not {language}")
            doc_id = document_id(name)
            digest = hashlib.sha256(text.encode()).hexdigest()
            if doc_id in base.documents and base.documents[doc_id].sha256 == digest:
                return base.documents[doc_id]  # unchanged: nothing to embed
            chunks = chunk_document(doc_id, text, self.max_chunk_chars)
            vectors = await self.embedder.embed(
                [self._passage(c) for c in chunks], "passage", base.model
            )
            self._drop(base, doc_id)
            for chunk, vector in zip(chunks, vectors, strict=True):
                base.chunks[chunk.chunk_id] = chunk
                base.vectors[chunk.chunk_id] = vector
            document = Document(doc_id, name, digest, len(chunks), datetime.now(UTC).isoformat())
            base.documents[doc_id] = document
            self._reindex(base)
            self._save(base)
            log.info(
                "document added", extra={"kb_id": kb_id, "doc_id": doc_id, "chunks": len(chunks)}
            )
            return document

    async def delete_document(self, kb_id: str, doc_id: str) -> bool:
        async with self._changing(kb_id):
            base = self._bases.get(kb_id)
            if base is None or doc_id not in base.documents:
                return False
            self._drop(base, doc_id)
            del base.documents[doc_id]
            self._reindex(base)
            self._save(base)
            return True

    async def load(self, seeds: Path | None = None) -> None:
        """What was persisted, then the seed folders' new or changed documents."""
        persisted = await asyncio.to_thread(lambda: sorted(self.root.glob("*/kb.json")))
        for path in persisted:
            self._bases[path.parent.name] = await asyncio.to_thread(self._read, path.parent)
        for kb_id, name, text, meta in await asyncio.to_thread(read_seeds, seeds):
            language = as_language(meta.get("language"))
            await self.add_document(kb_id, name, text, language, meta.get("title"))
        self.ready.set()
        log.info(
            "knowledge bases loaded",
            extra={"kbs": {k: len(b.chunks) for k, b in self._bases.items()}},
        )

    async def reload(self, kb_id: str) -> None:
        """Reads a base again from the folder (another engine changed it), under the lock the
        engines change it under, so that it is never read half written."""
        async with self._lock(kb_id), self._shared(kb_id):
            await self._read_again(kb_id)

    async def reload_all(self) -> None:
        """Reads again every base in the folder, and forgets those gone from it."""
        on_disk = await asyncio.to_thread(
            lambda: {p.parent.name for p in self.root.glob("*/kb.json")}
        )
        for kb_id in sorted(on_disk | set(self._bases)):
            await self.reload(kb_id)

    # --- internals --------------------------------------------------------------------

    @asynccontextmanager
    async def _changing(self, kb_id: str) -> AsyncIterator[None]:
        """Held while a base changes: with engines sharing the folder, under their lock and on
        what the folder holds then."""
        async with self._lock(kb_id), self._shared(kb_id):
            if self._writers is not None:
                await self._read_again(kb_id)
            yield

    def _shared(self, kb_id: str) -> AbstractAsyncContextManager[Any]:
        return self._writers(kb_id) if self._writers is not None else contextlib.nullcontext()

    async def _read_again(self, kb_id: str) -> None:
        if not _KB_ID.match(kb_id):
            return
        folder = self.root / kb_id
        if await asyncio.to_thread((folder / "kb.json").is_file):
            self._bases[kb_id] = await asyncio.to_thread(self._read, folder)
        else:
            self._bases.pop(kb_id, None)

    @staticmethod
    def _passage(chunk: Chunk) -> str:
        return f"{chunk.title}: {chunk.text}" if chunk.title else chunk.text

    def _lock(self, kb_id: str) -> asyncio.Lock:
        return self._locks.setdefault(kb_id, asyncio.Lock())

    @staticmethod
    def _drop(base: KnowledgeBase, doc_id: str) -> None:
        for key in [k for k, c in base.chunks.items() if c.document == doc_id]:
            del base.chunks[key]
            del base.vectors[key]

    def _reindex(self, base: KnowledgeBase) -> None:
        keys = list(base.chunks)
        dim = len(next(iter(base.vectors.values()))) if base.vectors else 1
        base.index = make_index(dim, len(keys), self.exact_below)
        if keys:
            base.index.add(keys, np.stack([base.vectors[k] for k in keys]))

    def _save(self, base: KnowledgeBase) -> None:
        folder = self.root / base.kb_id
        folder.mkdir(parents=True, exist_ok=True)
        keys = list(base.chunks)
        meta = {
            "kb_id": base.kb_id,
            "language": base.language,
            "title": base.title,
            "documents": [asdict(d) for d in base.documents.values()],
            "chunks": [asdict(base.chunks[k]) for k in keys],
        }
        vectors = (
            np.stack([base.vectors[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)
        )
        _atomic(folder / "vectors.npy", lambda path: _write_npy(path, vectors))
        _atomic(
            folder / "kb.json", lambda path: path.write_text(json.dumps(meta, ensure_ascii=False))
        )

    def _read(self, folder: Path) -> KnowledgeBase:
        meta = json.loads((folder / "kb.json").read_text(encoding="utf-8"))
        vectors = np.load(folder / "vectors.npy")
        base = KnowledgeBase(meta["kb_id"], meta["language"], meta["title"])
        base.documents = {d["doc_id"]: Document(**d) for d in meta["documents"]}
        for row, item in enumerate(meta["chunks"]):
            chunk = Chunk(**item)
            base.chunks[chunk.chunk_id] = chunk
            base.vectors[chunk.chunk_id] = vectors[row]
        self._reindex(base)
        return base


def read_seeds(seeds: Path | None) -> list[tuple[str, str, str, dict[str, str]]]:
    """(kb_id, file name, text, kb.toml) for each seed document."""
    found = []
    for folder in sorted(p.parent for p in seeds.glob("*/kb.toml")) if seeds else []:
        meta = tomllib.loads((folder / "kb.toml").read_text(encoding="utf-8"))
        for path in sorted(folder.glob("*.md")) + sorted(folder.glob("*.txt")):
            found.append((folder.name, path.name, path.read_text(encoding="utf-8"), meta))
    return found


def as_language(value: str | None) -> Language | None:
    if value is None:
        return None
    if value not in ("en", "zh"):
        raise KnowledgeError(f"language must be en or zh, not {value!r}")
    return "en" if value == "en" else "zh"


def guess_language(text: str) -> Language:
    han = sum("\u4e00" <= ch <= "\u9fff" for ch in text)
    return "zh" if han > 0.2 * max(1, sum(ch.isalpha() for ch in text)) else "en"


def _write_npy(path: Path, array: Vectors) -> None:
    with path.open("wb") as file:  # a file object: np.save would add ".npy" to a path
        np.save(file, array)


def _atomic(path: Path, write) -> None:  # type: ignore[no-untyped-def]
    temporary = path.with_suffix(path.suffix + ".tmp")
    write(temporary)
    os.replace(temporary, path)
