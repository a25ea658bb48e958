"""Text-to-speech stage: a sentence in, speech with per-phoneme timing out (Triton `tts*`).

Sentences take turns per voice, the one due soonest first (`SpeechTurns`). Triton serves each
model's queue first come, first served: a reply that sent all its later sentences at once kept
every other student's next sentence behind them, so with eight students speaking the last one
heard "Good question." and then nothing for twelve seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import AsyncIterator

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


class SpeechTurns:
    """At most `width` sentences at Triton at once; the others wait in the engine and go
    earliest `due` first (ties: first come). `due` is when the speech is needed: a reply's
    first sentence now, a later one when the speech before it runs out."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.busy = 0
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @contextlib.asynccontextmanager
    async def turn(self, due: float) -> AsyncIterator[None]:
        if self.busy < self.width and not self._waiting:
            self.busy += 1
        else:
            entry = (due, next(self._order), asyncio.get_running_loop().create_future())
            heapq.heappush(self._waiting, entry)
            try:
                await entry[2]
            except asyncio.CancelledError:
                if not entry[2].cancelled():  # granted, then cancelled before it went on
                    self._release()
                elif entry in self._waiting:  # else a release already passed it over
                    self._waiting.remove(entry)
                    heapq.heapify(self._waiting)
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        self.busy -= 1
        while self._waiting and self.busy < self.width:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                self.busy += 1
                future.set_result(None)


class TextToSpeech:
    def __init__(self, triton: TritonClient, in_flight: int = 1) -> None:
        """`in_flight`: sentences per voice at Triton at once (ENGINE_TTS_IN_FLIGHT)."""
        self._triton = triton
        self._in_flight = in_flight
        self._turns: dict[str, SpeechTurns] = {}

    async def synthesize(
        self, text: str, voice: Voice, session_id: str = "", due: float | None = None
    ) -> Speech:
        """`due`: the monotonic time the speech is needed by (default: now)."""
        contract = tts_contract(voice.model)
        turns = self._turns.setdefault(voice.model, SpeechTurns(self._in_flight))
        with timed("tts", log, session_id=session_id, model=voice.model, chars=len(text)) as stage:
            async with turns.turn(time.monotonic() if due is None else due):
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
