"""Word and character error rates, with the text normalised the same way on both sides."""

from __future__ import annotations

import re
import unicodedata

_PUNCTUATION = re.compile(r"[^\w\s']|_", re.UNICODE)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    return re.sub(r"\s+", " ", _PUNCTUATION.sub(" ", text)).strip()


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(errors, reference words)"""
    ref, hyp = normalise(reference).split(), normalise(hypothesis).split()
    return edit_distance(ref, hyp), len(ref)


def char_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(errors, reference characters), spaces and punctuation ignored: for Chinese."""
    ref = list(normalise(reference).replace(" ", ""))
    hyp = list(normalise(hypothesis).replace(" ", ""))
    return edit_distance(ref, hyp), len(ref)


def wer(reference: str, hypothesis: str) -> float:
    errors, words = word_errors(reference, hypothesis)
    return errors / max(words, 1)


# Characters written only in Traditional Chinese (their Simplified forms differ): a transcript
# meant to be Simplified should contain none of them.
TRADITIONAL_ONLY = set(
    "們學習這國語說時會個來為與對開關問題電話書長見氣東車門馬鳥魚體點麼後愛樂聽讀寫種葉實驗應該"
    "麼還們間現發經過當從頭樣讓將進動線們變熱雲風陽請謝歡迎觀區"
)


def traditional_characters(text: str) -> set[str]:
    return set(text) & TRADITIONAL_ONLY
