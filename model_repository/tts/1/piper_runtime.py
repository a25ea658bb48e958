"""Piper speech with per-phoneme durations: text → sentences of phonemes → rows of voice runs.

Needs piper, numpy and the repository's graph_runners. The voice is the packaged Piper voice
patched (by `python -m triton_ops.build_models`) to also output the samples of each phoneme id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from graph_runners import Array, OnnxRuntimeRunner
from piper import PiperVoice
from piper.config import PiperConfig
from piper.const import BOS, EOS, PAD

Sentence = tuple[list[str], npt.NDArray[np.float32], Array]  # phonemes, pcm, samples per id


@dataclass(frozen=True)
class Row:
    """One sentence of one utterance: a row of a voice run."""

    utterance: int
    slot: int  # its place among the utterance's sentences
    phonemes: list[str]
    ids: list[int]


class PiperSpeaker:
    def __init__(
        self, graph: OnnxRuntimeRunner, config: dict[str, Any], max_chars: int, max_rows: int
    ) -> None:
        self.graph = graph
        self.voice = PiperVoice(session=graph.session, config=PiperConfig.from_dict(config))
        self.sample_rate = int(self.voice.config.sample_rate)
        self.max_chars = max_chars
        self.max_rows = max_rows
        id_map = self.voice.config.phoneme_id_map
        self.ids_per_phoneme = {phoneme: len(ids) for phoneme, ids in id_map.items()}
        self.pad_ids = len(id_map[PAD])
        self.scales = np.array(
            [
                self.voice.config.noise_scale,
                self.voice.config.length_scale,
                self.voice.config.noise_w_scale,
            ],
            dtype=np.float32,
        )

    def sentences(self, text: str) -> list[list[str]]:
        """The phonemes of each sentence of `text`; ValueError if there is nothing to say."""
        if not text:
            raise ValueError("TEXT is empty")
        if len(text) > self.max_chars:
            raise ValueError(f"TEXT has {len(text)} characters; the limit is {self.max_chars}")
        sentences = [
            [p for p in phonemes if p in self.ids_per_phoneme]
            for phonemes in self.voice.phonemize(text)
        ]
        sentences = [phonemes for phonemes in sentences if phonemes]
        if not sentences:
            raise ValueError("TEXT has nothing speakable in it")
        return sentences

    def speak(
        self, utterances: dict[int, list[list[str]]]
    ) -> Iterator[tuple[int, dict[str, Array]]]:
        """Speaks the sentences of all `utterances` as rows of shared runs; yields each
        utterance's outputs (AUDIO, PHONEMES, DURATIONS) as soon as all its sentences are."""
        rows = [
            Row(utterance, slot, phonemes, self.voice.phonemes_to_ids(phonemes))
            for utterance, sentences in utterances.items()
            for slot, phonemes in enumerate(sentences)
        ]
        spoken: dict[int, dict[int, Sentence]] = {utterance: {} for utterance in utterances}
        for done in self._synthesize([row.ids for row in rows]):
            for position, (pcm, id_samples) in done:
                row = rows[position]
                sentences = spoken[row.utterance]
                sentences[row.slot] = (row.phonemes, pcm, id_samples)
                if len(sentences) == len(utterances[row.utterance]):
                    yield (
                        row.utterance,
                        self._outputs([sentences[s] for s in range(len(sentences))]),
                    )

    def _synthesize(
        self, id_rows: list[list[int]]
    ) -> Iterator[list[tuple[int, tuple[npt.NDArray[np.float32], Array]]]]:
        """Runs rows through the voice `max_rows` at a time; yields each run's rows as
        (row, (pcm, samples per phoneme id)). Several rows share a padded run shortest with
        shortest; one row per run goes in queue order."""
        order = list(range(len(id_rows)))
        if self.max_rows > 1:
            order.sort(key=lambda i: len(id_rows[i]))
        for start in range(0, len(order), self.max_rows):
            chunk = order[start : start + self.max_rows]
            lengths = np.array([len(id_rows[i]) for i in chunk], dtype=np.int64)
            batch = np.zeros((len(chunk), int(lengths.max())), dtype=np.int64)
            for row, i in enumerate(chunk):
                batch[row, : lengths[row]] = id_rows[i]
            wave, widths = self.graph(
                {"input": batch, "input_lengths": lengths, "scales": self.scales}
            )[:2]
            wave = wave.reshape(len(chunk), -1)
            id_samples = (widths.reshape(len(chunk), -1) * self.voice.config.hop_length).astype(
                np.int64
            )
            done = []
            for row, i in enumerate(chunk):
                samples = id_samples[row, : lengths[row]]
                pcm = wave[row, : int(samples.sum())]
                peak = float(np.abs(pcm).max()) if pcm.size else 0.0
                done.append((i, ((pcm / peak if peak > 1e-8 else pcm).astype(np.float32), samples)))
            yield done

    def _phoneme_samples(self, phonemes: list[str], id_samples: Array) -> Array:
        """Samples per phoneme: its ids plus the pad after it, as Piper aligns them."""
        counts = [self.ids_per_phoneme[BOS] + self.pad_ids]
        counts += [self.ids_per_phoneme[p] + self.pad_ids for p in phonemes]
        counts.append(self.ids_per_phoneme[EOS])
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return np.add.reduceat(id_samples, starts)

    def _outputs(self, sentences: list[Sentence]) -> dict[str, Array]:
        symbols: list[str] = []
        durations: list[Array] = []
        for phonemes, _, id_samples in sentences:
            symbols += [BOS, *phonemes, EOS]
            durations.append(self._phoneme_samples(phonemes, id_samples))
        return {
            "AUDIO": np.concatenate([pcm for _, pcm, _ in sentences])[np.newaxis],
            "PHONEMES": np.array([[s.encode("utf-8") for s in symbols]]),
            "DURATIONS": np.concatenate(durations)[np.newaxis],
        }
