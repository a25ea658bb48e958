"""Hands-free turn-taking on one student's microphone: when they start speaking, when their
turn is over, and when they talk over the tutor.

Every 32 ms chunk gets a voice-activity probability. Speech that lasts `start_s` opens a turn
(with `pre_roll_s` of what came just before it). When the student falls silent for `pause_s`
the end-of-turn model (Triton `turn`) hears the turn's last seconds: finished, the turn ends;
unfinished, it waits, and `timeout_s` of silence ends the turn anyway. Speech over the tutor
interrupts it once it has lasted `barge_in_s`; shorter (a backchannel, a cough) it is let go.

The tutor's own voice comes back through the student's speakers and microphone. Browsers
cancel most of it; what is left is much quieter than the voice itself. So while the tutor is
audible, speech opens a turn (or interrupts) only if its latest `start_s` are no more than
`echo_gate_db` quieter than what the tutor played over the last 0.6 s (a level-based
double-talk detector, as echo cancellers use; both levels are energy averages over speech).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np

from orchestrator.metrics import timed
from orchestrator.triton_client import TritonClient, TritonError
from orchestrator.vad import CHUNK, SAMPLE_RATE, Audio, VadState, VoiceActivity
from triton_ops.contracts import TURN

log = logging.getLogger(__name__)

CHUNK_S = CHUNK / SAMPLE_RATE
QUIET_RMS = 10 ** (-50 / 20)  # a room's noise floor, far below speech: the VAD is not asked


@dataclass(frozen=True)
class TurnRules:
    max_s: float  # a turn is cut here (ENGINE_MAX_AUDIO_S) and answered
    speech_threshold: float = 0.5  # VAD probability from which a chunk is speech
    silence_threshold: float = 0.35  # once speaking, under this a chunk is silence
    start_s: float = 0.2  # speech this long opens a turn
    pause_s: float = 0.2  # silence this long asks the end-of-turn model
    timeout_s: float = 1.2  # silence this long ends a turn whatever the model says
    finished: float = 0.5  # the end-of-turn model's probability that ends a turn
    barge_in_s: float = 0.25  # speech this long over the tutor interrupts it
    pre_roll_s: float = 0.3
    echo_gate_db: float = 10.0
    turn_model_s: float = 8.0  # the end-of-turn model hears this much of the turn's end


class Ending(Enum):
    FINISHED = "finished"  # the end-of-turn model said so
    TIMEOUT = "timeout"  # silence lasted timeout_s
    CUT = "cut"  # the turn reached max_s


class TurnHandler(Protocol):
    """Where one microphone's turns go (a socket and a session)."""

    def speech_started(self) -> None: ...

    def turn_ended(self, audio: Audio, ending: Ending, spoken_until: float) -> None:
        """`spoken_until`: when the last of the student's speech arrived (monotonic)."""
        ...

    def turn_dropped(self, reason: str) -> None: ...

    def tutor_interrupted(self) -> None:
        """The student's speech cut off the tutor's last sentences (its reply was all sent)."""
        ...


class Tutor(Protocol):
    """What the listener needs of the tutor's live stream."""

    @property
    def speaking(self) -> bool: ...

    def recent_level(self, seconds: float) -> float:
        """How loud the tutor's speech was over the last `seconds` (RMS; 0: silent)."""
        ...

    def interrupt(self, reason: str) -> bool:
        """Stops the tutor; True when the caller must tell the client (see Peer.interrupt)."""
        ...


class EndOfTurn:
    """Smart-turn v3 in Triton: has the speaker finished, from the sound of the turn's end."""

    def __init__(self, triton: TritonClient) -> None:
        self._triton = triton

    async def finished(self, audio: Audio, peer: str = "") -> float:
        with timed("end_of_turn", log, peer=peer, audio_s=round(audio.size / SAMPLE_RATE, 2)):
            out = await self._triton.infer(TURN, {"AUDIO": audio[np.newaxis]})
        return float(out["COMPLETE"][0, 0])


class Listener:
    """One microphone. `hear` takes its audio (16 kHz mono, any length) in arrival order."""

    def __init__(
        self, vad: VoiceActivity, end_of_turn: EndOfTurn, rules: TurnRules, tutor: Tutor
    ) -> None:
        self.rules = rules
        self.tutor = tutor
        self.handler: TurnHandler | None = None
        self.enabled = True
        self.name = ""  # its peer's key, for the logs
        self._vad = vad
        self._end_of_turn = end_of_turn
        self._state = VadState()
        self._pending = np.zeros(0, dtype=np.float32)
        self._before: deque[Audio] = deque(maxlen=max(1, round(rules.pre_roll_s / CHUNK_S)))
        self._turn: list[Audio] | None = None  # the open turn's chunks
        self._run_s = 0.0  # speech in a row before a turn opens
        self._recent: deque[float] = deque(maxlen=max(1, round(rules.start_s / CHUNK_S)))
        self._spoken_s = 0.0  # speech in the open turn
        self._silent_s = 0.0  # silence since the open turn's last speech
        self._voiced_at = 0.0  # when the last speech arrived
        self._over_tutor = False  # the open turn began while the tutor was talking
        self._barged = False
        self._check: asyncio.Task[None] | None = None
        self.chunks = 0  # chunks the VAD was asked about (the noise test reads it)

    async def hear(self, audio: Audio) -> None:
        if not self.enabled or self.handler is None:
            self._pending = self._pending[:0]
            return
        self._pending = np.concatenate([self._pending, audio])
        while len(self._pending) >= CHUNK:
            chunk, self._pending = self._pending[:CHUNK], self._pending[CHUNK:]
            await self._chunk(chunk)

    def reset(self) -> None:
        """Forgets any open turn (the microphone was muted or moved to another session)."""
        self._cancel_check()
        self._turn, self._run_s, self._spoken_s, self._silent_s = None, 0.0, 0.0, 0.0
        self._recent.clear()
        self._before.clear()
        self._pending = self._pending[:0]
        self._state = VadState()

    # --- per chunk ---------------------------------------------------------------------

    async def _chunk(self, chunk: Audio) -> None:
        rms = float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2)))
        if rms < QUIET_RMS and self._turn is None and self._run_s == 0:
            self._before.append(chunk)  # nothing to hear; the VAD's state waits
            return
        self.chunks += 1
        probability = await self._vad.speech(self._state, chunk)
        threshold = (
            self.rules.silence_threshold if self._turn is not None else self.rules.speech_threshold
        )
        voiced = probability >= threshold
        if voiced:
            self._voiced_at = time.monotonic()
            self._recent.append(rms * rms)
        if self._turn is None:
            self._idle(chunk, voiced)
        else:
            self._in_turn(chunk, voiced)

    def _over_echo(self) -> bool:
        """The latest speech is no more than the gate quieter than the tutor's voice: the
        student, not the tutor's echo. (The tutor's level is taken over the last 0.6 s: the
        echo comes back late.)"""
        level = self.tutor.recent_level(0.6)
        if level == 0:
            return True
        heard = float(np.sqrt(np.mean(self._recent))) if self._recent else 0.0
        return heard >= level * 10 ** (-self.rules.echo_gate_db / 20)

    def _idle(self, chunk: Audio, voiced: bool) -> None:
        self._before.append(chunk)
        if not voiced:
            self._run_s = 0.0
            self._recent.clear()
            return
        self._run_s += CHUNK_S
        if self._run_s + 1e-9 >= self.rules.start_s and self._over_echo():
            self._turn = list(self._before)
            self._spoken_s, self._silent_s = self._run_s, 0.0
            self._over_tutor, self._barged = self.tutor.speaking, False
            self._run_s = 0.0
            assert self.handler is not None
            self.handler.speech_started()
            self._maybe_barge_in()

    def _in_turn(self, chunk: Audio, voiced: bool) -> None:
        assert self._turn is not None
        self._turn.append(chunk)
        rules = self.rules
        if voiced:
            self._spoken_s += CHUNK_S
            self._silent_s = 0.0
            self._cancel_check()
            self._maybe_barge_in()
        else:
            self._silent_s += CHUNK_S
            if self._silent_s + 1e-9 >= rules.pause_s and self._check is None:
                self._check = asyncio.create_task(self._ask_end_of_turn())
            if self._silent_s + 1e-9 >= rules.timeout_s:
                self._end(Ending.TIMEOUT)
                return
        if len(self._turn) * CHUNK_S >= rules.max_s:
            self._end(Ending.CUT)

    def _maybe_barge_in(self) -> None:
        if self._barged or self._spoken_s + 1e-9 < self.rules.barge_in_s:
            return
        if self.tutor.speaking and self._over_echo():
            self._barged = True
            if self.tutor.interrupt("barge_in") and self.handler is not None:
                self.handler.tutor_interrupted()

    async def _ask_end_of_turn(self) -> None:
        assert self._turn is not None
        heard = np.concatenate(self._turn)[-int(self.rules.turn_model_s * SAMPLE_RATE) :]
        try:
            finished = await self._end_of_turn.finished(heard, self.name)
        except TritonError as error:
            log.warning(
                "end-of-turn model failed; waiting for the timeout", extra={"error": str(error)}
            )
            return
        # still silent since the question (speech since would have cancelled this task)
        if self._turn is not None and finished >= self.rules.finished:
            self._check = None
            self._end(Ending.FINISHED)

    def _end(self, ending: Ending) -> None:
        assert self._turn is not None and self.handler is not None
        turn, over_tutor, barged = self._turn, self._over_tutor, self._barged
        self.reset()
        if over_tutor and not barged:
            self.handler.turn_dropped("too_short_over_tutor")  # a backchannel, not a turn
            return
        audio = np.concatenate(turn)[: int(self.rules.max_s * SAMPLE_RATE)]
        self.handler.turn_ended(audio, ending, self._voiced_at)

    def _cancel_check(self) -> None:
        if self._check is not None and self._check is not asyncio.current_task():
            self._check.cancel()
        self._check = None


class Listeners:
    """Each user's listener (made when their peer's microphone track arrives) and where its
    turns go: the session a `listen` message named, else the one last spoken to with
    `text_webrtc` (or a session socket's own session)."""

    def __init__(self, make: Callable[[Tutor], Listener]) -> None:
        self._make = make
        self._listeners: dict[str, Listener] = {}
        self._targets: dict[str, tuple[TurnHandler, bool]] = {}  # handler, named by `listen`
        self._enabled: dict[str, bool] = {}

    def get(self, key: str) -> Listener | None:
        return self._listeners.get(key)

    def open(self, key: str, tutor: Tutor) -> Listener:
        listener = self._listeners[key] = self._make(tutor)
        listener.name = key
        target = self._targets.get(key)
        listener.handler = target[0] if target else None
        listener.enabled = self._enabled.get(key, True)
        return listener

    def closed(self, key: str, tutor: Tutor) -> None:
        """The microphone of `tutor`'s peer is gone (a newer peer's listener stays)."""
        listener = self._listeners.get(key)
        if listener is not None and listener.tutor is tutor:
            del self._listeners[key]
            listener.reset()

    def aim(self, key: str, handler: TurnHandler, named: bool) -> None:
        """Sends `key`'s turns to `handler`; one not `named` by a `listen` message does not
        replace one that was."""
        current = self._targets.get(key)
        if current is not None and current[1] and not named:
            return
        if current is not None and current[0] != handler and (listener := self.get(key)):
            listener.reset()
        self._targets[key] = (handler, named)
        if listener := self.get(key):
            listener.handler = handler

    def enable(self, key: str, enabled: bool) -> None:
        self._enabled[key] = enabled
        if listener := self.get(key):
            listener.enabled = enabled
            if not enabled:
                listener.reset()

    def release(self, key: str, owner: object) -> None:
        """Forgets the targets `owner` (a socket) set: it closed."""
        current = self._targets.get(key)
        if current is not None and getattr(current[0], "owner", None) is owner:
            del self._targets[key]
            if listener := self.get(key):
                listener.handler = None
                listener.reset()
