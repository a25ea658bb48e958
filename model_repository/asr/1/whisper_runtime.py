"""Whisper inference on exported graphs: batched greedy decoding over the log-mel features
(`whisper_features.py`, shared with the end-of-turn model).

Needs only numpy and the repository's graph_runners, so it serves in any Triton image. The
graphs: `encoder` (mel → cross-attention K/V) and `decoder` (one step with a KV cache), run
through ONNX Runtime here, or TensorRT plans through the same `Runner` interface on GPU.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from graph_runners import Runner
from whisper_features import SAMPLE_RATE, log_mel

WINDOW_S = 30  # Whisper's window
# Shorter windows than this make Whisper repeat itself: on 20 English clips (our voice and
# espeak-ng's) WER was 59.5 % with the utterance + 1 s, 29.5 % with at least 5 s, 7.7 % at
# 8 s, 7.2 % at 10 s and 9.0 % at 30 s, at 128, 125, 138, 158 and 472 ms a clip (int8, 2 cores).
MIN_WINDOW_S = 10
FIRST_TIMESTAMP = 50364  # ids from here on are <|0.00|>… timestamps


# --- decoding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    no_speech_prob: float
    avg_logprob: float
    tokens: tuple[int, ...]


class Vocabulary:
    """Whisper's special tokens and text decoding, from the exported tokenizer.json."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        config = json.loads((folder / "whisper_config.json").read_text(encoding="utf-8"))
        special = {
            token["content"]: token["id"]
            for token in json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))[
                "added_tokens"
            ]
        }
        self.eot = special["<|endoftext|>"]
        self.sot = special["<|startoftranscript|>"]
        self.sot_prev = special["<|startofprev|>"]
        self.transcribe = special["<|transcribe|>"]
        self.no_timestamps = special["<|notimestamps|>"]
        self.no_speech = special.get("<|nospeech|>", special.get("<|nocaptions|>"))
        self.languages: dict[str, int] = {
            content[2:-2]: token
            for content, token in special.items()
            if token in set(config["lang_ids"])
        }
        self.suppress = np.array(
            sorted(
                set(config["suppress_ids"])
                | {self.no_timestamps, self.sot, self.sot_prev, self.transcribe}
            ),
            dtype=np.int64,
        )
        self.suppress_begin = np.array(config["suppress_ids_begin"], dtype=np.int64)
        self.language_ids = np.array(sorted(self.languages.values()), dtype=np.int64)
        self._language_of = {token: name for name, token in self.languages.items()}

    def language_of(self, token: int) -> str:
        return self._language_of[token]

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, tokens: Sequence[int]) -> str:
        return str(self.tokenizer.decode([t for t in tokens if t < self.eot])).strip()


# A prompt in Simplified characters steers Mandarin output away from Traditional ones.
DEFAULT_PROMPTS = {"zh": "以下是普通话的句子，请用简体中文。"}


def loop_start(tokens: Sequence[int], min_span: int = 12, max_block: int = 8) -> int | None:
    """Where a greedy decode fell into a loop ("1, 1, 1, …"): the end of its first round.

    A block of 1–8 tokens repeated at least 3 times and over `min_span` tokens at the tail
    counts as a loop; the caller keeps one copy of the block and stops decoding.
    """
    for block in range(1, max_block + 1):
        repeats = max(3, -(-min_span // block))
        span = block * repeats
        if len(tokens) < span:
            continue
        tail = list(tokens[-span:])
        if tail == tail[:block] * repeats:
            return len(tokens) - span + block
    return None


def _log_softmax(logits: npt.NDArray[Any]) -> npt.NDArray[Any]:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    result: npt.NDArray[Any] = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return result


class WhisperRunner:
    def __init__(
        self,
        encoder: Runner,
        decoder: Runner,
        vocabulary: Vocabulary,
        layers: int,
        heads: int,
        head_dim: int,
        prompts: dict[str, str] | None = None,
        max_encoder_batch: int = 8,
        fit_languages: frozenset[str] = frozenset(),
    ) -> None:
        """`fit_languages`: when every utterance of a batch is in one of these, the encoder
        hears a window as long as the longest plus a second of silence (whole seconds, at least
        MIN_WINDOW_S), not Whisper's 30 s: a short question costs a third of the encoder (the
        graphs take any window; a TensorRT plan takes 30 s only). Mandarin read worse with it
        (traditional characters, 4 of 12 characters wrong in one test sentence): not in it."""
        self.encoder = encoder
        self.max_encoder_batch = max_encoder_batch
        self.fit_languages = fit_languages
        self.decoder = decoder
        self.vocab = vocabulary
        self.cache_shape = (layers, 2, 0, heads, 0, head_dim)  # [L, 2, B, H, P, Dh]
        self.prompts = {
            lang: vocabulary.encode(" " + text)
            for lang, text in (prompts or DEFAULT_PROMPTS).items()
        }

    def transcribe(
        self,
        audios: Sequence[npt.NDArray[Any]],
        languages: Sequence[str | None],
        allowed_languages: Sequence[str] | None = None,
        max_tokens: Callable[[float], int] = lambda seconds: min(224, int(16 + 10 * seconds)),
    ) -> list[Transcript]:
        """Every utterance shares one encoder batch; each language group decodes in lockstep."""
        window = self.window_s(audios, languages)
        cross = self._encode(np.stack([log_mel(a, window) for a in audios]))
        held = self.decoder.hold(cross)
        detected, no_speech = self._detect(held, len(audios), allowed_languages)
        results: list[Transcript | None] = [None] * len(audios)
        chosen = [lang or detected[i] for i, lang in enumerate(languages)]
        for language in sorted(set(chosen)):
            members = [i for i, lang in enumerate(chosen) if lang == language]
            seconds = max(len(audios[i]) / SAMPLE_RATE for i in members)
            group = held if len(members) == len(audios) else self.decoder.hold(cross[:, :, members])
            decoded = self._greedy(group, len(members), language, max_tokens(seconds))
            for i, (tokens, logprob) in zip(members, decoded, strict=True):
                results[i] = Transcript(
                    self.vocab.decode(tokens), language, float(no_speech[i]), logprob, tuple(tokens)
                )
        return [r for r in results if r is not None]

    def window_s(self, audios: Sequence[npt.NDArray[Any]], languages: Sequence[str | None]) -> int:
        if not all(language in self.fit_languages for language in languages):
            return WINDOW_S
        longest = max(len(a) for a in audios) / SAMPLE_RATE
        return min(WINDOW_S, max(MIN_WINDOW_S, math.ceil(longest) + 1))

    def _encode(self, mels: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Encoder runs of at most `max_encoder_batch` windows: on CPU, attention over 1500
        frames costs more than linearly in the batch, on GPU a large batch is the point."""
        step = self.max_encoder_batch
        chunks = [self.encoder({"mel": mels[i : i + step]})[0] for i in range(0, len(mels), step)]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks, axis=2)

    def _empty_cache(self, batch: int) -> npt.NDArray[Any]:
        shape = list(self.cache_shape)
        shape[2] = batch
        return np.zeros(shape, dtype=np.float32)

    def _detect(
        self, cross: Any, batch: int, allowed: Sequence[str] | None
    ) -> tuple[list[str], npt.NDArray[Any]]:
        """One step from <|startoftranscript|>: the likeliest language and P(no speech)."""
        tokens = np.full((batch, 1), self.vocab.sot, dtype=np.int64)
        logits, _ = self.decoder(
            {"tokens": tokens, "past": self._empty_cache(batch), "cross": cross}
        )
        probs = np.exp(_log_softmax(logits))
        no_speech = (
            probs[:, self.vocab.no_speech] if self.vocab.no_speech is not None else np.zeros(batch)
        )
        candidates = self.vocab.language_ids
        if allowed:
            candidates = np.array(
                [self.vocab.languages[lang] for lang in allowed if lang in self.vocab.languages]
            )
        best = candidates[np.argmax(logits[:, candidates], axis=-1)]
        return [self.vocab.language_of(int(t)) for t in best], no_speech

    def _prompt(self, language: str) -> list[int]:
        previous = self.prompts.get(language)
        task = [
            self.vocab.sot,
            self.vocab.languages[language],
            self.vocab.transcribe,
            self.vocab.no_timestamps,
        ]
        return ([self.vocab.sot_prev, *previous] if previous else []) + task

    def _greedy(
        self, cross: Any, batch: int, language: str, max_tokens: int
    ) -> list[tuple[list[int], float]]:
        tokens = np.array([self._prompt(language)] * batch, dtype=np.int64)
        past = self._empty_cache(batch)
        output: list[list[int]] = [[] for _ in range(batch)]
        logprob_sum = np.zeros(batch)
        done = np.zeros(batch, dtype=bool)
        for step in range(max_tokens):
            logits, past = self.decoder({"tokens": tokens, "past": past, "cross": cross})
            logits[:, self.vocab.suppress] = -np.inf
            logits[:, FIRST_TIMESTAMP:] = -np.inf
            if step == 0:
                logits[:, self.vocab.suppress_begin] = -np.inf
            logprobs = _log_softmax(logits)
            chosen = np.argmax(logits, axis=-1)
            chosen[done] = self.vocab.eot
            for i in np.flatnonzero(~done):
                logprob_sum[i] += logprobs[i, chosen[i]]
                if chosen[i] == self.vocab.eot:
                    continue
                output[i].append(int(chosen[i]))
                cut = loop_start(output[i])
                if cut is not None:
                    del output[i][cut:]
                    chosen[i] = self.vocab.eot
            done |= chosen == self.vocab.eot
            if done.all():
                break
            tokens = chosen[:, None].astype(np.int64)
        return [(out, float(logprob_sum[i] / (len(out) + 1))) for i, out in enumerate(output)]
