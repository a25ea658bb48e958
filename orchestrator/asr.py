"""Speech recognition stage: a student's utterance in, what they said out (Triton `asr`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from media.audio import level_dbfs
from orchestrator.metrics import timed
from orchestrator.triton_client import TritonClient
from triton_ops.contracts import ASR

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000


class NoSpeech(Exception):
    """The utterance holds nothing to transcribe (silence, noise)."""


@dataclass(frozen=True)
class Heard:
    text: str
    language: str
    no_speech_prob: float
    avg_logprob: float


@dataclass(frozen=True)
class SpeechGate:
    """When an utterance counts as no speech (Whisper's own rule, plus a loudness floor)."""

    silence_dbfs: float = -50.0
    no_speech_prob: float = 0.6
    logprob_floor: float = -1.0

    def heard_nothing(self, heard: Heard) -> bool:
        if not heard.text.strip():
            return True
        return heard.no_speech_prob > self.no_speech_prob and heard.avg_logprob < self.logprob_floor


class SpeechRecognizer:
    def __init__(self, triton: TritonClient, gate: SpeechGate) -> None:
        self._triton = triton
        self._gate = gate

    async def transcribe(
        self, pcm: npt.NDArray[np.float32], language: str | None, session_id: str = ""
    ) -> Heard:
        """`pcm`: 16 kHz mono. `language`: "en", "zh", … or None to detect it."""
        level = level_dbfs(pcm)
        if level < self._gate.silence_dbfs:
            raise NoSpeech(f"the audio is silent (loudest {level:.0f} dBFS)")
        with timed(
            "asr", log, session_id=session_id, audio_s=round(pcm.size / SAMPLE_RATE, 2)
        ) as stage:
            out = await self._triton.infer(
                ASR,
                {
                    "AUDIO": pcm.reshape(1, -1),
                    "LANGUAGE": np.array([[(language or "").encode()]], dtype=np.object_),
                },
                request_id=session_id,
            )
            heard = Heard(
                text=out["TEXT"][0][0].decode("utf-8").strip(),
                language=out["DETECTED_LANGUAGE"][0][0].decode(),
                no_speech_prob=float(out["NO_SPEECH_PROB"][0][0]),
                avg_logprob=float(out["AVG_LOGPROB"][0][0]),
            )
            stage.update(language=heard.language, no_speech=round(heard.no_speech_prob, 3))
        if self._gate.heard_nothing(heard):
            raise NoSpeech("no speech was recognized in the audio")
        return heard
