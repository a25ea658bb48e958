"""Keeping the models that speak a reply's first sentence warm between a student's turns.

On hosts that take back an idle guest's memory (Firecracker-style VMs; this project's own
machines do), a model untouched for a few seconds runs several times slower on its next
request while its pages come back: measured here, Piper's first sentence took 180-280 ms after
5-10 s of quiet instead of 55 ms, and a one-line knowledge search 70-125 ms instead of 10-25.
That is exactly the request a student waits for after thinking. So while anyone is connected,
each voice and embedding model their tutors use gets a tiny request whenever nothing else
touched it for an interval; but not for a student still hearing a reply, until two intervals of
it are left (runtime.warm_requests): nobody asks before the answer ends, and a barge-in is
the one request that can find the models cold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt

from orchestrator.knowledge.embedder import embed_inputs
from orchestrator.metrics import KEEP_WARM
from orchestrator.triton_client import TritonClient, TritonError
from orchestrator.tts import tts_inputs
from orchestrator.tutors import Voice
from triton_ops.contracts import ModelContract, embed_contract, tts_contract

log = logging.getLogger(__name__)

WARM_WORDS = {"en": "Hi.", "zh": "你好。"}


@dataclass(frozen=True)
class WarmRequest:
    contract: ModelContract
    inputs: dict[str, npt.NDArray[Any]]

    @classmethod
    def voice(cls, voice: Voice) -> WarmRequest:
        words = WARM_WORDS.get(voice.language, WARM_WORDS["en"])
        return cls(tts_contract(voice.model), tts_inputs(words))

    @classmethod
    def embedding(cls, model: str) -> WarmRequest:
        return cls(embed_contract(model), embed_inputs("warm", "query"))


class KeepWarm:
    def __init__(
        self,
        triton: TritonClient,
        interval_s: float,
        wanted: Callable[[], Iterable[WarmRequest]],
    ) -> None:
        """`wanted`: the requests that keep warm what the connected students' tutors use."""
        self.triton = triton
        self.interval_s = interval_s
        self.wanted = wanted

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.once()

    async def once(self) -> list[str]:
        """Sends what is due (a model idle for the interval); returns the models it warmed."""
        now = time.monotonic()
        due = {
            request.contract.name: request
            for request in self.wanted()
            if now - self.triton.last_answer.get(request.contract.name, 0.0) >= self.interval_s
        }
        results = await asyncio.gather(
            *(self.triton.infer(r.contract, r.inputs) for r in due.values()),
            return_exceptions=True,
        )
        warmed = []
        for model, result in zip(due, results, strict=True):
            if isinstance(result, TritonError):  # Triton away: health and replies report it
                log.debug("keep-warm request failed", extra={"model": model, "error": str(result)})
            elif isinstance(result, BaseException):
                raise result
            else:
                KEEP_WARM.labels(model).inc()
                warmed.append(model)
        return warmed
