"""Turn-taking on a microphone, fed in real time: the real Silero VAD, the end-of-turn model in
the real Triton, and a real live stream as the tutor (for barge-in and its echo)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np
import pytest
from aiortc import RTCPeerConnection

from benchmarks.harness.processes import TritonProcess
from benchmarks.harness.speech import piper_speech
from media.audio import PLAYBACK_RATE, resample
from media.avatar import draw
from media.avatar.registry import load_avatar
from media.avatar.visemes import silence
from orchestrator.listening import Ending, EndOfTurn, Listener, TurnRules
from orchestrator.triton_client import TritonClient
from orchestrator.vad import EngineVad
from triton_ops.repository import REPOSITORY
from webrtc.peers import Peer
from webrtc.stream import AvatarStream
from webrtc.tracks import SpeechAudioTrack

RATE = 16_000
PIECE = RATE // 50  # 20 ms, as the microphone track delivers it


@dataclass
class Turns:
    """What a listener told its socket, and when."""

    started: list[float] = field(default_factory=list)
    ended: list[tuple[float, np.ndarray, Ending]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    interrupted: int = 0  # times the tutor's speech was cut with nothing else to report it

    def speech_started(self) -> None:
        self.started.append(time.monotonic())

    def turn_ended(self, audio: np.ndarray, ending: Ending, spoken_until: float) -> None:
        assert spoken_until <= time.monotonic()
        self.ended.append((time.monotonic(), audio, ending))

    def turn_dropped(self, reason: str) -> None:
        self.dropped.append(reason)

    def tutor_interrupted(self) -> None:
        self.interrupted += 1


def speech(text: str) -> np.ndarray:
    pcm, rate = piper_speech(text, varied=False)
    return resample(pcm, rate, RATE)


def room(seconds: float, seed: int = 0) -> np.ndarray:
    """A quiet room through a microphone: noise at about -60 dBFS."""
    return (0.001 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(
        np.float32
    )


@pytest.fixture(scope="module")
def tutor(model_files: None) -> Peer:
    avatar = load_avatar(draw.ROOT_AVATARS / draw.STYLES[0].avatar_id)
    return Peer("user_test", RTCPeerConnection(), AvatarStream(avatar))


@pytest.fixture
async def listen(triton: TritonProcess, tutor: Peer) -> AsyncIterator[tuple[Listener, Turns]]:
    client = TritonClient(triton.grpc_url, 30)
    vad = EngineVad(REPOSITORY / "vad" / "1" / "silero_vad.onnx")
    listener = Listener(vad, EndOfTurn(client), TurnRules(max_s=30.0), tutor)
    turns = Turns()
    listener.handler = turns
    yield listener, turns
    listener.reset()


async def play(listener: Listener, audio: np.ndarray) -> None:
    """`audio` into the listener at the pace a microphone delivers it."""
    started = time.monotonic()
    for index in range(0, len(audio), PIECE):
        await listener.hear(audio[index : index + PIECE])
        await asyncio.sleep(max(0.0, started + (index + PIECE) / RATE - time.monotonic()))


async def test_a_finished_question_is_one_turn_ended_by_the_model(
    listen: tuple[Listener, Turns],
) -> None:
    listener, turns = listen
    question = speech("What is a magnet?")
    started = time.monotonic()
    await play(
        listener,
        np.concatenate([room(0.5), question + room(len(question) / RATE, 1), room(1.5, 2)]),
    )
    assert len(turns.started) == 1 and len(turns.ended) == 1 and not turns.dropped
    ended_at, audio, ending = turns.ended[0]
    assert ending is Ending.FINISHED  # the model heard a finished question: no timeout wait
    spoken_until = started + 0.5 + len(question) / RATE
    assert ended_at - spoken_until < listener.rules.timeout_s  # (Piper's tail is ~0.2 s of silence)
    assert len(question) - 0.3 * RATE < len(audio) < len(question) + RATE  # the whole question


async def test_an_unfinished_sentence_waits_for_the_silence_timeout(
    listen: tuple[Listener, Turns],
) -> None:
    listener, turns = listen
    unfinished = speech("So what I was wondering is")
    await play(listener, np.concatenate([room(0.5), unfinished, room(2.0, 3)]))
    assert [ending for _, _, ending in turns.ended] == [Ending.TIMEOUT]


async def test_noise_breathing_and_coughs_make_no_turn(listen: tuple[Listener, Turns]) -> None:
    listener, turns = listen
    rng = np.random.default_rng(4)
    t = np.arange(3 * RATE) / RATE
    hiss = 0.05 * rng.standard_normal(t.size)
    breathing = (
        0.15 * rng.standard_normal(t.size) * np.clip(np.sin(2 * np.pi * 0.4 * t), 0, None) ** 2
    )
    bursts = [
        0.5 * rng.standard_normal(int(0.18 * RATE)) * np.exp(-np.arange(int(0.18 * RATE)) / 800)
        for _ in range(3)
    ]
    coughs = np.concatenate([np.concatenate([b, np.zeros(int(0.6 * RATE))]) for b in bursts])
    await play(listener, np.concatenate([hiss, breathing, coughs, room(1.0)]).astype(np.float32))
    assert turns.started == [] and turns.ended == []
    assert listener.chunks > 150  # the VAD heard every sound (digital silence it skips)


async def test_a_monologue_is_cut_at_the_limit_and_answered(
    listen: tuple[Listener, Turns],
) -> None:
    listener, turns = listen
    listener.rules = TurnRules(max_s=2.0)
    talk = speech(
        "Photosynthesis is how green plants turn sunlight, water and air into sugar and oxygen"
    )
    await play(listener, np.concatenate([room(0.3), talk[: 3 * RATE]]))
    assert turns.ended and turns.ended[0][2] is Ending.CUT
    assert len(turns.ended[0][1]) == 2 * RATE


@asynccontextmanager
async def tutor_says(tutor: Peer, seconds: float) -> AsyncIterator[None]:
    """The tutor speaking for `seconds`, its audio track pulled in real time as a peer would;
    quiet again after."""
    track = SpeechAudioTrack(tutor.stream)
    await tutor.stream.wait_for(0)
    voice = speech("Magnets pull on iron because of the way their tiny magnetic domains line up")
    voice = np.tile(voice, int(seconds * RATE / len(voice)) + 1)[: int(seconds * RATE)]
    tutor.stream.say(voice, RATE, silence(int(seconds * 25)))

    async def pull() -> None:
        with contextlib.suppress(Exception):
            while True:
                await track.recv()

    pulling = asyncio.create_task(pull())
    try:
        yield
    finally:
        pulling.cancel()
        tutor.stream.interrupt()


async def test_speech_over_the_tutor_interrupts_it(
    listen: tuple[Listener, Turns], tutor: Peer
) -> None:
    listener, turns = listen
    async with tutor_says(tutor, 6.0):
        await play(listener, room(0.8))
        assert tutor.speaking
        question = speech("Why does that happen?")
        await play(listener, question[: RATE // 2])
        assert not tutor.speaking  # cut off within half a second of speech
        assert turns.interrupted == 1  # (no reply task was running to report it)
        assert len(turns.started) == 1
        await play(listener, np.concatenate([question[RATE // 2 :], room(1.5, 6)]))
        assert len(turns.ended) == 1 and not turns.dropped  # what they said is the next turn


async def test_the_tutors_own_voice_through_the_speakers_does_not_interrupt_it(
    listen: tuple[Listener, Turns], tutor: Peer
) -> None:
    listener, turns = listen
    async with tutor_says(tutor, 5.0):
        await play(listener, room(0.15))  # the way back through speakers and microphone
        voice = tutor.stream._queue[-1].pcm.astype(np.float32) / 32768
        echo = resample(voice, PLAYBACK_RATE, RATE) * 10 ** (-20 / 20)  # 20 dB down
        await play(listener, echo[: 4 * RATE] + room(4.0, 7))
        assert tutor.speaking and turns.started == []
