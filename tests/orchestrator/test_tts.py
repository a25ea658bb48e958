"""Sentences take turns at the voice, the one needed soonest first: with the real Triton voice,
a student's first words overtake the later sentences of replies already being spoken."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from benchmarks.harness.processes import TritonProcess
from orchestrator.triton_client import TritonClient
from orchestrator.tts import SpeechTurns, TextToSpeech
from orchestrator.tutors import Voice


async def test_turns_go_earliest_due_first_within_the_width() -> None:
    turns = SpeechTurns(width=2)
    order: list[str] = []
    release = asyncio.Event()

    async def speak(name: str, due: float) -> None:
        async with turns.turn(due):
            order.append(name)
            await release.wait()

    queued = [("a", 5), ("b", 4), ("late", 9), ("soon", 1), ("mid", 3)]
    tasks = [asyncio.create_task(speak(name, due)) for name, due in queued]
    await asyncio.sleep(0.01)
    assert order == ["a", "b"] and turns.busy == 2  # the first two went straight through
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "soon", "mid", "late"]
    assert turns.busy == 0


async def test_a_cancelled_sentence_gives_up_its_turn() -> None:
    turns = SpeechTurns(width=1)
    held = asyncio.Event()
    release = asyncio.Event()
    heard: list[str] = []

    async def speak(name: str, due: float) -> None:
        async with turns.turn(due):
            heard.append(name)
            held.set()
            await release.wait()

    first = asyncio.create_task(speak("first", 0))
    await held.wait()
    doomed = asyncio.create_task(speak("doomed", 1))
    after = asyncio.create_task(speak("after", 2))
    await asyncio.sleep(0.01)
    doomed.cancel()
    release.set()
    await asyncio.gather(first, after)
    assert heard == ["first", "after"] and doomed.cancelled() and turns.busy == 0


async def test_a_sentence_cancelled_while_a_release_passes_it_over_ends_cancelled() -> None:
    """Cancelled while waiting, and the turn ends before the cancelled task runs again: the
    release skips it, and it ends cancelled, holding nothing."""
    turns = SpeechTurns(width=1)

    async def speak() -> None:
        async with turns.turn(1):
            pass

    async with turns.turn(0):
        waiter = asyncio.create_task(speak())
        await asyncio.sleep(0)  # it waits for the turn this test holds
        waiter.cancel()  # its wait is cancelled now; it runs again only after the release
    await asyncio.gather(waiter, return_exceptions=True)
    assert waiter.cancelled() and turns.busy == 0
    async with turns.turn(2):  # and the voice is free
        assert turns.busy == 1


@pytest_asyncio.fixture
async def client(triton: TritonProcess) -> AsyncIterator[TritonClient]:
    client = TritonClient(triton.grpc_url, 60)
    yield client
    await client.close()


@pytest.mark.parametrize("in_flight", [1, 16])
async def test_first_words_overtake_later_sentences(client: TritonClient, in_flight: int) -> None:
    """Six later sentences (due in seconds) are waiting when a new student's first sentence
    (due now) arrives. With turns, it is spoken second, right after the sentence already at
    the voice; with every sentence sent to Triton at once (in_flight 16), Triton's queue is
    first come, first served and it is spoken last."""
    tts = TextToSpeech(client, in_flight)
    voice = Voice(model="tts", language="en")
    await tts.synthesize("Warm up.", voice)
    done: list[str] = []
    now = time.monotonic()
    later = " This sentence is one of the later ones of a long answer being spoken."

    async def say(name: str, text: str, due: float) -> None:
        await tts.synthesize(text, voice, due=due)
        done.append(name)

    talking = [
        asyncio.create_task(say(f"later {n}", f"Part {n}.{later}", now + 5 + n)) for n in range(7)
    ]
    await asyncio.sleep(0.02)  # they are queued (at Triton, or in the engine)
    await say("first words", "Good question.", time.monotonic())
    await asyncio.gather(*talking)
    position = done.index("first words")
    if in_flight == 1:
        assert position <= 1, done
    else:
        assert position >= 5, done  # the mutation: what the turns are for
