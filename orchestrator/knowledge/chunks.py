"""Documents → passages small enough to retrieve and to speak, each under its heading."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    document: str  # the document's id
    title: str  # the headings above it, "Photosynthesis › Light"
    text: str


def sentences_of(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def chunk_document(document: str, text: str, max_chars: int = 600) -> list[Chunk]:
    """Markdown or plain text → chunks of whole sentences, at most `max_chars` long (a single
    longer sentence stays whole), never across a heading."""
    sections: list[tuple[str, list[str]]] = []
    path: list[str] = []
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            path = [*path[: level - 1], heading.group(2)]
            sections.append((" › ".join(path), []))
        elif line.strip():
            if not sections:
                sections.append(("", []))
            sections[-1][1].append(line.strip())
    chunks: list[Chunk] = []
    for title, lines in sections:
        piece = ""
        for sentence in sentences_of(" ".join(lines)):
            if piece and len(piece) + len(sentence) + 1 > max_chars:
                chunks.append(_chunk(document, title, piece, len(chunks)))
                piece = ""
            piece = (
                f"{piece} {sentence}".strip() if piece and not _cjk(sentence) else piece + sentence
            )
        if piece:
            chunks.append(_chunk(document, title, piece, len(chunks)))
    return chunks


def _cjk(text: str) -> bool:
    return bool(text) and "\u4e00" <= text[0] <= "\u9fff"


def _chunk(document: str, title: str, text: str, position: int) -> Chunk:
    digest = hashlib.sha256(f"{document}\n{position}\n{title}\n{text}".encode()).hexdigest()[:16]
    return Chunk(chunk_id=digest, document=document, title=title, text=text)
