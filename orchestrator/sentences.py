"""Cuts streaming text into sentences, so each can be spoken as soon as it is complete."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

# A sentence ends at . ! ? … followed by space (so "3.5" is no end), at CJK 。！？；
# (no space needed), or at a newline.
_BOUNDARY = re.compile(r"(?:[.!?…]+[\"'”’)\]]*\s+)|(?:[。！？；]+[”’」』）]*)|(?:\n+)")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "fig", "no",
    "approx", "dept", "est", "inc", "ltd", "mt",
}  # fmt: skip
_SOFT_BREAK = re.compile(r"[,;:，、：]\s*")


class SentenceSplitter:
    """Feed text as it streams in; take whole sentences out."""

    def __init__(self, max_chars: int = 240) -> None:
        self._buffer = ""
        self._max_chars = max_chars

    def push(self, text: str) -> list[str]:
        self._buffer += text
        sentences: list[str] = []
        start = 0
        for match in _BOUNDARY.finditer(self._buffer):
            candidate = self._buffer[start : match.end()]
            if match.group().lstrip()[:1] == "." and _ends_with_abbreviation(candidate):
                continue
            sentences.append(candidate.strip())
            start = match.end()
        self._buffer = self._buffer[start:]
        while len(self._buffer) > self._max_chars:
            sentences.append(self._cut_long())
        return [s for s in sentences if s]

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def _cut_long(self) -> str:
        """A run-on sentence: cut at its last comma (or space) within the limit."""
        window = self._buffer[: self._max_chars]
        breaks = [m.end() for m in _SOFT_BREAK.finditer(window)]
        cut = breaks[-1] if breaks else (window.rfind(" ") + 1 or self._max_chars)
        piece, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
        return piece


def _ends_with_abbreviation(candidate: str) -> bool:
    words = candidate.rstrip().rstrip(".\"'”’)]").split()
    if not words:
        return False
    last = words[-1].lower().lstrip("(\"'“‘")
    return last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())


async def sentences(pieces: AsyncIterator[str], max_chars: int = 240) -> AsyncIterator[str]:
    splitter = SentenceSplitter(max_chars)
    async for piece in pieces:
        for sentence in splitter.push(piece):
            yield sentence
    for sentence in splitter.flush():
        yield sentence
