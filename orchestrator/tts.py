"""Text-to-speech stage: a sentence in, speech with per-phoneme timing out (Triton `tts*`)."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from media.speech import Speech
from orchestrator.metrics import timed
from orchestrator.triton_client import TritonClient
from orchestrator.tutors import Voice
from triton_ops.contracts import tts_contract

log = logging.getLogger(__name__)


def tts_inputs(text: str) -> dict[str, npt.NDArray[np.object_]]:
    """One sentence, as a voice model takes it."""
    return {"TEXT": np.array([[text.encode("utf-8")]], dtype=np.object_)}


class TextToSpeech:
    def __init__(self, triton: TritonClient) -> None:
        self._triton = triton

    async def synthesize(self, text: str, voice: Voice, session_id: str = "") -> Speech:
        contract = tts_contract(voice.model)
        with timed("tts", log, session_id=session_id, model=voice.model, chars=len(text)) as stage:
            result = await self._triton.infer(contract, tts_inputs(text), request_id=session_id)
            sample_rate = int((await self._triton.parameters(voice.model))["sample_rate"])
            speech = Speech(
                text=text,
                pcm=result["AUDIO"][0].astype(np.float32),
                sample_rate=sample_rate,
                phonemes=tuple(p.decode("utf-8") for p in result["PHONEMES"][0]),
                durations=result["DURATIONS"][0].astype(np.int32),
            )
            stage["audio_s"] = round(speech.seconds, 3)
        return speech
